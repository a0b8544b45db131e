// Benchmark: `eval` scoring throughput next to raw onnxruntime forward throughput of the same model on the same
// windows, measured in one run (interleaved, median of --repeat). Raw = InferenceSession.run on prebuilt feeds,
// logits left untouched; eval = the whole scoring path (feeds, runs, log-softmax of every scored row, metrics).
// Default model: stories260K (fp32) built from ../shared/fixtures into a temp folder. Prints markdown, or JSON
// with --json; --out DIR also writes eval-bench.json and eval-bench.md there.
//
//   pnpm tsx scripts/bench/eval.ts [--model DIR] [--tokens 8192] [--max-length 256] [--stride 128] [--repeat 5] [--json] [--out DIR]
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';
import { evaluate } from '../../src/eval/evaluate.js';
import { planWindows, type WindowOptions } from '../../src/eval/windows.js';
import { DecoderSession } from '../../src/runtime/decoder-session.js';
import { Rng } from '../../src/util/random.js';

const STORIES_BIN = resolve(new URL('../../../shared/fixtures/stories260K/stories260K.bin', import.meta.url).pathname);

interface Row {
  case: string;
  /** Median over the repeats. */
  seconds: number;
  /** Fastest repeat (least disturbed by other load on the machine). */
  minSeconds: number;
  /** Median CPU time of the process (all threads) per repeat: less sensitive to other load than wall time. */
  cpuSeconds: number;
  tokensForwarded: number;
  tokensScored: number;
  /** Forwarded tokens per second (the same windows in both cases). */
  tokensPerSecond: number;
}

export interface EvalBenchResult {
  model: string;
  cpu: string;
  tokens: number;
  windows: WindowOptions & { count: number };
  repeat: number;
  raw: Row;
  eval: Row;
  /** eval throughput / raw forward throughput (1 = no overhead), from the medians. */
  ratio: number;
  /** The same from the fastest repeats. */
  ratioMin: number;
  /** The same from CPU time. */
  ratioCpu: number;
  meanNll: number;
}

function fastest(xs: number[]): number {
  return Math.min(...xs);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function buildStories(dir: string): Promise<string> {
  const { convertLlama2c } = await import('../../src/checkpoint/llama2c.js');
  const { convertCheckpoint } = await import('../../src/arch/convert.js');
  await convertLlama2c({ file: STORIES_BIN, outDir: join(dir, 'hf') });
  await convertCheckpoint({ checkpointDir: join(dir, 'hf'), outDir: join(dir, 'fp32'), precision: 'fp32' });
  return join(dir, 'fp32');
}

/** Raw onnxruntime forward of every window: feeds built once, only session.run timed. */
async function rawRunner(session: DecoderSession, seq: Int32Array, windows: WindowOptions): Promise<() => Promise<number>> {
  const L = session.layout;
  const ort = await InferenceSession.create(L.modelPath, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', logSeverityLevel: 3 });
  const empty =
    L.kvType === 'float16'
      ? new OrtTensor('float16', new Uint16Array(0), [1, L.numKvHeads, 0, L.headSize])
      : new OrtTensor('float32', new Float32Array(0), [1, L.numKvHeads, 0, L.headSize]);
  const feedsList = planWindows(seq.length, windows).map((w) => {
    const n = w.end - 1 - w.begin; // eval feeds all but the window's last token (a target only)
    const ids = new BigInt64Array(n);
    for (let i = 0; i < n; i++) ids[i] = BigInt(seq[w.begin + i]);
    const feeds: Record<string, OrtTensor> = {
      [L.names.inputIds]: L.inputIdsType === 'int64' ? new OrtTensor('int64', ids, [1, n]) : new OrtTensor('int32', Int32Array.from(ids, Number), [1, n]),
      [L.names.attentionMask]:
        L.attentionMaskType === 'int64' ? new OrtTensor('int64', new BigInt64Array(n).fill(1n), [1, n]) : new OrtTensor('int32', new Int32Array(n).fill(1), [1, n]),
    };
    if (L.names.positionIds) feeds[L.names.positionIds] = new OrtTensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(i)), [1, n]);
    for (let l = 0; l < L.numLayers; l++) {
      feeds[L.names.pastKeys[l]] = empty;
      feeds[L.names.pastValues[l]] = empty;
    }
    return { feeds, n };
  });
  return async () => {
    let tokens = 0;
    for (const { feeds, n } of feedsList) {
      await ort.run(feeds);
      tokens += n;
    }
    return tokens;
  };
}

