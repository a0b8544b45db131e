// `pnpm pipeline quantize <in.onnx> --out <out.onnx> --scheme int4|int8|ternary`: weight-only quantization of any ONNX
// model's constant MatMul weights to com.microsoft MatMulNBits (and tied embeddings to GatherBlockQuantized), with
// rtn / hqq / gptq / awq and optional mixed precision under a bits-per-weight budget (--bits-budget).
import { UsageError } from '../../util/errors.js';
import {
  BLOCK_SIZE_LIST,
  CALIBRATED_ALGOS,
  EMBEDDINGS_MODES,
  HIGH_SCHEMES,
  isCalibratedAlgo,
  isOneOf,
  QUANT_ALGOS,
  QUANT_DEFAULTS,
  QUANT_SCHEMES,
  type QuantScheme,
} from '../../vocabulary.js';
import { defineCommand, printJson, type OptionTable } from '../command.js';
import type { CalibrationSource } from '../../quant/calibration/calibration.js';
import type { QuantizeFileOptions } from '../../quant/quantize-file.js';
import type { MixedOptions } from '../../quant/quantize-model.js';

/** `PATTERN=SCHEME` → an override (e.g. `*lm_head*=int8`). */
function parseOverride(s: string): { pattern: string; scheme: QuantScheme } {
  const i = s.lastIndexOf('=');
  const scheme = s.slice(i + 1);
  if (i <= 0 || !isOneOf(QUANT_SCHEMES, scheme)) {
    throw new UsageError(`--override ${s} is not PATTERN=SCHEME`, { fix: `e.g. --override '*lm_head*=int8'; schemes: ${QUANT_SCHEMES.join(', ')}` });
  }
  return { pattern: s.slice(0, i), scheme };
}

function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}

/** One line per pass for the human summary. */
function summaryLine(p: { pass: string; modified: boolean; ms: number; stats: unknown }): string {
  const s = p.stats as {
    converted?: unknown[];
    skipped: unknown[];
    bytesBefore?: number;
    bytesAfter?: number;
    bitsPerWeight?: number;
    reason?: string;
    groups?: unknown[];
    normsFolded?: number;
    mulsInserted?: number;
    highNodes?: string[];
    achievedBits?: number;
    budgetBits?: number;
    high?: string;
  };
  if (p.pass === 'quant:mixed-precision') {
    if (s.reason) return `${p.pass}: nothing planned — ${s.reason}`;
    return `${p.pass}: ${s.highNodes!.length} node(s) at ${s.high}, ${s.achievedBits!.toFixed(3)} bits/weight (budget ${s.budgetBits}) (${p.ms} ms)`;
  }
  if (!p.modified) return `${p.pass}: unchanged — ${s.reason ?? 'nothing to do'}`;
  if (p.pass === 'quant:awq-scale') {
    return `${p.pass}: ${s.groups!.length} input(s) scaled, ${s.normsFolded} folded into norms, ${s.mulsInserted} Mul(s) inserted, ${s.skipped.length} skipped (${p.ms} ms)`;
  }
  const bpw = s.bitsPerWeight ? `, ${s.bitsPerWeight.toFixed(3)} bits/weight` : '';
  return `${p.pass}: ${s.converted!.length} node(s) converted, ${mb(s.bytesBefore!)} float → ${mb(s.bytesAfter!)} quantized${bpw}, ${s.skipped.length} skipped (${p.ms} ms)`;
}

const options = {
  out: { type: 'string', demandOption: true, describe: 'output .onnx path; weights go to <out>.data' },
  scheme: { type: 'string', choices: QUANT_SCHEMES, demandOption: true, describe: 'weight format' },
  algo: {
    type: 'string',
    choices: QUANT_ALGOS,
    default: QUANT_DEFAULTS.algo,
    describe:
      'rtn: round to nearest (onnxruntime bit for bit); hqq: data-free zero-point optimisation; gptq: error feedback from --calib activations; awq: activation-aware input scaling from --calib activations',
  },
  'block-size': { type: 'number', default: QUANT_DEFAULTS.blockSize, describe: `values per block along K: ${BLOCK_SIZE_LIST}` },
  asym: { type: 'boolean', default: QUANT_DEFAULTS.asym, describe: 'store per-block zero points (int4/int8)' },
  'accuracy-level': { type: 'number', default: QUANT_DEFAULTS.accuracyLevel, describe: 'MatMulNBits accuracy_level: 4 = int8 activations (CPU/mobile), 0 = unset (CUDA)' },
  exclude: { type: 'string', array: true, default: [], describe: 'node-name pattern to leave in float: glob (* matches /) or /regex/; repeatable' },
  override: { type: 'string', array: true, default: [], describe: "PATTERN=SCHEME for matching nodes, e.g. '*lm_head*=int8'; repeatable" },
  embeddings: {
    type: 'string',
    choices: EMBEDDINGS_MODES,
    default: QUANT_DEFAULTS.embeddings,
    describe: 'embedding tables → GatherBlockQuantized: only when tied to the lm_head, all, or none',
  },
  calib: {
    type: 'string',
    describe: 'calibration tokens for gptq, awq and --bits-budget: {"tokens": [ids...]} or [[ids...], ...] (decoder graphs with genai inputs)',
  },
  'bits-budget': {
    type: 'number',
    describe:
      'mixed precision: move the most sensitive weights to --high-scheme while the average bits per MatMul weight (scales and zero points included) stays within N; sensitivity is model KL on --calib tokens, or weight error without them',
  },
  'high-scheme': { type: 'string', choices: HIGH_SCHEMES, default: QUANT_DEFAULTS.highScheme, describe: 'the scheme --bits-budget moves sensitive weights to' },
  threads: { type: 'number', describe: 'worker threads (default: cores, at most 4; 0 = no workers)' },
  json: { type: 'boolean', default: false, describe: 'print one JSON document describing the result' },
} as const satisfies OptionTable<QuantizeFileOptions, { 'block-size': 'blockSize'; 'accuracy-level': 'accuracyLevel' }, 'out' | 'override' | 'calib' | 'json'> &
  OptionTable<MixedOptions, { 'bits-budget': 'budgetBits'; 'high-scheme': 'high' }>;

