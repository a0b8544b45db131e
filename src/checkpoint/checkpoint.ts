// A Hugging Face checkpoint folder: config.json (+ generation_config.json) and model.safetensors or shards listed in
// model.safetensors.index.json. Opening validates every header and the index; tensors are read on demand by offset.
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve, sep } from 'node:path';
import { CheckpointError } from '../util/errors.js';
import { readGenerationConfig, type GenerationConfig } from './generation-config.js';
import { readHfConfig, type HfConfigJson } from './hf-config.js';
import { SafetensorsFile, type SafetensorsEntry } from './safetensors.js';
import { SAFETENSORS_INDEX_FILE, SAFETENSORS_SINGLE_FILE } from './safetensors-writer.js';
import { findTokenizerFiles } from './tokenizer-files.js';

export interface ParsedIndex {
  /** tensor name → shard file name (relative to the folder), in the index's order. */
  weightMap: Map<string, string>;
  totalSize?: number;
}

/**
 * Validates model.safetensors.index.json: an object whose weight_map maps tensor names to file names that stay inside
 * the folder (no absolute paths, no `..`, no backslashes, no empty parts) and end in .safetensors.
 */
export function parseSafetensorsIndex(json: unknown, file: string): ParsedIndex {
  const bad = (message: string, where?: string): CheckpointError =>
    new CheckpointError('INDEX_INVALID', message, {
      file,
      where,
      fix: 'the index is corrupt: download model.safetensors.index.json again',
    });
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('index is not a JSON object');
  const { weight_map: wm, metadata } = json as { weight_map?: unknown; metadata?: unknown };
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) throw bad('index has no weight_map object', 'weight_map');
  let totalSize: number | undefined;
  if (metadata !== undefined && metadata !== null) {
    if (typeof metadata !== 'object' || Array.isArray(metadata)) throw bad('metadata is not an object', 'metadata');
    const ts = (metadata as { total_size?: unknown }).total_size;
    if (ts !== undefined) {
      if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0) throw bad('total_size is not a non-negative integer', 'metadata.total_size');
      totalSize = ts;
    }
  }
  const weightMap = new Map<string, string>();
  for (const [name, shard] of Object.entries(wm)) {
    if (typeof shard !== 'string') throw bad(`weight_map value ${JSON.stringify(shard)} is not a file name`, `weight_map.${name}`);
    if (!isInsideName(shard)) {
      throw new CheckpointError('INDEX_PATH_TRAVERSAL', `shard file name ${JSON.stringify(shard)} points outside the checkpoint folder`, {
        file,
        where: `tensor ${name}`,
        fix: 'refusing to read it: shard names must be plain file names inside the folder (download the index from a trusted source)',
      });
    }
    if (!shard.endsWith('.safetensors')) throw bad(`shard ${JSON.stringify(shard)} is not a .safetensors file`, `tensor ${name}`);
    weightMap.set(name, shard);
  }
  if (weightMap.size === 0) throw bad('weight_map lists no tensors', 'weight_map');
  return { weightMap, totalSize };
}

/** A relative path that stays inside the folder on every platform. */
function isInsideName(p: string): boolean {
  return (
    p.length > 0 &&
    !isAbsolute(p) &&
    !p.startsWith('/') &&
    !p.includes('\\') &&
    !p.includes('\0') &&
    !/^[a-zA-Z]:/.test(p) &&
    p.split('/').every((part) => part !== '' && part !== '.' && part !== '..')
  );
}

export class Checkpoint {
  readonly dir: string;
  readonly config: HfConfigJson;
  readonly generationConfig?: GenerationConfig;
  /** Shard files in first-use order (one for a single-file checkpoint). */
  readonly files: readonly SafetensorsFile[];
  private readonly names: string[];
  private readonly where: Map<string, SafetensorsFile>;

  private constructor(
    dir: string,
    config: HfConfigJson,
    generationConfig: GenerationConfig | undefined,
    files: SafetensorsFile[],
    names: string[],
    where: Map<string, SafetensorsFile>,
  ) {
    this.dir = dir;
    this.config = config;
    this.generationConfig = generationConfig;
    this.files = files;
    this.names = names;
    this.where = where;
  }