export async function benchEval(opts: { model?: string; tokens: number; maxLength: number; stride: number; repeat: number }): Promise<EvalBenchResult> {
  let tmp: string | undefined;
  try {
    let model = opts.model;
    if (!model) {
      tmp = await mkdtemp(join(tmpdir(), 'phi-forge-eval-bench-'));
      model = await buildStories(tmp);
    }
    const session = await DecoderSession.open(model);
    try {
      const vocab = session.layout.vocabSize ?? 2;
      const rng = new Rng(1);
      const seq = Int32Array.from({ length: opts.tokens }, (_, i) => (i === 0 ? 1 : Math.floor(rng.uniform() * vocab)));
      const windows = { maxLength: opts.maxLength, stride: opts.stride };
      const raw = await rawRunner(session, seq, windows);
      const runEval = () => evaluate(session, [seq], windows);
      // Warm-up both (JIT, allocator, onnxruntime's first-run planning), then alternate so drift hits both alike.
      const rawTokens = await raw();
      let report = await runEval();
      const tRaw: number[] = [];
      const tEval: number[] = [];
      const cRaw: number[] = [];
      const cEval: number[] = [];
      const cpu = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1e6;
      for (let i = 0; i < opts.repeat; i++) {
        let c0 = process.cpuUsage();
        let t0 = performance.now();
        await raw();
        tRaw.push((performance.now() - t0) / 1000);
        cRaw.push(cpu(process.cpuUsage(c0)));
        c0 = process.cpuUsage();
        t0 = performance.now();
        report = await runEval();
        tEval.push((performance.now() - t0) / 1000);
        cEval.push(cpu(process.cpuUsage(c0)));
      }
      const rawS = median(tRaw);
      const evalS = median(tEval);
      if (report.tokens_forwarded !== rawTokens) throw new Error(`eval forwarded ${report.tokens_forwarded} tokens, raw ${rawTokens}`);
      return {
        model,
        cpu: `${cpus()[0]?.model ?? '?'} × ${cpus().length}`,
        tokens: opts.tokens,
        windows: { ...windows, count: planWindows(seq.length, windows).length },
        repeat: opts.repeat,
        raw: {
          case: 'raw onnxruntime forward',
          seconds: rawS,
          minSeconds: fastest(tRaw),
          cpuSeconds: median(cRaw),
          tokensForwarded: rawTokens,
          tokensScored: 0,
          tokensPerSecond: rawTokens / rawS,
        },
        eval: {
          case: 'eval (scoring + metrics)',
          seconds: evalS,
          minSeconds: fastest(tEval),
          cpuSeconds: median(cEval),
          tokensForwarded: report.tokens_forwarded,
          tokensScored: report.tokens_scored,
          tokensPerSecond: report.tokens_forwarded / evalS,
        },
        ratio: rawS / evalS,
        ratioMin: fastest(tRaw) / fastest(tEval),
        ratioCpu: median(cRaw) / median(cEval),
        meanNll: report.mean_nll,
      };
    } finally {
      await session.release();
    }
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}

export function evalBenchMarkdown(r: EvalBenchResult): string {
  const f = (x: number, d = 0) => x.toFixed(d);
  return [
    `# eval throughput vs raw onnxruntime forward`,
    '',
    `model ${r.model}; ${r.tokens} tokens in ${r.windows.count} windows of ${r.windows.maxLength} (stride ${r.windows.stride}); median of ${r.repeat}; ${r.cpu}`,
    '',
    '| case | median s | fastest s | CPU s (median) | tokens forwarded | tokens scored | forwarded tokens/s (median) |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...[r.raw, r.eval].map(
      (x) =>
        `| ${x.case} | ${x.seconds.toFixed(3)} | ${x.minSeconds.toFixed(3)} | ${x.cpuSeconds.toFixed(3)} | ${x.tokensForwarded} | ${x.tokensScored || '—'} | ${f(x.tokensPerSecond)} |`,
    ),
    '',
    `**eval / raw throughput: ${(100 * r.ratio).toFixed(1)}%** from median wall time; ${(100 * r.ratioMin).toFixed(1)}% from the fastest runs; ` +
      `${(100 * r.ratioCpu).toFixed(1)}% from CPU time (target ≥ 80%)`,
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      tokens: { type: 'string', default: '8192' },
      'max-length': { type: 'string', default: '256' },
      stride: { type: 'string', default: '128' },
      repeat: { type: 'string', default: '5' },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
    },
  });
  const r = await benchEval({
    model: values.model,
    tokens: Number(values.tokens),
    maxLength: Number(values['max-length']),
    stride: Number(values.stride),
    repeat: Number(values.repeat),
  });
  const md = evalBenchMarkdown(r);
  if (values.out) {
    await mkdir(values.out, { recursive: true });
    await writeFile(join(values.out, 'eval-bench.json'), JSON.stringify(r, null, 2) + '\n');
    await writeFile(join(values.out, 'eval-bench.md'), md);
  }
  process.stdout.write(values.json ? JSON.stringify(r, null, 2) + '\n' : md);
}

if (process.argv[1] && import.meta.url === new URL(`file://${resolve(process.argv[1])}`).href) {
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  });
}