export const quantizeCommand = defineCommand({
  command: 'quantize <input>',
  describe: 'quantize the constant MatMul weights of an ONNX model to MatMulNBits (int4, int8 or ternary)',
  builder: (y) =>
    y.positional('input', { type: 'string', demandOption: true, describe: 'model.onnx (external data next to it is read by offset)' }).options(options),
  run: async (args) => {
    const algo = args.algo;
    const budget = args.bitsBudget;
    if (isCalibratedAlgo(algo) && args.calib === undefined) {
      throw new UsageError(`--algo ${algo} needs --calib FILE`, { fix: 'give calibration token sequences: {"tokens": [ids...]} or [[ids...], ...]' });
    }
    if (!isCalibratedAlgo(algo) && budget === undefined && args.calib !== undefined) {
      const others = QUANT_ALGOS.filter((a) => !isCalibratedAlgo(a));
      throw new UsageError(`--calib is only used by --algo ${CALIBRATED_ALGOS.join(' / ')} and --bits-budget`, { fix: `drop --calib for ${others.join(' and ')}` });
    }
    if (budget !== undefined && !(budget > 0)) throw new UsageError(`--bits-budget ${budget} is not a positive number`, { fix: 'e.g. --bits-budget 6' });
    const overrides = args.override.map(parseOverride);
    const [{ quantizeModelFile }, { validateMethod }, { withAbortOnSigint }] = await Promise.all([
      import('../../quant/quantize-file.js'),
      import('../../quant/method.js'),
      import('../abort.js'),
    ]);
    try {
      validateMethod({ blockSize: args.blockSize, accuracyLevel: args.accuracyLevel }, 'flags');
    } catch (e) {
      // Flag values are usage errors (exit code 2), checked before any model is read.
      const err = e as { message: string; fix?: string };
      throw new UsageError(err.message.split('\n')[0].replace(/^flags: /, ''), { fix: err.fix });
    }
    const [{ checkWholeNumber }, { maxIntraOpThreads }] = await Promise.all([import('../number-flags.js'), import('../../ort/threads.js')]);
    checkWholeNumber('--threads', args.threads, { min: 0, max: maxIntraOpThreads() });
    // The output and its `<out>.data` must be file paths (`--out /` or `--out <folder>` would write `/.data` or
    // `<folder>.data` before failing); the input may be the output (saveModel reads tensors before replacing).
    const { checkOutputFile } = await import('../../util/output-path.js');
    await checkOutputFile(args.out, { flag: '--out' });
    await checkOutputFile(`${args.out}.data`, { flag: '--out (its data file)', inputs: [args.input] });
    const t0 = performance.now();
    let calibration: CalibrationSource | undefined;
    if (args.calib !== undefined) {
      const { readTokenFile, tokenCalibration } = await import('../../quant/calibration/calibration.js');
      calibration = tokenCalibration(await readTokenFile(args.calib), args.calib);
    }
    const progress = !args.json && process.stderr.isTTY;
    // Ctrl-C stops between pieces of work; the scratch file and any partial output are removed.
    const r = await withAbortOnSigint((signal) => quantizeModelFile(args.input, args.out, {
      scheme: args.scheme,
      algo,
      blockSize: args.blockSize,
      asym: args.asym,
      accuracyLevel: args.accuracyLevel,
      exclude: args.exclude,
      overrides,
      embeddings: args.embeddings,
      calibration,
      mixed: budget === undefined ? undefined : { budgetBits: budget, high: args.highScheme },
      threads: args.threads,
      onProgress: progress ? (p) => process.stderr.write(`\r${p.pass}: ${p.done}/${p.total} ${p.item ?? ''}`.slice(0, 120).padEnd(120)) : undefined,
      signal,
    }));
    if (progress) process.stderr.write('\r'.padEnd(121) + '\r');
    const saved = r.saved;
    const seconds = (performance.now() - t0) / 1000;
    const warnings = [...r.warnings, ...r.reports.flatMap((p) => (p.stats as { warnings?: string[] }).warnings ?? [])];
    if (args.json) {
      printJson({ input: args.input, output: saved.path, dataPath: saved.dataPath, modified: r.modified, seconds, passes: r.reports, warnings });
      return;
    }
    const out: string[] = [];
    for (const p of r.reports) out.push(summaryLine(p));
    for (const w of warnings) out.push(`warning: ${w}`);
    out.push(`→ ${saved.path}${saved.dataPath ? ` + ${saved.dataPath}` : ''} (${seconds.toFixed(1)} s)`);
    process.stdout.write(out.join('\n') + '\n');
  },
});
