// Reading a model folder's genai_config.json, which we may not have written: JSON, the parser's types for the keys
// we know (unknown keys are the key check's business), then what running the decoder needs — its sizes, and a
// decoder file name that stays inside the folder (the name is untrusted) — as one typed value. Errors name the file
// and the field.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GenaiConfigError } from '../util/errors.js';
import { assertSafeRelativePath } from '../util/safe-name.js';
import { decoderNames, type DecoderNames } from './io-names.js';
import { fieldPath, GENAI_CONFIG_READ_SCHEMA, issueText, type GenaiConfig } from './schema.js';

export const GENAI_CONFIG_FILE = 'genai_config.json';
/** The decoder file when genai_config.json names none (onnxruntime-genai has no default; every builder writes this). */
export const DEFAULT_DECODER_FILE = 'model.onnx';

/** What running the decoder needs from genai_config.json, checked and with the defaults applied. */
export interface GenaiDecoder {
  /** model.decoder.filename: a safe relative path inside the folder. */
  modelFile: string;
  numLayers: number;
  numKvHeads: number;
  headSize: number;
  vocabSize?: number;
  contextLength?: number;
  bosTokenId?: number;
  eosTokenIds: number[];
  names: DecoderNames;
}

export interface GenaiConfigFile {
  /** The file read. */
  path: string;
  /** The JSON as read (unknown keys kept), its known keys of the parser's types. */
  config: GenaiConfig;
  decoder: GenaiDecoder;
}

/** The genai_config.json of a model folder. */
export function genaiConfigPath(dir: string): string {
  return join(dir, GENAI_CONFIG_FILE);
}

/** Reads and checks `<dir>/genai_config.json`. Throws GenaiConfigError (MISSING, JSON, INVALID, UNSAFE_PATH). */
export async function readGenaiConfig(dir: string): Promise<GenaiConfigFile> {
  const path = genaiConfigPath(dir);
  return parseGenaiConfig(await readGenaiJson(path), path);
}

/** The file's JSON, unchecked (for callers that check the keys first, like ingest). */
export async function readGenaiJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new GenaiConfigError(missing ? 'GENAI_CONFIG_MISSING' : 'GENAI_CONFIG_UNREADABLE', missing ? 'no genai_config.json' : `cannot read it (${(e as Error).message})`, {
      file: path,
      fix: missing ? 'point at a model folder built by `pnpm pipeline build`/`convert` (or at its model.onnx file directly)' : 'check the file\'s permissions',
      cause: e,
    });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new GenaiConfigError('GENAI_CONFIG_JSON', `not valid JSON: ${(e as Error).message}`, { file: path, fix: 'rebuild the package (the file is damaged)', cause: e });
  }
}

/** Checks parsed genai_config.json content (read from `path`, for messages) and returns its typed value. */
export function parseGenaiConfig(json: unknown, path: string): GenaiConfigFile {
  const r = GENAI_CONFIG_READ_SCHEMA.safeParse(json);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `${fieldPath(i.path)}: ${issueText(i)}`);
    throw new GenaiConfigError('GENAI_CONFIG_INVALID', `onnxruntime-genai would not read it:\n  ${lines.join('\n  ')}`, {
      file: path,
      fix: 'rebuild the package, or correct these fields',
    });
  }
  // The value handed on is the JSON as read (unknown keys and key order kept), now known to be of these types.
  const config = json as GenaiConfig;
  const m = config.model ?? {};
  const d = m.decoder ?? {};
  // The cache is [batch, kv heads, sequence, head size] per layer: without these sizes no forward can be fed.
  const least = { head_size: 1, num_hidden_layers: 0, num_key_value_heads: 1 } as const;
  const missing = (Object.keys(least) as (keyof typeof least)[]).filter((k) => !(d[k]! >= least[k])).map((k) => `model.decoder.${k}`);
  if (missing.length) {
    throw new GenaiConfigError('GENAI_CONFIG_INVALID', `genai_config.json lacks decoder sizes: ${missing.join(', ')} (missing or out of range)`, {
      file: path,
      fix: 'rebuild the package, or add the decoder sizes (head_size, num_hidden_layers, num_key_value_heads)',
    });
  }
  const modelFile = assertSafeRelativePath(
    d.filename ?? DEFAULT_DECODER_FILE,
    { file: path, field: 'model.decoder.filename', fix: 'name the decoder file relative to the folder genai_config.json is in (e.g. "model.onnx"), or rebuild the package' },
    GenaiConfigError,
  );
  const numLayers = d.num_hidden_layers!;
  const eos = m.eos_token_id === undefined ? [] : Array.isArray(m.eos_token_id) ? m.eos_token_id : [m.eos_token_id];
  return {
    path,
    config,
    decoder: {
      modelFile,
      numLayers,
      numKvHeads: d.num_key_value_heads!,
      headSize: d.head_size!,
      vocabSize: m.vocab_size,
      contextLength: m.context_length,
      bosTokenId: m.bos_token_id,
      eosTokenIds: eos,
      names: decoderNames(d, numLayers),
    },
  };
}
