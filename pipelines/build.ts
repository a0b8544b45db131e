// `build`: resolve the source, then per target build → quantize → validate → package, every step a cached stage,
// shown as a listr2 task tree. Failing gates fail that target (no package) and the build's exit code, not the others.
import { join, resolve } from 'node:path';
import type { ListrTask } from 'listr2';
import { resolveBuildSpec, type BuildSpec } from '../src/recipes/build-spec.js';
import { runStage, stageKey, type StageDefinition, type StageOutcome } from '../src/stages/runner.js';
import { sourceStage, type SourceResult } from '../src/stages/source.js';
import { convertStage, type ConvertResult } from '../src/stages/convert.js';
import { quantizeStage, type QuantizeResult } from '../src/stages/quantize.js';
import { referenceStage, validateStage, type ReferenceResult, type ValidateResult } from '../src/stages/validate.js';
import { checkPublishTarget, packageStage, publishPackage, type PackageResult } from '../src/stages/package.js';
import { formatProgress, taskList, throttle } from '../src/stages/task-tree.js';
import { targetPlan, type TargetPlan } from '../src/recipes/target-plan.js';
import { FileHashMemo } from '../src/util/hash.js';
import { checkWorkFolder } from '../src/util/output-path.js';
import { GateError, isPhiForgeError, type PhiForgeError } from '../src/util/errors.js';
import { checkGates, formatGateTable } from '../src/eval/gates.js';
import { getArchitecture } from '../src/arch/index.js';
import type { TargetId } from '../src/recipes/schema.js';
import type { ExternalToolInfo } from '../src/external/index.js';
import type { BuildReport, StageTiming, TargetReport } from '../src/stages/build-report.js';
import type { Builder, Precision } from '../src/vocabulary.js';

export type { BuildReport, StageTiming, TargetReport } from '../src/stages/build-report.js';

export interface BuildRequest {
  /** Recipe name or file, hub id, or checkpoint folder. */
  spec: string;
  targets?: TargetId[];
  /** fp32|fp16 (activations, no quantization) or int4|int8|ternary (scheme for every target). */
  precision?: Precision;
  /** Where finished packages are published (<out>/<model>-<target>); default artifacts/packages. */
  out?: string;
  /** Replace a published folder that holds files other than a previous package's. */
  force?: boolean;
  /** Root of the stage cache; default <repo>/artifacts (or PHI_FORGE_ARTIFACTS). */
  artifacts?: string;
  hubToken?: string;
  /** Overrides the recipe's builder for this build. */
  builder?: Builder;
  /** Python interpreter for external builders (default PHI_FORGE_PYTHON, then PATH). */
  python?: string;
  quiet?: boolean;
  signal?: AbortSignal;
}

export const DEFAULT_ARTIFACTS = resolve(new URL('../artifacts', import.meta.url).pathname);

/** The stage cache folder: `given` (--artifacts), else PHI_FORGE_ARTIFACTS, else the repo's artifacts/; a folder. */
export async function artifactsRoot(given?: string): Promise<string> {
  if (given !== undefined) return checkWorkFolder(given, '--artifacts');
  const env = process.env.PHI_FORGE_ARTIFACTS;
  return checkWorkFolder(env ?? DEFAULT_ARTIFACTS, env ? 'PHI_FORGE_ARTIFACTS' : '--artifacts');
}

export async function build(req: BuildRequest): Promise<BuildReport> {
  const spec = await resolveBuildSpec(req.spec, { targets: req.targets, precision: req.precision, builder: req.builder });
  return buildFromSpec(spec, req);
}

