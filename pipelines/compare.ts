// `compare`: builds one recipe under several quantization schemes for one target (variants share the recipe name,
// so source, convert and reference stages are built once and reused), scores all of them against the same
// reference outputs, measures size, bits per weight and speed, and writes report.md, report.html and report.json.
// A scheme that cannot be built is a failed row, not a failed comparison; gates are reported, not enforced.
import { stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { resolveBuildSpec, type BuildSpec } from '../src/recipes/build-spec.js';
import { readStageRecord } from '../src/stages/runner.js';
import type { Recipe, RecipeTarget, TargetId } from '../src/recipes/schema.js';
import { parseSchemeList, variantTarget, type Scheme } from '../src/compare/schemes.js';
import type { CompareReport, CompareRow, CompareStage } from '../src/compare/compare-report.js';
import { paretoFront } from '../src/compare/pareto.js';
import type { SpeedOptions } from '../src/compare/speed.js';
import { checkGates } from '../src/eval/gates.js';
import { writeFileAtomic } from '../src/util/atomic-fs.js';
import { isPhiForgeError, UsageError, type PhiForgeError } from '../src/util/errors.js';
import { checkWorkFolder } from '../src/util/output-path.js';
import { artifactsRoot, buildFromSpec } from './build.js';

export type { CompareReport, CompareRow } from '../src/compare/compare-report.js';

export interface CompareRequest {
  /** Recipe name or file, hub id, checkpoint folder or llama2.c file (anything `build` accepts). */
  spec: string;
  /** Scheme names (`int4-rtn`, `int8`, `fp32`, ...) or comma-separated lists of them. */
  schemes: string | readonly string[];
  /** The one target compared (default cpu when the recipe has it, else the recipe's first). */
  target?: TargetId;
  /** Validation data: a tokens .json file or a text dataset (default: the recipe's, else 8×64 sampled tokens). */
  data?: string;
  /** Where report.md/.html/.json and packages/<scheme>/ go (default <artifacts>/compare/<model>-<target>). */
  report?: string;
  artifacts?: string;
  hubToken?: string;
  /** Speed measurement options; false skips it. */
  speed?: SpeedOptions | false;
  /** Hide the build task trees (tests). */
  quiet?: boolean;
  signal?: AbortSignal;
  /** One line per scheme as it starts and ends. */
  log?: (line: string) => void;
}

const DEFAULT_VALIDATION: NonNullable<Recipe['validation']> = {
  data: { sample: { sequences: 8, length: 64, seed: 0 } },
  max_length: 512,
};

export async function compare(req: CompareRequest): Promise<CompareReport> {
  const t0 = performance.now();
  const schemes = parseSchemeList(req.schemes);
  const log = req.log ?? (() => undefined);
  const artifacts = await artifactsRoot(req.artifacts);
  const spec = await resolveBuildSpec(req.spec);
  const base = chooseTarget(spec, req.target);
  const validation = await validationFor(spec.recipe, req.data);
  const gates = base.gates ?? spec.recipe.gates;
  const budget = base.size_budget_mb;
  const model = spec.recipe.name;
  const reportDir = await checkWorkFolder(req.report ?? join(artifacts, 'compare', `${model}-${base.target}`), '--report');

  const rows: CompareRow[] = [];
  let source = model;
  let dataDescription: string | undefined;
  for (const [i, scheme] of schemes.entries()) {
    log(`[${i + 1}/${schemes.length}] ${scheme.name}`);
    const target = variantTarget(base, scheme);
    const row: CompareRow = { scheme: scheme.name, ok: false, precision: target.precision, quantization: target.quant };
    rows.push(row);
    let step = 'build';
    try {
      const variant: BuildSpec = { ...spec, recipe: { ...spec.recipe, targets: [target], validation, gates: undefined } };
      const built = await buildFromSpec(variant, {
        artifacts,
        out: join(reportDir, 'packages', scheme.name),
        hubToken: req.hubToken,
        quiet: req.quiet,
        signal: req.signal,
      });
      source = built.source?.origin ?? source;
      const t = built.targets[0];
      row.precision = t.precision;
      row.quantization = t.quantization ?? { scheme: 'none' };
      row.stages = await stageTimes(t.stages);
      if (!t.ok || !t.package) {
        row.failure = t.failure ?? { stage: 'build', code: 'NO_PACKAGE', message: 'the build published no package' };
      } else {
        step = 'measure';
        await measure(row, t.package, t.files ?? [], req);
        row.ok = true;
        row.metrics = t.validation?.metrics;
        dataDescription ??= t.validation?.data;
        row.build_seconds = +row.stages.reduce((n, s) => n + s.seconds, 0).toFixed(3);
        if (gates && row.metrics) row.gates = checkGates(row.metrics, gates);
        if (budget !== undefined && row.size_bytes !== undefined) row.size_budget = { allowed_mb: budget, ok: row.size_bytes <= budget * 2 ** 20 };
      }
    } catch (e) {
      if (req.signal?.aborted) throw e;
      const err = e as PhiForgeError;
      row.failure = { stage: step, code: isPhiForgeError(e) ? err.code : 'INTERNAL', message: err.message ?? String(e) };
    }
    log(row.ok ? `  ✔ ${scheme.name}` : `  ✖ ${scheme.name}: failed at ${row.failure?.stage}: ${row.failure?.message.split('\n')[0]}`);
  }

  markPareto(rows);
  const okRows = rows.filter((r) => r.ok && r.metrics);
  const ref = okRows.find((r) => r.metrics?.ppl_ref !== undefined)?.metrics;
  const timed = rows.find((r) => r.speed)?.speed;
  const report: CompareReport = {
    model,
    recipe: spec.file ?? spec.recipe.name,
    source,
    target: base.target,
    data: dataDescription,
    reference: ref?.ppl_ref !== undefined ? { ppl: ref.ppl_ref, tokens_scored: ref.tokens_scored } : undefined,
    gates,
    size_budget_mb: budget,
    speed: timed
      ? {
          runtime: `onnxruntime-node ${await ortVersion()} (CPU)`,
          prefill_tokens: timed.prefill_tokens,
          decode_tokens: timed.decode_tokens,
          runs: timed.runs,
          warmup: timed.warmup,
        }
      : undefined,
    rows,
    report_dir: reportDir,
    files: { markdown: join(reportDir, 'report.md'), html: join(reportDir, 'report.html'), json: join(reportDir, 'report.json') },
    seconds: 0,
  };
  report.seconds = +((performance.now() - t0) / 1000).toFixed(3);
  const { renderCompareMarkdown } = await import('../src/compare/report-md.js');
  const { renderCompareHtml } = await import('../src/compare/report-html.js');
  await writeFileAtomic(report.files.markdown, renderCompareMarkdown(report));
  await writeFileAtomic(report.files.html, renderCompareHtml(report));
  await writeFileAtomic(report.files.json, JSON.stringify(report, null, 2) + '\n');
  return report;
}

/** The recipe's entry for the target asked for (or a bare one when the recipe does not list it). */
function chooseTarget(spec: BuildSpec, id: TargetId | undefined): RecipeTarget {
  const targets = spec.recipe.targets;
  if (id) return targets.find((t) => t.target === id) ?? { target: id };
  return targets.find((t) => t.target === 'cpu') ?? targets[0];
}

/** --data (a tokens .json file, else a text dataset), else the recipe's validation, else sampled sequences. */
async function validationFor(recipe: Recipe, data: string | undefined): Promise<NonNullable<Recipe['validation']>> {
  if (!data) return recipe.validation ?? DEFAULT_VALIDATION;
  const path = resolve(data);
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile()) {
    throw new UsageError('the --data file does not exist', {
      code: 'COMPARE_DATA_MISSING',
      file: path,
      fix: 'pass a tokens JSON ({"tokens": [...]} or [[...], ...]) or a text, .jsonl or .parquet dataset',
    });
  }
  const kept = { max_length: recipe.validation?.max_length ?? DEFAULT_VALIDATION.max_length, stride: recipe.validation?.stride };
  return extname(path).toLowerCase() === '.json' ? { data: { tokens: path }, ...kept } : { data: { text: path }, ...kept };
}

