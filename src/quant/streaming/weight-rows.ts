// Reading a weight a band of rows at a time (rows of the quantizer: N rows of K values), so one big weight — a
// 200k-vocabulary lm_head is 2.4 GB in fp32 — is quantized in pieces that fit in memory and run on every worker.
// Rows are contiguous in an [N, K] weight; in a [K, N] weight a band of rows is a band of columns, read row by row.
import type { FileHandle } from 'node:fs/promises';
import { bitsOf } from '../../onnx/dtype.js';
import { openExternalRange, type ExternalSource } from '../../onnx/tensor.js';
import { OnnxError } from '../../util/errors.js';
import type { WeightRef } from '../passes/find-weights.js';

/** Float input bytes per piece: large enough that per-piece overhead vanishes, small enough that pieces in flight on every worker stay far below the model. */
export const PIECE_BYTES = 64 << 20;

/** A band of rows [n0, n1) of one weight. */
export interface RowBand {
  n0: number;
  n1: number;
}

/**
 * A [K, N] weight up to this many pieces is read whole (256 MiB by default): one sequential read, where a band of its
 * columns would be K small reads scattered over the file (on a cold page cache that made quantizing Phi-4-mini
 * 1.5–2× slower). Only bigger ones — a 200k-vocabulary lm_head — are read in column bands.
 */
export const WHOLE_READ_PIECES = 4;

/**
 * The row bands a weight is quantized in. One band when the weight is small, when it is a [K, N] weight small enough
 * to read whole, or when its bytes are computed (a lazy tensor, e.g. AWQ-scaled, would be recomputed for every band).
 */
export function rowBands(w: Pick<WeightRef, 'tensor' | 'K' | 'N' | 'layout'>, pieceBytes = PIECE_BYTES): RowBand[] {
  const rowBytes = (w.K * bitsOf(w.tensor.dataType)) / 8;
  const t = w.tensor;
  const whole = t.source.kind === 'lazy' || (w.layout === 'kn' && t.byteLength <= WHOLE_READ_PIECES * pieceBytes);
  const rows = whole ? w.N : Math.max(1, Math.min(w.N, Math.floor(pieceBytes / rowBytes)));
  const bands: RowBand[] = [];
  for (let n0 = 0; n0 < w.N; n0 += rows) bands.push({ n0, n1: Math.min(w.N, n0 + rows) });
  return bands;
}

/** Gives the buffer a band is read into (the kernel pool's `buffer`, so reads land in memory already paged in). */
export type Allocate = (byteLength: number) => Uint8Array;

const fresh: Allocate = (n) => new Uint8Array(n);

/**
 * Rows [n0, n1) of the weight as raw bytes in the weight's own layout: [n1−n0, K] for `nk`, [K, n1−n0] for `kn`.
 * External bytes and bands are read into `alloc`'s buffer; an inline or computed weight read whole is its own bytes.
 */
export async function readWeightRows(w: Pick<WeightRef, 'tensor' | 'K' | 'N' | 'layout'>, band: RowBand, alloc: Allocate = fresh): Promise<Uint8Array> {
  const t = w.tensor;
  const { n0, n1 } = band;
  const src = t.source;
  if (n0 === 0 && n1 === w.N) return src.kind === 'external' ? readRange(src, t.name, src.offset, src.length, alloc) : t.bytes();
  const es = bitsOf(t.dataType) / 8;
  if (w.layout === 'nk') {
    const [from, length] = [n0 * w.K * es, (n1 - n0) * w.K * es];
    if (src.kind === 'external') return readRange(src, t.name, src.offset + from, length, alloc);
    const out = alloc(length);
    out.set((await t.bytes()).subarray(from, from + length));
    return out;
  }
  // [K, N]: columns n0..n1 of every row.
  const width = (n1 - n0) * es;
  const rowBytes = w.N * es;
  const out = alloc(w.K * width);
  if (src.kind !== 'external') {
    const all = await t.bytes();
    for (let k = 0; k < w.K; k++) out.set(all.subarray(k * rowBytes + n0 * es, k * rowBytes + n0 * es + width), k * width);
    return out;
  }
  const fh = await openExternalRange(src, t.name);
  try {
    // One read per row of K, a few in flight at once (the reads are small and mostly served from the page cache).
    const inFlight = 32;
    for (let k0 = 0; k0 < w.K; k0 += inFlight) {
      const reads: Promise<unknown>[] = [];
      for (let k = k0; k < Math.min(w.K, k0 + inFlight); k++) {
        reads.push(readFully(fh, out.subarray(k * width, (k + 1) * width), src.offset + k * rowBytes + n0 * es, src.path, t.name));
      }
      await Promise.all(reads);
    }
    return out;
  } finally {
    await fh.close();
  }
}

/** `length` bytes of external data from `offset`, checked against the file's size and the model folder first. */
async function readRange(src: ExternalSource, tensor: string, offset: number, length: number, alloc: Allocate): Promise<Uint8Array> {
  const fh = await openExternalRange(src, tensor, offset, length);
  try {
    const out = alloc(length);
    // In pieces of 1 GiB: one read call takes at most 2 GiB.
    for (let done = 0; done < length; done += 1 << 30) {
      const n = Math.min(length - done, 1 << 30);
      await readFully(fh, out.subarray(done, done + n), offset + done, src.path, tensor);
    }
    return out;
  } finally {
    await fh.close();
  }
}

async function readFully(fh: FileHandle, into: Uint8Array, position: number, file: string, tensor: string): Promise<void> {
  let got = 0;
  while (got < into.byteLength) {
    const { bytesRead } = await fh.read(into, got, into.byteLength - got, position + got);
    // openExternalRange checked the size: the file was cut short while being read.
    if (bytesRead === 0) {
      throw new OnnxError('ONNX_EXTERNAL_TRUNCATED', `external data ends at byte ${position + got} while reading`, {
        file,
        where: `tensor ${tensor}`,
        fix: 'the .data file changed while it was read: rebuild or re-download it, and run again',
      });
    }
    got += bytesRead;
  }
}
