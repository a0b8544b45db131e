// Benchmark: quantizing a full-size synthetic Phi-4-mini (3.8 B parameters, fp32 cpu layout) to int4 RTN block 32
// with the tied embedding, through `pipeline quantize` (quantizeModelFile: what the build's quantize stage runs), in
// wall time and peak RSS next to the size of the model it reads, and next to one sequential read of the same input
// measured in the same run; then onnxruntime loads the quantized model and runs a prompt and greedy steps through it
// (scripts/bench/forward-once.ts). The float model is made once in a work folder by `pipeline synth --scale full` and
// `pipeline convert` and reused (≈23 GB on disk; --clean removes it at the end). Takes minutes, so `pnpm bench` runs
// it only when asked (`pnpm bench --only quant-full`).
//
// --cold (Linux, root) empties the page cache before the read and before quantizing, so both start from disk; without
// it they read whatever the page cache still holds of the model.
//
//   pnpm tsx scripts/bench/quant-full.ts [--work DIR] [--preset phi-4-mini] [--algo rtn] [--block 32] [--threads N]
//                                        [--cold] [--json] [--out DIR] [--clean]
import { existsSync } from 'node:fs';
import { copyFile, mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';

interface Step {
  step: string;
  seconds: number;
  peakRssBytes: number;
  cpuSeconds: number;
  skipped?: boolean;
}

const cli = new URL('./with-rusage.ts', import.meta.url).pathname;

/** Runs a pipeline command in a child process; wall time, peak RSS and CPU time, and its stdout. */
async function runStep(step: string, args: string[], work: string): Promise<Step & { stdout: string }> {
  const usage = join(work, `.rusage-${process.pid}.json`);
  process.stderr.write(`  ${step}: pnpm pipeline ${args.join(' ')}\n`);
  const t0 = performance.now();
  const r = await execa('tsx', [cli, ...args], {
    preferLocal: true,
    env: { PHI_FORGE_RUSAGE: usage },
    stdout: 'pipe',
    stderr: 'inherit',
    reject: false,
  });
  const seconds = (performance.now() - t0) / 1000;
  if (r.exitCode !== 0) throw new Error(`${step} failed (exit ${r.exitCode})`);
  const u = JSON.parse(await readFile(usage, 'utf8')) as NodeJS.ResourceUsage;
  await rm(usage, { force: true });
  // maxRSS is in KiB; CPU times in microseconds.
  return { step, seconds, peakRssBytes: u.maxRSS * 1024, cpuSeconds: (u.userCPUTime + u.systemCPUTime) / 1e6, stdout: String(r.stdout) };
}

/** One sequential read of a file through a 64 MiB buffer: the floor for any pass that must read the whole model. */
async function readOnce(path: string): Promise<number> {
  const fh = await open(path, 'r');
  const buf = new Uint8Array(64 << 20);
  const t0 = performance.now();
  try {
    for (let pos = 0; ; ) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return (performance.now() - t0) / 1000;
}

const gb = (n: number) => (n / 1e9).toFixed(2);

/** Empties the page cache (Linux, root): the next reads come from disk. */
async function dropPageCache(): Promise<void> {
  await execa('sync');
  try {
    await writeFile('/proc/sys/vm/drop_caches', '3\n');
  } catch (e) {
    throw new Error(`--cold needs root on Linux to write /proc/sys/vm/drop_caches (${(e as Error).message})`);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      work: { type: 'string', default: join(tmpdir(), 'phi-forge-bench-full') },
      preset: { type: 'string', default: 'phi-4-mini' },
      algo: { type: 'string', default: 'rtn' },
      block: { type: 'string', default: '32' },
      threads: { type: 'string', default: String(Math.min(availableParallelism(), 4)) },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
      clean: { type: 'boolean', default: false },
      cold: { type: 'boolean', default: false },
    },
  });
  const work = values.work!;
  const ckpt = join(work, `${values.preset}-checkpoint`);
  const fp32 = join(work, `${values.preset}-fp32`);
  const quant = join(work, `${values.preset}-int4-${values.algo}`);
  await mkdir(work, { recursive: true });
  const steps: Step[] = [];
  const record = ({ stdout: _, ...s }: Step & { stdout: string }) => steps.push(s);
  process.stderr.write(`quant-full: ${values.preset}, work folder ${work}\n`);

  if (!existsSync(join(ckpt, 'config.json'))) record(await runStep('synth', ['synth', values.preset!, '--scale', 'full', '--out', ckpt, '--force'], work));
  else steps.push({ step: 'synth', seconds: 0, peakRssBytes: 0, cpuSeconds: 0, skipped: true });
  if (!existsSync(join(fp32, 'model.onnx'))) {
    await rm(fp32, { recursive: true, force: true });
    record(await runStep('convert (fp32)', ['convert', ckpt, '--out', fp32, '--target', 'cpu', '--precision', 'fp32'], work));
  } else steps.push({ step: 'convert (fp32)', seconds: 0, peakRssBytes: 0, cpuSeconds: 0, skipped: true });

  const input = join(fp32, 'model.onnx');
  const inputBytes = (await stat(`${input}.data`)).size + (await stat(input)).size;
  if (values.cold) await dropPageCache();
  const readSeconds = await readOnce(`${input}.data`);

  await rm(quant, { recursive: true, force: true });
  if (values.cold) await dropPageCache();
  const q = await runStep(
    `quantize int4 ${values.algo} b${values.block}`,
    ['quantize', input, '--out', join(quant, 'model.onnx'), '--scheme', 'int4', '--algo', values.algo!, '--block-size', values.block!, '--accuracy-level', '4', '--threads', values.threads!, '--json'],
    work,
  );
  record(q);
  const report = JSON.parse(q.stdout) as { passes: { pass: string; stats: { weightsQuantized?: number; bytesBefore?: number; bytesAfter?: number } }[] };
  const mm = report.passes.find((p) => p.pass === 'quant:matmul-nbits')?.stats ?? {};
  const outputBytes = (await stat(join(quant, 'model.onnx.data'))).size + (await stat(join(quant, 'model.onnx'))).size;
  const params = (mm.bytesBefore ?? 0) / 4;
  // The quantized model must run: onnxruntime loads it, a prompt and greedy steps give finite logits.
  process.stderr.write('  forward: onnxruntime on the quantized model\n');
  await copyFile(join(fp32, 'genai_config.json'), join(quant, 'genai_config.json'));
  const fwd = await execa('tsx', [new URL('./forward-once.ts', import.meta.url).pathname, join(quant, 'model.onnx')], { preferLocal: true, stderr: 'inherit' });
  const forward = JSON.parse(String(fwd.stdout)) as {
    loadSeconds: number;
    promptTokens: number;
    prefillSeconds: number;
    decodeTokensPerSecond: number;
    finite: boolean;
    peakRssBytes: number;
  };
  await rm(quant, { recursive: true, force: true });
  if (values.clean) await rm(work, { recursive: true, force: true });

  const result = {
    date: new Date().toISOString(),
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    memoryBytes: totalmem(),
    preset: values.preset,
    coldPageCache: values.cold,
    method: { scheme: 'int4', algo: values.algo, blockSize: Number(values.block), accuracyLevel: 4, threads: Number(values.threads) },
    inputBytes,
    outputBytes,
    quantizedWeights: mm.weightsQuantized,
    quantizedParams: params,
    readInputOnceSeconds: readSeconds,
    steps,
    quantize: {
      seconds: q.seconds,
      peakRssBytes: q.peakRssBytes,
      peakRssOfInput: q.peakRssBytes / inputBytes,
      weightsPerSecond: params / q.seconds,
      ofOneRead: readSeconds / q.seconds,
    },
    forward,
  };
  const md = [
    `Quantize step of a full-size synthetic ${values.preset} (fp32 cpu layout, ${gb(inputBytes)} GB) to int4 ${values.algo} block ${values.block}, ` +
      `${values.threads} worker threads, ${values.cold ? 'page cache emptied first' : 'page cache as left by earlier steps'} (${result.cpu}, ${result.cores} cores, ${gb(result.memoryBytes)} GB RAM, Node ${process.version})`,
    '',
    '| step | wall s | peak RSS GB | CPU s |',
    '|---|---:|---:|---:|',
    ...steps.map((s) => (s.skipped ? `| ${s.step} | (reused) | | |` : `| ${s.step} | ${s.seconds.toFixed(1)} | ${gb(s.peakRssBytes)} | ${s.cpuSeconds.toFixed(0)} |`)),
    '',
    `- quantize: ${result.quantizedWeights} weights (${(params / 1e9).toFixed(2)} B params) in ${q.seconds.toFixed(1)} s = ` +
      `${(result.quantize.weightsPerSecond / 1e6).toFixed(0)} M weights/s; output ${gb(outputBytes)} GB`,
    `- peak RSS ${gb(q.peakRssBytes)} GB = ${(result.quantize.peakRssOfInput * 100).toFixed(1)}% of the ${gb(inputBytes)} GB float model it reads`,
    `- one sequential read of the input data file in the same run: ${readSeconds.toFixed(1)} s ` +
      `(${gb(inputBytes / readSeconds)} GB/s); quantize takes ${(q.seconds / readSeconds).toFixed(1)}× that`,
    `- the quantized model in onnxruntime (CPU): loads in ${forward.loadSeconds.toFixed(1)} s, ${forward.promptTokens}-token prefill ` +
      `${forward.prefillSeconds.toFixed(1)} s, decode ${forward.decodeTokensPerSecond.toFixed(1)} tokens/s, peak RSS ${gb(forward.peakRssBytes)} GB, ` +
      `logits ${forward.finite ? 'all finite' : 'NOT FINITE'}`,
    '',
  ].join('\n');
  if (values.out) {
    await mkdir(values.out, { recursive: true });
    await writeFile(join(values.out, 'quant-full-bench.json'), JSON.stringify(result, null, 2) + '\n');
    await writeFile(join(values.out, 'quant-full-bench.md'), md);
  }
  process.stdout.write(values.json ? JSON.stringify(result, null, 2) + '\n' : md);
}

await main();