/** Size of the package and of the model, bits per weight from the graph, and speed in onnxruntime-node. */
async function measure(row: CompareRow, pkg: string, files: { path: string; size: number }[], req: CompareRequest): Promise<void> {
  const { modelWeightStats } = await import('../src/compare/metrics.js');
  row.package = pkg;
  row.size_bytes = files.reduce((n, f) => n + f.size, 0);
  row.model_bytes = files.filter((f) => f.path === 'model.onnx' || f.path === 'model.onnx.data').reduce((n, f) => n + f.size, 0);
  const w = await modelWeightStats(pkg);
  row.weights = w.weights;
  row.bits_per_weight = w.bitsPerWeight;
  if (req.speed === false) return;
  const { measureSpeed } = await import('../src/compare/speed.js');
  try {
    row.speed = await measureSpeed(pkg, { ...req.speed, signal: req.signal });
  } catch (e) {
    if (req.signal?.aborted) throw e;
    // A package built for a GPU target may hold kernels the CPU provider lacks; its other numbers still stand.
    row.speed_error = (e as Error).message ?? String(e);
  }
}

/** Each stage's own run time from its stage.json: a cached stage still cost that much when it ran. */
async function stageTimes(stages: { stage: string; cached: boolean; seconds: number; dir: string }[]): Promise<CompareStage[]> {
  return Promise.all(
    stages.map(async (s) => ({ stage: s.stage, cached: s.cached, seconds: (await readStageRecord<unknown>(s.dir))?.seconds ?? s.seconds, dir: s.dir })),
  );
}

/** Marks the rows on the front of Δppl against bits per weight. */
function markPareto(rows: CompareRow[]): void {
  const ok = rows.filter((r) => r.ok);
  const front = new Set(paretoFront(ok.map((r) => ({ x: r.bits_per_weight ?? NaN, y: r.metrics?.ppl_delta_pct ?? NaN })), { x: 'min', y: 'min' }));
  ok.forEach((r, i) => (r.pareto = front.has(i)));
}

async function ortVersion(): Promise<string> {
  const { env } = await import('onnxruntime-node');
  return env.versions.node ?? env.versions.common ?? '';
}