  /** Opens a checkpoint folder: parses config.json, validates the index (if any) and every shard's header. */
  static async open(dir: string): Promise<Checkpoint> {
    const root = resolve(dir);
    const s = await stat(root).catch(() => undefined);
    if (!s?.isDirectory()) {
      throw new CheckpointError('CHECKPOINT_NOT_DIR', 'checkpoint folder does not exist or is not a folder', {
        file: root,
        fix: 'pass the folder that holds config.json and the *.safetensors files',
      });
    }
    const config = await readHfConfig(root);
    const generationConfig = await readGenerationConfig(root);
    const indexPath = join(root, SAFETENSORS_INDEX_FILE);
    const singlePath = join(root, SAFETENSORS_SINGLE_FILE);
    if (await isFile(indexPath)) return Checkpoint.openSharded(root, indexPath, config, generationConfig);
    if (await isFile(singlePath)) {
      const f = await SafetensorsFile.open(singlePath);
      const names = [...f.entries.keys()];
      return new Checkpoint(root, config, generationConfig, [f], names, new Map(names.map((n) => [n, f])));
    }
    const hasBin = (await isFile(join(root, 'pytorch_model.bin'))) || (await isFile(join(root, 'pytorch_model.bin.index.json')));
    throw new CheckpointError('CHECKPOINT_NO_WEIGHTS', `no ${SAFETENSORS_SINGLE_FILE} or ${SAFETENSORS_INDEX_FILE} in the folder`, {
      file: root,
      fix: hasBin
        ? 'this checkpoint has PyTorch .bin weights only: convert them to safetensors (transformers save_pretrained(safe_serialization=True))'
        : 'download the *.safetensors files of the model into this folder',
    });
  }

  private static async openSharded(
    root: string,
    indexPath: string,
    config: HfConfigJson,
    generationConfig: GenerationConfig | undefined,
  ): Promise<Checkpoint> {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(indexPath, 'utf8'));
    } catch (e) {
      throw new CheckpointError('INDEX_JSON', `not valid JSON (${(e as Error).message})`, {
        file: indexPath,
        fix: 'download model.safetensors.index.json again',
      });
    }
    const index = parseSafetensorsIndex(json, indexPath);
    const shards = new Map<string, SafetensorsFile>();
    const where = new Map<string, SafetensorsFile>();
    try {
      for (const [name, shard] of index.weightMap) {
        let f = shards.get(shard);
        if (!f) {
          const p = join(root, ...shard.split('/'));
          // Belt and braces after the name check: the resolved path must stay inside the folder.
          if (!p.startsWith(root + sep)) {
            throw new CheckpointError('INDEX_PATH_TRAVERSAL', `shard ${shard} resolves outside the checkpoint folder`, {
              file: indexPath,
              where: `tensor ${name}`,
              fix: 'refusing to read it: shard names must be file names inside the folder',
            });
          }
          if (!(await isFile(p))) {
            throw new CheckpointError('CHECKPOINT_SHARD_MISSING', `shard ${shard} listed in the index is missing`, {
              file: p,
              where: `tensor ${name}`,
              fix: 'download every model-*.safetensors file the index lists',
            });
          }
          f = await SafetensorsFile.open(p);
          shards.set(shard, f);
        }
        if (!f.entries.has(name)) {
          throw new CheckpointError('INDEX_TENSOR_MISSING', `the index puts tensor ${name} in ${shard}, which does not hold it`, {
            file: f.path,
            where: `tensor ${name}`,
            fix: 'the shard and the index do not belong together: download both again',
          });
        }
        where.set(name, f);
      }
    } catch (e) {
      await Promise.all([...shards.values()].map((f) => f.close()));
      throw e;
    }
    return new Checkpoint(root, config, generationConfig, [...shards.values()], [...index.weightMap.keys()], where);
  }

  /** Tensor names: the index's order for a sharded checkpoint, file order otherwise. */
  tensorNames(): string[] {
    return [...this.names];
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  /** dtype, shape and absolute file offsets of a tensor, with the path of the file holding it. */
  entry(name: string): SafetensorsEntry & { file: string } {
    const f = this.fileOf(name);
    return { ...f.entry(name), file: f.path };
  }

  async readRaw(name: string): Promise<Uint8Array> {
    return this.fileOf(name).readRaw(name);
  }

  /** `length` bytes starting `start` bytes into the tensor (for reading big tensors in row chunks). */
  async readRange(name: string, start: number, length: number): Promise<Uint8Array> {
    return this.fileOf(name).readRange(name, start, length);
  }

  /** Fills `into` with the tensor's bytes from `start` on (see SafetensorsFile.readRangeInto). */
  async readRangeInto(name: string, start: number, into: Uint8Array): Promise<void> {
    return this.fileOf(name).readRangeInto(name, start, into);
  }

  async readFloat32(name: string): Promise<Float32Array> {
    return this.fileOf(name).readFloat32(name);
  }

  /** Absolute paths of the tokenizer files present in the folder. */
  tokenizerFiles(): Promise<string[]> {
    return findTokenizerFiles(this.dir);
  }

  /** Closes every shard's file handle. */
  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.close()));
  }

  private fileOf(name: string): SafetensorsFile {
    const f = this.where.get(name);
    if (!f) {
      throw new CheckpointError('CHECKPOINT_TENSOR_MISSING', `tensor ${name} is not in the checkpoint`, {
        file: this.dir,
        where: `tensor ${name}`,
        fix: 'check the tensor name against tensorNames()',
      });
    }
    return f;
  }
}

async function isFile(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isFile() ?? false;
}
