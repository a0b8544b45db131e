// Benchmark: int4 RTN quantization throughput (weights/s) next to a plain memory copy of the same bytes measured in the
// same run, single-threaded on the kernel, end to end with no pool (inline), and end to end through the worker pool
// (with its speed over both: the target is ≥ 1.5× no pool on 2 cores). Prints markdown, or JSON with
// --json; --out DIR also writes quant-bench.json and quant-bench.md there.
//
//   pnpm tsx scripts/bench/quant.ts [--K 3072] [--N 8192] [--block 32] [--repeat 5] [--threads 2] [--json] [--out DIR]
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DataType } from '../../src/onnx/dtype.js';
import { viewBytes } from '../../src/onnx/tensor.js';
import { quantizeUniform } from '../../src/quant/formats/uniform.js';
import { createKernelRunner, inlineKernelRunner } from '../../src/quant/workers/kernel-pool.js';
import { Rng } from '../../src/util/random.js';

interface Row {
  case: string;
  seconds: number;
  weightsPerSecond: number;
  gbPerSecond: number;
  /** Throughput as a fraction of the memory copy's. */
  ofMemcpy: number;
  /** Throughput over the one-thread int4 sym kernel on the same [K, N] layout. */
  vsOneThread?: number;
  /** Throughput over the same pieces run inline with no pool (the pool's target: ≥ 1.5 on 2 cores). */
  vsNoPool?: number;
}

const times = (x: number | undefined) => (x === undefined ? '' : `${x.toFixed(2)}×`);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timeIt(repeat: number, f: () => unknown | Promise<unknown>): Promise<number> {
  await f(); // warm-up (JIT, page faults)
  const t: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    await f();
    t.push((performance.now() - t0) / 1000);
  }
  return median(t);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      K: { type: 'string', default: '3072' },
      N: { type: 'string', default: '8192' },
      block: { type: 'string', default: '32' },
      repeat: { type: 'string', default: '5' },
      threads: { type: 'string', default: String(Math.min(availableParallelism(), 4)) },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
    },
  });
  const K = Number(values.K);
  const N = Number(values.N);
  const blockSize = Number(values.block);
  const repeat = Number(values.repeat);
  const threads = Number(values.threads);
  const weights = K * N;
  const data = new Rng(1).fillNormal(new Float32Array(weights), 0.02);
  const bytes = viewBytes(data);
  const dst = new Uint8Array(bytes.length);

  const memcpy = await timeIt(repeat, () => dst.set(bytes));
  const row = (name: string, seconds: number): Row => ({
    case: name,
    seconds,
    weightsPerSecond: weights / seconds,
    gbPerSecond: bytes.length / seconds / 1e9,
    ofMemcpy: memcpy / seconds,
  });
  const rows: Row[] = [row('memcpy (Uint8Array.set)', memcpy)];
  for (const layout of ['kn', 'nk'] as const) {
    for (const symmetric of [true, false]) {
      const s = await timeIt(repeat, () => quantizeUniform({ data, K, N, layout }, 4, { blockSize, symmetric }));
      rows.push(row(`int4 rtn ${symmetric ? 'sym' : 'asym'} kernel, ${layout === 'kn' ? '[K, N]' : '[N, K]'}, 1 thread`, s));
    }
  }
  // End to end through the pool: copy the input (a pass transfers freshly read external data), quantize, move back.
  const pool = await createKernelRunner({ threads });
  try {
    const parts = Math.max(1, threads);
    const cols = Math.ceil(N / parts);
    const slices = Array.from({ length: parts }, (_, i) => {
      const n0 = i * cols;
      const n1 = Math.min(N, n0 + cols);
      const s = new Float32Array(K * (n1 - n0));
      for (let k = 0; k < K; k++) s.set(data.subarray(k * N + n0, k * N + n1), k * (n1 - n0));
      return { s, n: n1 - n0 };
    });
    const method = { scheme: 'int4', algo: 'rtn', blockSize, symmetric: true, padding: 'block' } as const;
    const task = (bytes: Uint8Array, n: number) => ({ tensor: 'bench', bytes, dataType: DataType.FLOAT, K, N: n, layout: 'kn' as const, method });
    // No pool: the same pieces one after another on this thread, read in place (no copy, nothing to move back).
    const inline = inlineKernelRunner();
    const noPool = await timeIt(repeat, async () => {
      for (const { s, n } of slices) await inline.run(task(viewBytes(s), n));
    });
    rows.push(row(`int4 rtn sym, no pool (the same ${parts} pieces inline, 1 thread)`, noPool));
    const viaPool = (input: (s: Float32Array) => Uint8Array) =>
      Promise.all(
        slices.map(({ s, n }) => pool.run(task(input(s), n), { transfer: true })),
      );
    // Input in fresh memory (what a pass had before the pool reused buffers), then copied into a buffer the pool hands
    // out again (one a worker sent back, already paged in).
    const fresh = await timeIt(repeat, () => viaPool((s) => viewBytes(s.slice())));
    rows.push(row(`int4 rtn sym via ${threads}-thread pool (${parts} weights in parallel), input in fresh memory`, fresh));
    const reused = await timeIt(repeat, () =>
      viaPool((s) => {
        const b = pool.buffer(s.byteLength);
        b.set(viewBytes(s));
        return b;
      }),
    );
    rows.push(row(`int4 rtn sym via ${threads}-thread pool (${parts} weights in parallel), input in pool.buffer`, reused));
  } finally {
    await pool.close();
  }

  const one = rows.find((r) => r.case.startsWith('int4 rtn sym kernel, [K, N]'))!;
  const none = rows.find((r) => r.case.includes('no pool'))!;
  for (const r of rows.filter((x) => x.case.includes('via'))) {
    r.vsOneThread = one.seconds / r.seconds;
    r.vsNoPool = none.seconds / r.seconds;
  }

  const result = {
    date: new Date().toISOString(),
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    shape: { K, N, weights, bytes: bytes.length },
    blockSize,
    repeat,
    rows,
  };
  const md = [
    `int4 RTN quantization, ${K}×${N} fp32 weight (${(bytes.length / 1e6).toFixed(1)} MB), block ${blockSize}, median of ${repeat}`,
    `(${result.cpu}, ${result.cores} cores, Node ${process.version})`,
    '',
    '| case | ms | Mweights/s | GB/s in | of memcpy | vs 1-thread kernel [K, N] | vs no pool |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.case} | ${(r.seconds * 1000).toFixed(1)} | ${(r.weightsPerSecond / 1e6).toFixed(1)} | ${r.gbPerSecond.toFixed(2)} | ${(r.ofMemcpy * 100).toFixed(1)}% | ${times(r.vsOneThread)} | ${times(r.vsNoPool)} |`,
    ),
    '',
  ].join('\n');
  if (values.out) {
    await mkdir(values.out, { recursive: true });
    await writeFile(join(values.out, 'quant-bench.json'), JSON.stringify(result, null, 2) + '\n');
    await writeFile(join(values.out, 'quant-bench.md'), md);
  }
  process.stdout.write(values.json ? JSON.stringify(result, null, 2) + '\n' : md);
}

await main();
