// runExternalBuilder: the convert stage's work done by Microsoft's toolchain — detect it, run it (streamed, logged,
// killable), then ingest its output so outDir looks exactly like the native builder's (model.onnx, model.onnx.data,
// genai_config.json, tokenizer files) and validate/package run on it unchanged.
import { copyFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { TargetId } from '../target/types.js';
import { ExternalToolError } from '../util/errors.js';
import { detectExternalBuilder, type ExternalToolInfo } from './detect.js';
import { genaiBuilderInvocation } from './genai-builder.js';
import { ingestToolOutput, type IngestResult } from './ingest.js';
import { olivePlan } from './olive.js';
import { parseBuilderOptions, type GenaiBuilderOptions, type OliveBuilderOptions } from './options.js';
import { quantizationMismatches, type QuantDecision, type RecipeQuant } from './quant-mapping.js';
import type { ExternalBuilderKind } from './requirements.js';
import { runTool } from './run-tool.js';

export interface ExternalBuildRequest {
  kind: ExternalBuilderKind;
  checkpointDir: string;
  /** The stage's output folder (may already exist, e.g. the stage runner's temp folder). */
  outDir: string;
  precision: 'fp32' | 'fp16';
  target: TargetId;
  /** The plan's quant options, or undefined when the target ships unquantized. */
  quant?: RecipeQuant;
  /** The recipe's builder_options (validated here for `kind`). */
  options?: Record<string, unknown>;
  /** --python; else PHI_FORGE_PYTHON, else python3/python on PATH. */
  python?: string;
  signal?: AbortSignal;
  onOutput?: (line: string) => void;
  onProgress?: (pct: number) => void;
  /** Environment for detection and the tool (default process.env). */
  env?: NodeJS.ProcessEnv;
  /**
   * Where the log is copied when the build fails (the stage runner deletes a failed stage's folder).
   * Default: outDir's parent, i.e. next to the stage folders.
   */
  failedLogDir?: string;
}

export interface ExternalBuildResult {
  /** The (last) command run, e.g. [python, -m, onnxruntime_genai.models.builder, ...]. */
  command: string[];
  /** Every command run, in order (Olive's quantize mode runs two). */
  commands: string[][];
  /** The tool's combined stdout+stderr, in outDir. */
  logFile: string;
  /** Files in outDir, relative: model.onnx, model.onnx.data, genai_config.json, tokenizer files. */
  files: string[];
  /** True when the tool quantized: skip our quantize stage. False: a float model our quantize pass may take. */
  quantized: boolean;
  /** The tool's interpreter and package versions (for stage.json). */
  tool: { kind: ExternalBuilderKind; python: string; pythonVersion: string; versions: Record<string, string | null> };
  /** What ingest found (quantization attributes, logits dtype, re-saved or moved). */
  ingest: Omit<IngestResult, 'files'>;
}

/** Scratch space inside the stage folder: the tool's raw output, its cache, Olive's config. */
export const EXTERNAL_WORK_DIR = '.external';

const LABEL: Record<ExternalBuilderKind, string> = { genai: 'the onnxruntime-genai builder', olive: 'Olive' };
const LOG_FILE: Record<ExternalBuilderKind, string> = { genai: 'genai-builder.log', olive: 'olive.log' };

export async function runExternalBuilder(req: ExternalBuildRequest): Promise<ExternalBuildResult> {
  const env = req.env ?? process.env;
  const outDir = resolve(req.outDir);
  const checkpointDir = resolve(req.checkpointDir);
  // Recipe problems first (no process started), then the environment, then the work.
  const options = parseBuilderOptions(req.kind, req.options);
  const tiedEmbeddings = await readTiedEmbeddings(checkpointDir);
  const work = join(outDir, EXTERNAL_WORK_DIR);
  const toolOut = join(work, 'output');
  const planned =
    req.kind === 'genai'
      ? planGenai(req, checkpointDir, toolOut, join(work, 'cache'), tiedEmbeddings, options as GenaiBuilderOptions)
      : planOlive(req, checkpointDir, toolOut, work, tiedEmbeddings, options as OliveBuilderOptions);
  const info = await detectExternalBuilder(req.kind, req.python, { target: req.target, env, signal: req.signal });

  const logFile = join(outDir, LOG_FILE[req.kind]);
  const keptLog = join(req.failedLogDir ?? dirname(outDir), `${basename(LOG_FILE[req.kind], '.log')}.${new Date().toISOString().replace(/[:.]/g, '-')}.failed.log`);
  const commands: string[][] = [];
  try {
    await rm(work, { recursive: true, force: true });
    await mkdir(toolOut, { recursive: true });
    if (planned.configFile && planned.config) await writeFile(planned.configFile, JSON.stringify(planned.config, null, 2) + '\n');
    // Unbuffered so progress reaches the task tree as it happens, not when Python's 8 KiB buffer fills.
    const toolEnv = { ...env, PYTHONUNBUFFERED: '1', PYTHONIOENCODING: 'utf-8' };
    for (const step of planned.steps(info)) {
      const r = await runTool({
        file: step.file,
        args: step.args,
        label: step.label,
        logFile,
        logShownAs: keptLog,
        cwd: work,
        env: toolEnv,
        signal: req.signal,
        onLine: (line) => req.onOutput?.(line),
        onProgress: (pct) => req.onProgress?.(pct),
      });
      commands.push(r.command);
    }

    const ingested = await ingestToolOutput({ toolOutputDir: toolOut, outDir, checkpointDir, tool: LABEL[req.kind], move: true });
    const mismatches = quantizationMismatches(planned.quant, ingested.quantization, { blockSizeChosenByTool: planned.blockSizeChosenByTool });
    if (mismatches.length) {
      throw new ExternalToolError('EXTERNAL_OUTPUT_QUANT_MISMATCH', `${LABEL[req.kind]} did not quantize as the recipe asks:\n  ${mismatches.join('\n  ')}`, {
        file: keptLog,
        fix: 'change the recipe to what this tool version does, use builder_options.mode: run (Olive) to pass every option, or builder_options.quantize: native',
      });
    }
    if (!options.keep_output) await rm(work, { recursive: true, force: true });
    const { files, ...ingest } = ingested;
    return {
      command: commands[commands.length - 1] ?? [],
      commands,
      logFile,
      files,
      quantized: planned.quant.byTool,
      tool: { kind: req.kind, python: info.python.path, pythonVersion: info.pythonVersion, versions: info.versions },
      ingest,
    };
  } catch (e) {
    // A failed stage's folder is removed by the stage runner: keep the log where the error message says it is.
    if (!req.signal?.aborted && (await exists(logFile))) {
      await mkdir(dirname(keptLog), { recursive: true });
      await copyFile(logFile, keptLog).catch(() => undefined);
    }
    throw e;
  }
}

interface PlannedRun {
  quant: QuantDecision;
  config?: Record<string, unknown>;
  configFile?: string;
  /** Olive's quantize mode: the AWQ/GPTQ group size is the quantizer's, not the recipe's. */
  blockSizeChosenByTool?: boolean;
  steps: (info: ExternalToolInfo) => { file: string; args: string[]; label: string }[];
}

function planGenai(req: ExternalBuildRequest, checkpointDir: string, toolOut: string, cacheDir: string, tiedEmbeddings: boolean, options: GenaiBuilderOptions): PlannedRun {
  const inv = genaiBuilderInvocation({ checkpointDir, outputDir: toolOut, cacheDir, precision: req.precision, target: req.target, quant: req.quant, tiedEmbeddings, options });
  return { quant: inv.quant, steps: (info) => [{ file: info.python.path, args: inv.args, label: LABEL.genai }] };
}

function planOlive(req: ExternalBuildRequest, checkpointDir: string, toolOut: string, work: string, tiedEmbeddings: boolean, options: OliveBuilderOptions): PlannedRun {
  const plan = olivePlan({ checkpointDir, outputDir: toolOut, workDir: work, precision: req.precision, target: req.target, quant: req.quant, tiedEmbeddings, options });
  return {
    quant: plan.quant,
    config: plan.config,
    configFile: plan.configFile,
    blockSizeChosenByTool: options.mode === 'quantize',
    steps: (info) => plan.steps.map((s) => ({ file: info.olive!, args: s.args, label: s.label })),
  };
}

/** config.json's tie_word_embeddings (transformers' default for Phi3 is false). */
async function readTiedEmbeddings(checkpointDir: string): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(join(checkpointDir, 'config.json'), 'utf8');
  } catch (e) {
    throw new ExternalToolError('EXTERNAL_CHECKPOINT', 'the checkpoint folder has no readable config.json', { file: checkpointDir, cause: e, fix: 'pass a Hugging Face checkpoint folder' });
  }
  try {
    return (JSON.parse(text) as { tie_word_embeddings?: unknown }).tie_word_embeddings === true;
  } catch (e) {
    throw new ExternalToolError('EXTERNAL_CHECKPOINT', 'config.json is not valid JSON', { file: join(checkpointDir, 'config.json'), cause: e });
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
