// Safetensors writer: the header is computed from dtypes and shapes alone, then each tensor is produced and written
// one at a time (never all in memory), atomically; plus sharding and the index file like transformers' save_pretrained.
import { readdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { AtomicFileWriter, writeFileAtomic } from '../util/atomic-fs.js';
import { CheckpointError } from '../util/errors.js';
import { SAFETENSORS_DTYPE_SIZE, isSafetensorsDtype, type SafetensorsDtype } from './safetensors.js';

export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Produces the tensor's raw little-endian bytes; called once, when the tensor is written. */
  data: () => Uint8Array | Promise<Uint8Array>;
}

export const SAFETENSORS_INDEX_FILE = 'model.safetensors.index.json';
export const SAFETENSORS_SINGLE_FILE = 'model.safetensors';

/** Byte size a tensor's data must have. */
export function tensorByteLength(t: Pick<TensorToWrite, 'name' | 'dtype' | 'shape'>): number {
  let n = SAFETENSORS_DTYPE_SIZE[t.dtype];
  for (const d of t.shape) n *= d;
  return n;
}

function validate(tensors: readonly TensorToWrite[], file: string): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    const where = `tensor ${t.name}`;
    if (typeof t.name !== 'string' || t.name.length === 0 || t.name === '__metadata__') {
      throw new CheckpointError('SAFETENSORS_WRITE_NAME', `invalid tensor name ${JSON.stringify(t.name)}`, {
        file,
        fix: 'tensor names must be non-empty and not "__metadata__"',
      });
    }
    if (seen.has(t.name)) {
      throw new CheckpointError('SAFETENSORS_WRITE_NAME', 'tensor name given twice', {
        file,
        where,
        fix: 'give each tensor a unique name',
      });
    }
    seen.add(t.name);
    if (!isSafetensorsDtype(t.dtype)) {
      throw new CheckpointError('SAFETENSORS_WRITE_DTYPE', `unknown dtype ${JSON.stringify(t.dtype)}`, {
        file,
        where,
        fix: `use one of ${Object.keys(SAFETENSORS_DTYPE_SIZE).join(', ')}`,
      });
    }
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new CheckpointError('SAFETENSORS_WRITE_SHAPE', `shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`, {
        file,
        where,
        fix: 'give the shape as a list of non-negative integers ([] for a scalar)',
      });
    }
    if (!Number.isSafeInteger(tensorByteLength(t))) {
      throw new CheckpointError('SAFETENSORS_WRITE_SHAPE', `shape ${JSON.stringify(t.shape)} is too large`, {
        file,
        where,
        fix: 'a tensor must hold fewer than 2^53 bytes',
      });
    }
  }
}

/**
 * Data order of the reference implementation: larger element size first (so every tensor stays aligned to its
 * element size after the 8-byte-aligned header), then by name. The output does not depend on the input order.
 */