/** Builds an already resolved spec (compare and release build variants of one recipe through this). */
export async function buildFromSpec(spec: BuildSpec, req: Omit<BuildRequest, 'spec' | 'targets' | 'precision'>): Promise<BuildReport> {
  const t0 = performance.now();
  const artifacts = await artifactsRoot(req.artifacts);
  const model = spec.recipe.name;
  // Where each package goes is checked before any work: a folder of the user's there is never replaced unasked.
  const outRoot = await checkWorkFolder(req.out ?? join(artifacts, 'packages'), '--out');
  for (const t of spec.recipe.targets) await checkPublishTarget(join(outRoot, `${model}-${t.target}`), req.force);
  // External builders are checked before any work, so a missing tool is one message, not a failed stage.
  let tool: ExternalToolInfo | undefined;
  if (spec.recipe.builder !== 'native') {
    const { detectExternalBuilder, parseBuilderOptions } = await import('../src/external/index.js');
    parseBuilderOptions(spec.recipe.builder, spec.recipe.builder_options);
    tool = await detectExternalBuilder(spec.recipe.builder, req.python, { target: spec.recipe.targets[0]?.target, signal: req.signal });
  }
  const memo = await FileHashMemo.open(join(artifacts, '.file-hashes.json'));
  const plans = spec.recipe.targets.map((t) => targetPlan(t, spec.recipe));
  const timings = new Map<TargetId, StageTiming[]>(plans.map((p) => [p.target.id, []]));
  const outcomes = new Map<string, StageOutcome<unknown>>();
  const reports: TargetReport[] = [];
  let source!: StageOutcome<SourceResult>;

  /** Runs a stage once per build even when several targets share it (same key → same outcome). */
  const stage = async <R>(def: StageDefinition<R>, task: { output: string }, forTargets: TargetId[]): Promise<StageOutcome<R>> => {
    const id = `${def.name}:${stageKey(def)}`;
    let out = outcomes.get(id) as StageOutcome<R> | undefined;
    if (!out) {
      out = await runStage(def, {
        root: artifacts,
        signal: req.signal,
        onProgress: throttle((p) => (task.output = formatProgress(p)), 250),
      });
      outcomes.set(id, out as StageOutcome<unknown>);
      task.output = out.cached ? `cached (${out.dir})` : `done in ${out.record.seconds.toFixed(1)}s`;
    }
    for (const t of forTargets) {
      timings.get(t)!.push({ stage: def.name, cached: out.cached, seconds: out.cached ? 0 : out.record.seconds, dir: out.dir });
    }
    return out;
  };

  const targetTask = (plan: TargetPlan): ListrTask => ({
    title: `${plan.target.id}: ${plan.describe}`,
    exitOnError: false,
    task: async (_ctx, task) => {
      const report: TargetReport = {
        target: plan.target.id,
        ok: false,
        precision: plan.precision,
        quantization: plan.quant,
        stages: timings.get(plan.target.id)!,
      };
      reports.push(report);
      let current = 'convert';
      try {
        const ids = [plan.target.id];
        const convert = await stage<ConvertResult>(convertStage({ model, source, plan, recipe: spec.recipe, tool, python: req.python }), task, ids);
        current = 'quantize';
        const needsQuant = plan.quant && !convert.record.result.quantized;
        const quantized = needsQuant ? await stage<QuantizeResult>(quantizeStage({ model, convert, plan, resolvePath: spec.resolvePath }), task, ids) : undefined;
        const modelDir = quantized?.dir ?? convert.dir;
        let validation: ValidateResult | undefined;
        if (spec.recipe.validation) {
          current = 'reference';
          // The reference must be unquantized: when an external tool quantized, build the float model natively.
          const unquantized = convert.record.result.quantized
            ? await stage<ConvertResult>(convertStage({ model, source, plan, recipe: { ...spec.recipe, builder: 'native' } }), task, ids)
            : convert;
          const reference = await stage<ReferenceResult>(
            referenceStage({ model, convert: unquantized, validation: spec.recipe.validation, resolvePath: spec.resolvePath }),
            task,
            ids,
          );
          current = 'validate';
          const v = await stage<ValidateResult>(validateStage({ model, modelDir, modelKey: (quantized ?? convert).key, reference }), task, ids);
          validation = v.record.result;
          report.validation = validation;
          // Gates are checked here, outside the cached stage: changing a gate needs no new evaluation.
          const verdict = checkGates(validation.metrics, plan.gates);
          report.gates = verdict;
          if (!verdict.passed) {
            const table = formatGateTable(verdict.rows);
            report.failure = { stage: 'validate', code: 'GATE_FAILED', message: `gates failed:\n${table}` };
            throw new GateError('GATE_FAILED', `gates failed:\n${table}`, { where: `target ${plan.target.id}` });
          }
        }
        current = 'package';
        const pkg = await stage<PackageResult>(
          packageStage({ model, recipe: spec.recipe, source, plan, modelDir, modelKey: (quantized ?? convert).key, validation, gates: report.gates }),
          task,
          ids,
        );
        const published = await publishPackage(pkg.dir, outRoot, `${model}-${plan.target.id}`, req.force);
        report.package = published;
        report.files = pkg.record.result.files;
        report.ok = true;
        task.title = `${plan.target.id}: ${plan.describe} → ${published}`;
      } catch (e) {
        if (!report.failure) {
          const err = e as PhiForgeError;
          report.failure = { stage: current, code: isPhiForgeError(e) ? err.code : 'INTERNAL', message: err.message ?? String(e) };
        }
        task.title = `${plan.target.id}: failed at ${report.failure.stage}`;
        // The task shows as failed; other targets still build (exitOnError is off per target) and the build's
        // exit code reports the failure.
        throw e;
      }
    },
  });

  const tasks: ListrTask[] = [
    {
      title: `source: ${describeSource(spec)}`,
      task: async (_ctx, task) => {
        source = await stage<SourceResult>(
          await sourceStage({ model, recipe: spec.recipe, resolvePath: spec.resolvePath, memo, hubToken: req.hubToken, signal: req.signal }),
          task,
          plans.map((p) => p.target.id),
        );
        await memo.save();
        task.title = `source: ${source.record.result.origin}`;
        // Before any target reads weights: can the native builder build this architecture? (Also on a cache hit.)
        if (spec.recipe.builder === 'native') getArchitecture(source.record.result.architecture || undefined);
      },
    },
    ...plans.map(targetTask),
  ];
  await taskList(tasks, { quiet: req.quiet }).run();

  const all = [...timings.values()].flat();
  const unique = new Map(all.map((t) => [t.dir, t]));
  return {
    model,
    recipe: spec.file ?? spec.recipe.name,
    source: source.record.result,
    targets: reports,
    seconds: +((performance.now() - t0) / 1000).toFixed(3),
    stagesRun: [...unique.values()].filter((t) => !t.cached).length,
    stagesCached: [...unique.values()].filter((t) => t.cached).length,
  };
}

function describeSource(spec: BuildSpec): string {
  const s = spec.recipe.source;
  if ('hub' in s) return `hub ${s.hub}@${s.revision}`;
  if ('path' in s) return `folder ${s.path}`;
  if ('llama2c' in s) return `llama2.c ${s.llama2c}`;
  return `synth ${s.synth.preset} (${s.synth.scale}, seed ${s.synth.seed})`;
}
