// Ingesting an external tool's output folder: find its model.onnx(+data) and genai_config.json (the genai builder
// writes them at top level, Olive in a subfolder such as model/), check them (keys onnxruntime-genai accepts, a
// decodable model with the inputs/outputs the config names, external data within its files), and lay them out in
// our stage folder exactly like the native builder's output.
import { constants } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { copyTokenizerFiles, findTokenizerFiles } from '../checkpoint/tokenizer-files.js';
import { DataType, dataTypeName } from '../onnx/dtype.js';
import type { Model, ValueInfo } from '../onnx/ir.js';
import { loadModel, saveModel } from '../onnx/model-file.js';
import { checkGenaiConfigKeys } from '../genai/write.js';
import { writeFileAtomic } from '../util/atomic-fs.js';
import { ExternalToolError, isPhiForgeError } from '../util/errors.js';
import type { FoundQuantization } from './quant-mapping.js';

export const MODEL_FILE = 'model.onnx';
export const DATA_FILE = 'model.onnx.data';
export const GENAI_CONFIG_FILE = 'genai_config.json';
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
  const configPath = join(dir, GENAI_CONFIG_FILE);
  const config = await readGenaiConfig(configPath, opts.tool);
  const decoder = config.model.decoder;
  const modelPath = resolve(dir, decoder.filename);
  if (!isInside(dir, modelPath)) throw outputError('EXTERNAL_OUTPUT_BAD_CONFIG', `genai_config.json names decoder file "${decoder.filename}" outside its folder`, opts.tool, configPath);
  if (!(await isFile(modelPath))) throw outputError('EXTERNAL_OUTPUT_NO_MODEL', `genai_config.json names decoder file ${decoder.filename}, which is not there`, opts.tool, configPath);

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
    if (decoder.filename === MODEL_FILE) await place(configPath, join(outDir, GENAI_CONFIG_FILE), move);
    else {
      const raw = structuredClone(config.raw) as { model: { decoder: { filename: string } } };
      raw.model.decoder.filename = MODEL_FILE;
      await writeFileAtomic(join(outDir, GENAI_CONFIG_FILE), JSON.stringify(raw, null, 4) + '\n');
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

interface GenaiConfigView {
  raw: Record<string, unknown>;
  model: {
    decoder: {
      filename: string;
      num_hidden_layers: number;
      num_key_value_heads?: number;
      head_size?: number;
      inputs: Record<string, unknown>;
      outputs: Record<string, unknown>;
    };
    vocab_size?: number;
  };
}

async function readGenaiConfig(path: string, tool: string): Promise<GenaiConfigView> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw outputError('EXTERNAL_OUTPUT_BAD_CONFIG', `genai_config.json is not valid JSON (${(e as Error).message})`, tool, path, e);
  }
  const problems = checkGenaiConfigKeys(raw);
  const model = (raw as { model?: { decoder?: Record<string, unknown>; vocab_size?: unknown } } | null)?.model;
  const decoder = model?.decoder;
  if (!decoder || typeof decoder !== 'object') problems.push('model.decoder: missing');
  else {
    if (typeof decoder.filename !== 'string' || !decoder.filename) problems.push('model.decoder.filename: missing');
    if (!Number.isInteger(decoder.num_hidden_layers) || (decoder.num_hidden_layers as number) <= 0) problems.push('model.decoder.num_hidden_layers: missing or not a positive integer');
  }
  if (problems.length) {
    throw outputError('EXTERNAL_OUTPUT_CONFIG_KEYS', `genai_config.json would not load in onnxruntime-genai:\n  ${problems.join('\n  ')}`, tool, path, undefined, 'a newer tool may write keys the runtime we target does not know yet: use the tool version the README names, or fix the keys and rebuild');
  }
  const d = decoder as Record<string, unknown>;
  return {
    raw: raw as Record<string, unknown>,
    model: {
      decoder: {
        filename: d.filename as string,
        num_hidden_layers: d.num_hidden_layers as number,
        num_key_value_heads: typeof d.num_key_value_heads === 'number' ? d.num_key_value_heads : undefined,
        head_size: typeof d.head_size === 'number' ? d.head_size : undefined,
        inputs: isRecord(d.inputs) ? d.inputs : {},
        outputs: isRecord(d.outputs) ? d.outputs : {},
      },
      vocab_size: typeof model?.vocab_size === 'number' ? model.vocab_size : undefined,
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Checking the model against its config

interface ModelLayout {
  /** External data locations used (relative names as written). */
  locations: Set<string>;
  logitsDtype: string;
  quantization?: QuantizationFound;
}

async function checkModel(model: Model, config: GenaiConfigView, dir: string, modelPath: string, tool: string): Promise<ModelLayout> {
  const problems: string[] = [];
  const d = config.model.decoder;
  const name = (group: Record<string, unknown>, key: string, dflt: string) => (typeof group[key] === 'string' ? (group[key] as string) : dflt);
  const inputs = new Map(model.graph.inputs.map((v) => [v.name, v]));
  const outputs = new Map(model.graph.outputs.map((v) => [v.name, v]));

  if (!model.opsetImports.some((o) => o.domain === '' || o.domain === 'ai.onnx')) problems.push('no ONNX opset import');
  for (const key of ['input_ids', 'attention_mask']) {
    const n = name(d.inputs, key, key);
    if (!inputs.has(n)) problems.push(`graph input ${n} (genai_config inputs.${key}) is missing`);
  }
  const logitsName = name(d.outputs, 'logits', 'logits');
  const logits = outputs.get(logitsName);
  if (!logits) problems.push(`graph output ${logitsName} (genai_config outputs.logits) is missing`);
  const vocab = logits ? dimValue(logits, -1) : undefined;
  if (vocab !== undefined && config.model.vocab_size !== undefined && vocab !== config.model.vocab_size) {
    problems.push(`${logitsName} has ${vocab} columns but genai_config says vocab_size ${config.model.vocab_size}`);
  }
  const kv: [Map<string, ValueInfo>, Record<string, unknown>, string, string][] = [
    [inputs, d.inputs, 'past_key_names', 'past_key_values.%d.key'],
    [inputs, d.inputs, 'past_value_names', 'past_key_values.%d.value'],
    [outputs, d.outputs, 'present_key_names', 'present.%d.key'],
    [outputs, d.outputs, 'present_value_names', 'present.%d.value'],
  ];
  for (const [values, group, key, dflt] of kv) {
    const pattern = name(group, key, dflt);
    const missing: string[] = [];
    for (let i = 0; i < d.num_hidden_layers; i++) {
      const v = values.get(pattern.replace('%d', String(i)));
      if (!v) missing.push(pattern.replace('%d', String(i)));
      else {
        const heads = dimValue(v, 1);
        const size = dimValue(v, 3);
        if (d.num_key_value_heads !== undefined && heads !== undefined && heads !== d.num_key_value_heads) problems.push(`${v.name} has ${heads} kv heads, genai_config says ${d.num_key_value_heads}`);
        if (d.head_size !== undefined && size !== undefined && size !== d.head_size) problems.push(`${v.name} has head size ${size}, genai_config says ${d.head_size}`);
      }
    }
    if (missing.length) problems.push(`${missing.length} of ${d.num_hidden_layers} ${key} (${pattern}) are missing, e.g. ${missing[0]}`);
  }

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

function dimValue(v: ValueInfo, axis: number): number | undefined {
  if (v.type?.kind !== 'tensor' || !v.type.shape) return undefined;
  const dims = v.type.shape;
  const d = dims[axis < 0 ? dims.length + axis : axis];
  return d && 'value' in d && typeof d.value === 'number' ? d.value : undefined;
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

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function outputError(code: string, message: string, tool: string, file: string, cause?: unknown, fix?: string): ExternalToolError {
  if (isPhiForgeError(cause) && cause instanceof ExternalToolError) return cause;
  return new ExternalToolError(code, `output of ${tool}: ${message}`, { file, cause, fix: fix ?? "read the tool's log; builder_options.keep_output: true keeps its raw output folder for inspection" });
}