function fileOrder(tensors: readonly TensorToWrite[]): TensorToWrite[] {
  return [...tensors].sort(
    (a, b) => SAFETENSORS_DTYPE_SIZE[b.dtype] - SAFETENSORS_DTYPE_SIZE[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
}

/** The 8-byte length plus the JSON header padded with spaces to a multiple of 8, for tensors in file order. */
function encodeHeader(ordered: readonly TensorToWrite[], metadata: Record<string, string> | undefined): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of ordered) {
    const n = tensorByteLength(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

/**
 * Writes one safetensors file: header first, then each tensor's data() in turn, checked against its declared size.
 * The file appears at `path` only when complete (temporary sibling + rename).
 */
export async function writeSafetensors(
  path: string,
  tensors: TensorToWrite[],
  metadata?: Record<string, string>,
): Promise<void> {
  validate(tensors, path);
  if (metadata && Object.values(metadata).some((v) => typeof v !== 'string')) {
    throw new CheckpointError('SAFETENSORS_WRITE_METADATA', 'metadata values must be strings', {
      file: path,
      fix: 'safetensors __metadata__ maps strings to strings: JSON.stringify other values',
    });
  }
  const ordered = fileOrder(tensors);
  const w = await AtomicFileWriter.create(path);
  try {
    await w.write(encodeHeader(ordered, metadata));
    for (const t of ordered) {
      const bytes = await t.data();
      const expected = tensorByteLength(t);
      if (!(bytes instanceof Uint8Array) || bytes.byteLength !== expected) {
        throw new CheckpointError(
          'SAFETENSORS_WRITE_SIZE',
          `produced ${bytes instanceof Uint8Array ? bytes.byteLength : typeof bytes} bytes, ${t.dtype} ${JSON.stringify(t.shape)} needs ${expected}`,
          { file: path, where: `tensor ${t.name}`, fix: 'this is a bug in the tensor producer: its data does not match its dtype and shape' },
        );
      }
      await w.write(bytes);
    }
    await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

export interface ShardOptions {
  /** Largest shard size in bytes of tensor data; a tensor larger than this gets a shard of its own. */
  maxShardBytes: number;
  /** Written into every shard's `__metadata__`; `format: "pt"` is added when absent (transformers checks it). */
  metadata?: Record<string, string>;
}

/** The index file transformers writes next to the shards. */
export interface SafetensorsIndex {
  metadata: { total_size: number; [key: string]: unknown };
  weight_map: Record<string, string>;
}

/**
 * Splits tensors into shards in the given order, the way huggingface_hub's split_state_dict_into_shards does: a new
 * shard starts when the next tensor would push the current one past maxShardBytes; a larger tensor goes alone.
 */
export function planShards(tensors: readonly TensorToWrite[], maxShardBytes: number): TensorToWrite[][] {
  const shards: TensorToWrite[][] = [];
  let current: TensorToWrite[] = [];
  let size = 0;
  for (const t of tensors) {
    const n = tensorByteLength(t);
    if (n > maxShardBytes) {
      shards.push([t]);
      continue;
    }
    if (current.length > 0 && size + n > maxShardBytes) {
      shards.push(current);
      current = [];
      size = 0;
    }
    current.push(t);
    size += n;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);
  return shards;
}

export function shardFileName(i: number, n: number): string {
  return `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

const WEIGHT_FILE = /^model(-\d{5}-of-\d{5})?\.safetensors$/;

/**
 * Writes `model.safetensors` when everything fits in one shard, else `model-0000i-of-0000N.safetensors` plus
 * `model.safetensors.index.json` (keys sorted, 2-space indent, like save_pretrained). Weight files of an earlier save
 * in `dir` that are not part of this one are removed, so the folder never mixes two checkpoints.
 * Returns the absolute paths written (shards, then the index).
 */
export async function writeShardedSafetensors(
  dir: string,
  tensors: TensorToWrite[],
  opts: ShardOptions,
): Promise<{ files: string[] }> {
  if (!(opts.maxShardBytes > 0)) {
    throw new CheckpointError('SAFETENSORS_WRITE_SHARD', `maxShardBytes must be positive, got ${opts.maxShardBytes}`, {
      file: dir,
      fix: 'pass a shard size in bytes, e.g. 5e9 like transformers',
    });
  }
  validate(tensors, dir);
  const metadata = { format: 'pt', ...opts.metadata };
  const shards = planShards(tensors, opts.maxShardBytes);
  const files: string[] = [];
  if (shards.length === 1) {
    const path = join(dir, SAFETENSORS_SINGLE_FILE);
    await writeSafetensors(path, tensors, metadata);
    files.push(path);
  } else {
    const weightMap: Record<string, string> = {};
    let total = 0;
    for (let i = 0; i < shards.length; i++) {
      const name = shardFileName(i, shards.length);
      const path = join(dir, name);
      await writeSafetensors(path, shards[i], metadata);
      files.push(path);
      for (const t of shards[i]) {
        weightMap[t.name] = name;
        total += tensorByteLength(t);
      }
    }
    const sorted = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]]));
    const index: SafetensorsIndex = { metadata: { total_size: total }, weight_map: sorted };
    const indexPath = join(dir, SAFETENSORS_INDEX_FILE);
    await writeFileAtomic(indexPath, JSON.stringify(index, null, 2) + '\n');
    files.push(indexPath);
  }
  const keep = new Set(files.map((f) => basename(f)));
  for (const name of await readdir(dir)) {
    if ((WEIGHT_FILE.test(name) || name === SAFETENSORS_INDEX_FILE) && !keep.has(name)) await rm(join(dir, name), { force: true });
  }
  return { files };
}
