// Ingesting an external tool's output folder: find its model.onnx(+data) and genai_config.json (the genai builder
// writes them at top level, Olive in a subfolder such as model/), check them (keys onnxruntime-genai accepts, a
// decodable model with the inputs/outputs the config names, external data within its files), and lay them out in
// our stage folder exactly like the native builder's output.
import { constants } from 'node:fs';
import { copyFile, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { copyTokenizerFiles, findTokenizerFiles } from '../checkpoint/tokenizer-files.js';
import { graphIo, ioProblems } from '../genai/io-check.js';
import { GENAI_CONFIG_FILE, genaiConfigPath, parseGenaiConfig, readGenaiJson, type GenaiConfigFile } from '../genai/read.js';
import { checkGenaiConfigKeys } from '../genai/schema.js';
import { writeGenaiConfig } from '../genai/write.js';
import { DataType, dataTypeName } from '../onnx/dtype.js';
import type { Model } from '../onnx/ir.js';
import { loadModel, saveModel } from '../onnx/model-file.js';
import { ExternalToolError, isPhiForgeError } from '../util/errors.js';
import type { FoundQuantization } from './quant-mapping.js';

export const MODEL_FILE = 'model.onnx';
export const DATA_FILE = 'model.onnx.data';
/** Like convertCheckpoint: only the Constant nodes' few-int64 values stay inline when we re-save. */
const RESAVE_INLINE_BYTES = 64;
/** How deep below the tool's output folder a model folder is looked for (Olive: output/model/, output/<pass>/model/). */
const SEARCH_DEPTH = 3;

export interface IngestOptions {
  /** The folder the tool wrote into. */
  toolOutputDir: string;
  /** Our stage folder; receives model.onnx, model.onnx.data, genai_config.json, tokenizer files. */
  outDir: string;
  /** Tokenizer files come from here when the tool wrote none. */
  checkpointDir?: string;
  /** For messages, e.g. `the onnxruntime-genai builder`. */
  tool: string;
  /** Move files (same file system, cheap) instead of copying. Default true. */
  move?: boolean;
}

export interface QuantizationFound extends FoundQuantization {
  /** Bit widths of MatMulNBits and GatherBlockQuantized nodes. */
  bits: number[];
  /** Block sizes of the GatherBlockQuantized (embedding) nodes. */
  embeddingBlockSizes: number[];
}

export interface IngestResult {
  /** Files now in outDir, relative to it: model.onnx, model.onnx.data, genai_config.json, then tokenizer files. */
  files: string[];
  /** Where the tool's model was found (absolute). */
  foundIn: string;
  /** True when the model was re-written (another file name or data layout than ours); false when moved as is. */
  resaved: boolean;
  /** dtype of `logits`, e.g. `float` or `float16`. */
  logitsDtype: string;
  /** Present when the tool quantized (MatMulNBits / GatherBlockQuantized nodes). */
  quantization?: QuantizationFound;
  /** Where the tokenizer files came from: the tool's output or the checkpoint (or none at all). */
  tokenizerFrom: 'tool' | 'checkpoint' | 'none';
}

/** Finds, checks and lays out the tool's model in outDir. Throws ExternalToolError naming what is wrong. */
export async function ingestToolOutput(opts: IngestOptions): Promise<IngestResult> {
  const root = resolve(opts.toolOutputDir);
  const outDir = resolve(opts.outDir);
  const move = opts.move ?? true;
  const dir = await findModelFolder(root, opts.tool);
  const configPath = genaiConfigPath(dir);
  const config = await readToolConfig(configPath, opts.tool);
  // A safe relative path (checked by the genai reader): it cannot leave the folder.
  const decoderFile = config.decoder.modelFile;
  const modelPath = join(dir, decoderFile);
  if (!(await isFile(modelPath))) throw outputError('EXTERNAL_OUTPUT_NO_MODEL', `genai_config.json names decoder file ${decoderFile}, which is not there`, opts.tool, configPath);

  let model: Model;
  try {
    model = await loadModel(modelPath);
  } catch (e) {
    throw outputError('EXTERNAL_OUTPUT_BAD_MODEL', `the model cannot be decoded: ${(e as Error).message}`, opts.tool, modelPath, e);
  }
  const layout = await checkModel(model, config, dir, modelPath, opts.tool);

  await mkdir(outDir, { recursive: true });
  // Our layout: model.onnx with every initializer in model.onnx.data. Anything else (another file name, several
  // data files, everything inline) is re-written by saveModel, streaming one tensor at a time.
  const asIs = basename(modelPath) === MODEL_FILE && layout.locations.size === 1 && layout.locations.has(DATA_FILE);
  const files: string[] = [];
  if (asIs) {
    await place(modelPath, join(outDir, MODEL_FILE), move);
    await place(join(dir, DATA_FILE), join(outDir, DATA_FILE), move);
    await place(configPath, join(outDir, GENAI_CONFIG_FILE), move);
  } else {
    await saveModel(model, join(outDir, MODEL_FILE), { externalData: DATA_FILE, sizeThreshold: RESAVE_INLINE_BYTES });
    if (decoderFile === MODEL_FILE) await place(configPath, join(outDir, GENAI_CONFIG_FILE), move);
    else {
      const model = config.config.model ?? {};
      await writeGenaiConfig(outDir, { ...config.config, model: { ...model, decoder: { ...model.decoder, filename: MODEL_FILE } } });
    }
  }
  files.push(MODEL_FILE, ...((await isFile(join(outDir, DATA_FILE))) ? [DATA_FILE] : []), GENAI_CONFIG_FILE);

  let tokenizerFrom: IngestResult['tokenizerFrom'] = 'tool';
  let tokenizer = await findTokenizerFiles(dir);
  if (!tokenizer.length && opts.checkpointDir) {
    tokenizer = await findTokenizerFiles(opts.checkpointDir);
    tokenizerFrom = tokenizer.length ? 'checkpoint' : 'none';
  } else if (!tokenizer.length) tokenizerFrom = 'none';
  if (tokenizerFrom === 'tool' && move) {
    for (const f of tokenizer) await place(f, join(outDir, basename(f)), true);
  } else await copyTokenizerFiles(tokenizer, outDir);
  files.push(...tokenizer.map((f) => basename(f)));

  return { files, foundIn: dir, resaved: !asIs, logitsDtype: layout.logitsDtype, quantization: layout.quantization, tokenizerFrom };
}

// ---------------------------------------------------------------------------------------------------------------
// Finding the model folder

/** The shallowest folder under root holding genai_config.json; several at that depth is an error. */
export async function findModelFolder(root: string, tool: string): Promise<string> {
  let level = [root];
  for (let depth = 0; depth <= SEARCH_DEPTH && level.length; depth++) {
    const hits: string[] = [];
    const next: string[] = [];
    for (const d of level) {
      const entries = await readdir(d, { withFileTypes: true }).catch(() => []);
      if (entries.some((e) => e.isFile() && e.name === GENAI_CONFIG_FILE)) hits.push(d);
      // Hidden folders are caches and scratch space (.olive-cache, .cache), not output.
      for (const e of entries) if (e.isDirectory() && !e.name.startsWith('.') && e.name !== '__pycache__') next.push(join(d, e.name));
    }
    if (hits.length === 1) return hits[0];
    if (hits.length > 1) {
      throw outputError('EXTERNAL_OUTPUT_AMBIGUOUS', `found ${hits.length} model folders at the same depth: ${hits.map((h) => relative(root, h) || '.').join(', ')}`, tool, root, undefined, 'make the tool write one model (one pass / one precision), or keep_output and pick it by hand');
    }
    level = next.sort();
  }
  const top = await readdir(root).catch(() => [] as string[]);
  throw outputError(
    'EXTERNAL_OUTPUT_NO_MODEL',
    `wrote no ${GENAI_CONFIG_FILE} in ${root} or ${SEARCH_DEPTH} folders below (it holds: ${top.length ? top.sort().join(', ') : 'nothing'})`,
    tool,
    root,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// genai_config.json

/** The tool's genai_config.json, read by the genai module; its problems become this tool's output errors. */
async function readToolConfig(path: string, tool: string): Promise<GenaiConfigFile> {
  let json: unknown;
  try {
    json = await readGenaiJson(path);
  } catch (e) {
    throw outputError('EXTERNAL_OUTPUT_BAD_CONFIG', reasonOf(e), tool, path, e);
  }
  const problems = checkGenaiConfigKeys(json);
  if (problems.length) {
    throw outputError('EXTERNAL_OUTPUT_CONFIG_KEYS', `genai_config.json would not load in onnxruntime-genai:\n  ${problems.join('\n  ')}`, tool, path, undefined, 'a newer tool may write keys the runtime we target does not know yet: use the tool version the README names, or fix the keys and rebuild');
  }
  try {
    return parseGenaiConfig(json, path);
  } catch (e) {
    throw outputError('EXTERNAL_OUTPUT_BAD_CONFIG', reasonOf(e), tool, path, e);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Checking the model against its config

interface ModelLayout {
  /** External data locations used (relative names as written). */
  locations: Set<string>;
  logitsDtype: string;
  quantization?: QuantizationFound;
}

async function checkModel(model: Model, config: GenaiConfigFile, dir: string, modelPath: string, tool: string): Promise<ModelLayout> {
  const problems: string[] = [];
  if (!model.opsetImports.some((o) => o.domain === '' || o.domain === 'ai.onnx')) problems.push('no ONNX opset import');
  problems.push(...ioProblems(graphIo(model.graph), config.decoder));
  const logits = model.graph.outputs.find((o) => o.name === config.decoder.names.logits);

  // External data: inside the folder, present, long enough.
  const locations = new Set<string>();
  const sizes = new Map<string, number | undefined>();
  for (const t of model.allTensors()) {
    const s = t.source;
    if (s.kind !== 'external') continue;
    locations.add(s.location);
    if (!isInside(dir, s.path)) {
      problems.push(`tensor ${t.name} points outside the model folder (${s.location})`);
      continue;
    }
    if (!sizes.has(s.path)) sizes.set(s.path, await stat(s.path).then((st) => st.size).catch(() => undefined));
    const size = sizes.get(s.path);
    if (size === undefined) problems.push(`external data file ${s.location} (tensor ${t.name}) is missing`);
    else if (s.offset + s.length > size) problems.push(`tensor ${t.name} needs bytes ${s.offset}..${s.offset + s.length} of ${s.location}, which has ${size}`);
  }
  if (problems.length) {
    const shown = problems.slice(0, 12);
    throw outputError('EXTERNAL_OUTPUT_BAD_MODEL', `the model does not match what onnxruntime-genai will run:\n  ${shown.join('\n  ')}${problems.length > shown.length ? `\n  ... ${problems.length - shown.length} more` : ''}`, tool, modelPath);
  }

  let quantization: QuantizationFound | undefined;
  for (const n of model.graph.allNodes()) {
    if (n.domain !== 'com.microsoft' || (n.opType !== 'MatMulNBits' && n.opType !== 'GatherBlockQuantized')) continue;
    quantization ??= { matMulNBits: 0, gatherBlockQuantized: 0, bits: [], blockSizes: [], accuracyLevels: [], embeddingBlockSizes: [] };
    addUnique(quantization.bits, n.intAttr('bits', 4));
    if (n.opType === 'MatMulNBits') {
      quantization.matMulNBits++;
      addUnique(quantization.blockSizes, n.intAttr('block_size', 0));
      addUnique(quantization.accuracyLevels, n.intAttr('accuracy_level', 0));
    } else {
      quantization.gatherBlockQuantized++;
      addUnique(quantization.embeddingBlockSizes, n.intAttr('block_size', 128));
    }
  }
  const elem = logits?.type?.kind === 'tensor' ? logits.type.elemType : DataType.UNDEFINED;
  return { locations, logitsDtype: dataTypeName(elem), quantization };
}

function addUnique(list: number[], v: number): void {
  if (!list.includes(v)) list.push(v);
  list.sort((a, b) => a - b);
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

async function place(from: string, to: string, move: boolean): Promise<void> {
  await rm(to, { force: true });
  if (move) {
    try {
      await rename(from, to);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    }
  }
  await copyFile(from, to, constants.COPYFILE_FICLONE);
}

async function isFile(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isFile(),
    () => false,
  );
}

function isInside(dir: string, p: string): boolean {
  const r = relative(resolve(dir), resolve(p));
  return r !== '' && !r.startsWith('..') && !r.startsWith(sep) && dirname(r) !== '..';
}

/** A typed error's message without its file prefix duplicated or its fix (ours replaces it). */
function reasonOf(e: unknown): string {
  return (e as Error).message.split('\n  fix: ')[0];
}

function outputError(code: string, message: string, tool: string, file: string, cause?: unknown, fix?: string): ExternalToolError {
  if (isPhiForgeError(cause) && cause instanceof ExternalToolError) return cause;
  return new ExternalToolError(code, `output of ${tool}: ${message}`, { file, cause, fix: fix ?? "read the tool's log; builder_options.keep_output: true keeps its raw output folder for inspection" });
}
