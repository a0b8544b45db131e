// Reference log-probability files: what `eval --save-reference` stores of the unquantized model at every scored
// position, so a quantized model is compared later (KL, top-1, perplexity change) without re-running the reference.
//
// Layout (little-endian), in the spirit of llama.cpp's --kl-divergence-base file:
//
//   offset 0   8 bytes   magic "PHIFLOGP"
//          8   uint32    version (1)
//         12   uint32    header byte length H (includes trailing spaces that pad the data start to 8 bytes)
//         16   H bytes   JSON header (UTF-8): ReferenceHeader below — model, tokens_sha256, n_vocab, encoding,
//                        top_k, positions, record_bytes, max_length, stride, ...
//     16 + H   positions × record_bytes: one record per scored position, in scoring order (sequence by sequence,
//                        position 1..len−1 of each).
//
// Every record starts with 12 bytes:  float32 lse (log-sum-exp of the logits, so logit = log-prob + lse),
//   float32 nll (−log p of the actual next token; ppl_ref comes from these), uint32 top1 (argmax of the logits).
// Then, by encoding:
//   "full-u16" (the whole distribution, like llama.cpp): float32 scale, float32 floor, n_vocab × uint16 codes, padded
//     to 4 bytes. Code 0 = log-prob below `floor` (treated as probability 0); code c ≥ 1 = floor + (c − 1)·scale.
//     floor = max(min log-prob, max log-prob − 24), so 65534 steps span at most 24 nats: every stored log-prob is
//     within 1.9e-4 of the exact one, and the dropped tail holds at most n_vocab·e^−24 ≈ 4e-11·n_vocab of the mass.
//     (llama.cpp spans 16 nats; its authors later found 16 too narrow for some models.)
//   "top-k": float32 log_rest (log of the mass outside the k ids, float64-summed), k × uint32 ids, k × float32
//     log-probs, most likely first. KL is then computed over {k ids, rest} — a lower bound of the full KL, exact
//     when the k ids hold all the mass. `auto` picks it when full records would pass 1 GiB (long texts, large
//     vocabularies).
//
// Reading validates magic, version, size and — against what is being evaluated — the tokens' sha256, the
// vocabulary size and the windows, and throws EvalError saying which differs.
import { createHash } from 'node:crypto';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { z } from 'zod';
import { AtomicFileWriter } from '../util/atomic-fs.js';
import { EvalError } from '../util/errors.js';
import { TOOL_NAME, TOOL_VERSION } from '../util/version.js';
import { klFromStored } from './metrics.js';
import { planWindows, type ScoreWindow } from './windows.js';

export const REFERENCE_MAGIC = 'PHIFLOGP';
export const REFERENCE_VERSION = 1;
/** Nats below the most likely token that full-u16 records keep. */
export const FULL_RANGE_NATS = 24;
const PREFIX_BYTES = 16;
const COMMON_BYTES = 12;

export type ReferenceEncoding = 'full-u16' | 'top-k';

const headerSchema = z.object({
  format: z.literal('phi-forge-reference-logprobs'),
  /** Which model wrote it (a path or name, for messages). */
  model: z.string(),
  tool: z.string(),
  tokens_sha256: z.string().regex(/^[0-9a-f]{64}$/),
  sequences: z.number().int().nonnegative(),
  tokens: z.number().int().nonnegative(),
  positions: z.number().int().nonnegative(),
  n_vocab: z.number().int().positive(),
  encoding: z.enum(['full-u16', 'top-k']),
  top_k: z.number().int().nonnegative(),
  full_range_nats: z.number().positive().optional(),
  record_bytes: z.number().int().positive(),
  max_length: z.number().int().min(2),
  stride: z.number().int().positive(),
});

export type ReferenceHeader = z.infer<typeof headerSchema>;

/** sha256 over the sequences as (uint32 length, uint32 ids...) each: equal exactly when the token lists are. */
export function hashTokenSequences(sequences: readonly (readonly number[] | Int32Array)[]): string {
  const h = createHash('sha256');
  for (const s of sequences) {
    const buf = new Uint32Array(s.length + 1);
    buf[0] = s.length;
    for (let i = 0; i < s.length; i++) buf[i + 1] = s[i];
    h.update(new Uint8Array(buf.buffer));
  }
  return h.digest('hex');
}

export function recordBytes(encoding: ReferenceEncoding, nVocab: number, topK: number): number {
  if (encoding === 'full-u16') return COMMON_BYTES + 8 + 4 * Math.ceil((2 * nVocab) / 4);
  return COMMON_BYTES + 4 + 8 * topK;
}

export interface ChooseEncodingOptions {
  encoding?: ReferenceEncoding | 'auto';
  topK?: number;
  /** Largest full-u16 file `auto` accepts before switching to top-k (default 1 GiB). */
  maxFullBytes?: number;
}

export const DEFAULT_TOP_K = 64;

/**
 * `auto`: full-u16 (every log-prob within 1.9e-4) while the file stays under maxFullBytes — recipe validation sets
 * (hundreds of positions) at any vocabulary; otherwise top-k (k = 64 by default), e.g. all of wikitext-2 at Phi-3's
 * 32k vocabulary, where full records would take 64 KiB per position.
 */
export function chooseEncoding(nVocab: number, positions: number, opts: ChooseEncodingOptions = {}): { encoding: ReferenceEncoding; topK: number } {
  const topK = Math.min(opts.topK ?? DEFAULT_TOP_K, nVocab);
  if (!Number.isInteger(topK) || topK < 1) {
    throw new EvalError('REFERENCE_TOP_K', `--top-k must be a positive integer, got ${opts.topK}`);
  }
  const want = opts.encoding ?? 'auto';
  if (want === 'full-u16') return { encoding: 'full-u16', topK: 0 };
  if (want === 'top-k') return { encoding: 'top-k', topK };
  const fullBytes = positions * recordBytes('full-u16', nVocab, 0);
  if (fullBytes <= (opts.maxFullBytes ?? 1 << 30)) return { encoding: 'full-u16', topK: 0 };
  return { encoding: 'top-k', topK };
}

function assertLittleEndian(): void {
  if (endianness() !== 'LE') throw new EvalError('BIG_ENDIAN_HOST', 'reference files are little-endian; this host is big-endian');
}

/** Encodes scored rows into records; `out` must hold rows × record_bytes bytes and be 4-byte aligned. */
export class RecordEncoder {
  readonly encoding: ReferenceEncoding;
  readonly nVocab: number;
  readonly topK: number;
  readonly recordBytes: number;
  /** Scratch for top-k: which ids are among the k best. */
  private readonly chosen: Uint8Array;
  private readonly topIds: Int32Array;
  private readonly topVals: Float32Array;

  constructor(encoding: ReferenceEncoding, nVocab: number, topK: number) {
    this.encoding = encoding;
    this.nVocab = nVocab;
    this.topK = encoding === 'top-k' ? topK : 0;
    this.recordBytes = recordBytes(encoding, nVocab, this.topK);
    this.chosen = new Uint8Array(encoding === 'top-k' ? nVocab : 0);
    this.topIds = new Int32Array(this.topK);
    this.topVals = new Float32Array(this.topK);
  }

  /** Writes the record of logits row `row` (with its lse, argmax and the target's NLL) at byte `offset` of `out`. */
  encode(out: ArrayBuffer, offset: number, logits: Float32Array, row: number, lse: number, top1: number, nll: number): void {
    const V = this.nVocab;
    const base = row * V;
    const f = new Float32Array(out, offset, 3);
    f[0] = lse;
    f[1] = nll;
    new Uint32Array(out, offset + 8, 1)[0] = top1;
    if (this.encoding === 'full-u16') {
      let max = -Infinity;
      let min = Infinity;
      for (let i = 0; i < V; i++) {
        const v = logits[base + i];
        if (v > max) max = v;
        if (v < min) min = v;
      }
      const maxLp = max - lse;
      const floor = Math.max(min - lse, maxLp - FULL_RANGE_NATS);
      // The stored floor is float32: quantize against the value the reader will see.
      const floor32 = Math.fround(floor);
      const scale32 = Math.fround((maxLp - floor32) / 65534);
      const head = new Float32Array(out, offset + COMMON_BYTES, 2);
      head[0] = scale32;
      head[1] = floor32;
      const codes = new Uint16Array(out, offset + COMMON_BYTES + 8, V);
      const inv = scale32 > 0 ? 1 / scale32 : 0;
      for (let i = 0; i < V; i++) {
        const lp = logits[base + i] - lse;
        // Compare with the exact floor (float32 rounding of it must not drop the least likely kept id).
        if (lp < floor) {
          codes[i] = 0;
          continue;
        }
        const c = 1 + Math.round((lp - floor32) * inv);
        codes[i] = c < 1 ? 1 : c > 65535 ? 65535 : c;
      }
      return;
    }
    // top-k: keep the k largest logits (ties: lower id first), sorted descending, by insertion.
    const k = this.topK;
    const ids = this.topIds;
    const vals = this.topVals;
    let n = 0;
    for (let i = 0; i < V; i++) {
      const v = logits[base + i];
      if (n === k && !(v > vals[k - 1])) continue;
      let j = n < k ? n++ : k - 1;
      while (j > 0 && vals[j - 1] < v) {
        vals[j] = vals[j - 1];
        ids[j] = ids[j - 1];
        j--;
      }
      vals[j] = v;
      ids[j] = i;
    }
    const chosen = this.chosen;
    for (let j = 0; j < k; j++) chosen[ids[j]] = 1;
    let rest = 0;
    const max = vals[0];
    for (let i = 0; i < V; i++) if (!chosen[i]) rest += Math.exp(logits[base + i] - max);
    for (let j = 0; j < k; j++) chosen[ids[j]] = 0;
    // rest is relative to exp(max); lse − max = log Σ exp(l − max).
    const logRest = rest > 0 ? Math.log(rest) + max - lse : -Infinity;
    new Float32Array(out, offset + COMMON_BYTES, 1)[0] = logRest;
    const outIds = new Uint32Array(out, offset + COMMON_BYTES + 4, k);
    const outLp = new Float32Array(out, offset + COMMON_BYTES + 4 + 4 * k, k);
    for (let j = 0; j < k; j++) {
      outIds[j] = ids[j];
      outLp[j] = vals[j] - lse;
    }
  }
}

/** Records read from a reference file, with what comparison needs of each. */
export class RecordBlock {
  readonly count: number;
  private readonly buf: ArrayBuffer;
  private readonly header: ReferenceHeader;
  private readonly scratch: Float64Array;

  constructor(buf: ArrayBuffer, count: number, header: ReferenceHeader, scratch: Float64Array) {
    this.buf = buf;
    this.count = count;
    this.header = header;
    this.scratch = scratch;
  }

  private at(r: number): number {
    if (r < 0 || r >= this.count) throw new EvalError('REFERENCE_RECORD_RANGE', `record ${r} is outside this block of ${this.count}`);
    return r * this.header.record_bytes;
  }

  lse(r: number): number {
    return new Float32Array(this.buf, this.at(r), 1)[0];
  }

  nll(r: number): number {
    return new Float32Array(this.buf, this.at(r) + 4, 1)[0];
  }

  top1(r: number): number {
    return new Uint32Array(this.buf, this.at(r) + 8, 1)[0];
  }

  /** The stored log-probabilities of record r: all ids (full-u16, −Infinity below the floor) or the top-k. */
  logProbs(r: number): { ids?: Uint32Array; logProbs: Float64Array | Float32Array; logRest: number } {
    const off = this.at(r);
    const V = this.header.n_vocab;
    if (this.header.encoding === 'full-u16') {
      const [scale, floor] = new Float32Array(this.buf, off + COMMON_BYTES, 2);
      const codes = new Uint16Array(this.buf, off + COMMON_BYTES + 8, V);
      const lp = this.scratch;
      for (let i = 0; i < V; i++) {
        const c = codes[i];
        lp[i] = c === 0 ? -Infinity : floor + (c - 1) * scale;
      }
      return { logProbs: lp, logRest: -Infinity };
    }
    const k = this.header.top_k;
    const logRest = new Float32Array(this.buf, off + COMMON_BYTES, 1)[0];
    return {
      ids: new Uint32Array(this.buf, off + COMMON_BYTES + 4, k),
      logProbs: new Float32Array(this.buf, off + COMMON_BYTES + 4 + 4 * k, k),
      logRest,
    };
  }

  /** KL(P_ref ‖ P_q) at record r against row qRow of q's logits (see klFromStored for exactness). */
  kl(r: number, q: Float32Array, qRow: number, vocab: number): number {
    const { ids, logProbs, logRest } = this.logProbs(r);
    return klFromStored(logProbs, ids, logRest, q, qRow, vocab);
  }
}

export interface ReferenceWriterOptions {
  /** Which model is scored (for messages when the file is used). */
  model: string;
  sequences: readonly (readonly number[] | Int32Array)[];
  positions: number;
  nVocab: number;
  encoding: ReferenceEncoding;
  topK: number;
  maxLength: number;
  stride: number;
}

/** Streams records to `path` (atomically: the file appears complete on close(), or not at all). */
export class ReferenceWriter {
  readonly header: ReferenceHeader;
  private readonly encoder: RecordEncoder;
  private readonly file: AtomicFileWriter;
  private written = 0;

  private constructor(file: AtomicFileWriter, header: ReferenceHeader, encoder: RecordEncoder) {
    this.file = file;
    this.header = header;
    this.encoder = encoder;
  }

  static async create(path: string, o: ReferenceWriterOptions): Promise<ReferenceWriter> {
    assertLittleEndian();
    const encoder = new RecordEncoder(o.encoding, o.nVocab, o.topK);
    let tokens = 0;
    for (const s of o.sequences) tokens += s.length;
    const header: ReferenceHeader = {
      format: 'phi-forge-reference-logprobs',
      model: o.model,
      tool: `${TOOL_NAME} ${TOOL_VERSION}`,
      tokens_sha256: hashTokenSequences(o.sequences),
      sequences: o.sequences.length,
      tokens,
      positions: o.positions,
      n_vocab: o.nVocab,
      encoding: o.encoding,
      top_k: encoder.topK,
      ...(o.encoding === 'full-u16' ? { full_range_nats: FULL_RANGE_NATS } : {}),
      record_bytes: encoder.recordBytes,
      max_length: o.maxLength,
      stride: o.stride,
    };
    const file = await AtomicFileWriter.create(path);
    try {
      await file.write(encodePrefix(header));
    } catch (e) {
      await file.abort();
      throw e;
    }
    return new ReferenceWriter(file, header, encoder);
  }

  /** Appends the records of `rows` scored rows of a logits matrix (row i at rowOffset + i). */
  async append(logits: Float32Array, rowOffset: number, rows: number, lse: ArrayLike<number>, top1: ArrayLike<number>, nll: ArrayLike<number>): Promise<void> {
    if (this.written + rows > this.header.positions) {
      throw new EvalError('REFERENCE_TOO_MANY', `more than the ${this.header.positions} planned positions were written`);
    }
    const rb = this.encoder.recordBytes;
    const buf = new ArrayBuffer(rows * rb);
    for (let r = 0; r < rows; r++) this.encoder.encode(buf, r * rb, logits, rowOffset + r, lse[r], top1[r], nll[r]);
    await this.file.write(new Uint8Array(buf));
    this.written += rows;
  }

  /** Finishes the file; fails (and removes it) when fewer positions were written than planned. */
  async close(): Promise<void> {
    if (this.written !== this.header.positions) {
      await this.file.abort();
      throw new EvalError('REFERENCE_INCOMPLETE', `only ${this.written} of ${this.header.positions} positions were written`, {
        file: this.file.path,
      });
    }
    await this.file.commit();
  }

  async abort(): Promise<void> {
    await this.file.abort();
  }
}

function sameWindowPlan(a: readonly ScoreWindow[], b: readonly ScoreWindow[]): boolean {
  return a.length === b.length && a.every((w, i) => w.begin === b[i].begin && w.end === b[i].end && w.scoreFrom === b[i].scoreFrom);
}

function encodePrefix(header: ReferenceHeader): Uint8Array {
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - ((PREFIX_BYTES + json.length) % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const out = new Uint8Array(PREFIX_BYTES + json.length);
  out.set(Buffer.from(REFERENCE_MAGIC, 'latin1'), 0);
  const dv = new DataView(out.buffer);
  dv.setUint32(8, REFERENCE_VERSION, true);
  dv.setUint32(12, json.length, true);
  out.set(json, PREFIX_BYTES);
  return out;
}

/** What the evaluation at hand must share with the reference file. */
export interface ReferenceExpectation {
  sequences: readonly (readonly number[] | Int32Array)[];
  nVocab: number;
  maxLength: number;
  stride: number;
}

/** Reads records in order, in blocks. */
export class ReferenceReader {
  readonly path: string;
  readonly header: ReferenceHeader;
  private readonly fh: FileHandle;
  private readonly dataOffset: number;
  private next = 0;
  private readonly scratch: Float64Array;

  private constructor(path: string, fh: FileHandle, header: ReferenceHeader, dataOffset: number) {
    this.path = path;
    this.fh = fh;
    this.header = header;
    this.dataOffset = dataOffset;
    this.scratch = new Float64Array(header.encoding === 'full-u16' ? header.n_vocab : 0);
  }

  /** Opens and checks a reference file (magic, version, header, size). */
  static async open(path: string): Promise<ReferenceReader> {
    assertLittleEndian();
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (e) {
      throw new EvalError('REFERENCE_NOT_FOUND', 'no such reference file', {
        file: path,
        fix: 'save one with `pnpm pipeline eval <fp32-model> --save-reference FILE`, or pass the reference model folder',
        cause: e,
      });
    }
    const fh = await open(path, 'r');
    try {
      const bad = (what: string): EvalError =>
        new EvalError('REFERENCE_INVALID', `not a phi-forge reference file: ${what}`, {
          file: path,
          fix: 'pass a file written by `eval --save-reference` (or the reference model folder)',
        });
      const prefix = new Uint8Array(PREFIX_BYTES);
      const { bytesRead } = await fh.read(prefix, 0, PREFIX_BYTES, 0);
      if (bytesRead < PREFIX_BYTES || Buffer.from(prefix.subarray(0, 8)).toString('latin1') !== REFERENCE_MAGIC) throw bad('wrong magic bytes');
      const dv = new DataView(prefix.buffer);
      const version = dv.getUint32(8, true);
      if (version !== REFERENCE_VERSION) {
        throw new EvalError('REFERENCE_VERSION', `reference file version ${version}; this tool reads version ${REFERENCE_VERSION}`, {
          file: path,
          fix: 'save the reference again with this version of phi-forge',
        });
      }
      const hlen = dv.getUint32(12, true);
      if (PREFIX_BYTES + hlen > size) throw bad('header runs past the end of the file');
      const hbuf = new Uint8Array(hlen);
      await fh.read(hbuf, 0, hlen, PREFIX_BYTES);
      let raw: unknown;
      try {
        raw = JSON.parse(Buffer.from(hbuf).toString('utf8'));
      } catch {
        throw bad('header is not JSON');
      }
      const parsed = headerSchema.safeParse(raw);
      if (!parsed.success) throw bad(`header fields: ${z.prettifyError(parsed.error)}`);
      const header = parsed.data;
      const expectBytes = recordBytes(header.encoding, header.n_vocab, header.top_k);
      if (header.record_bytes !== expectBytes) throw bad(`record_bytes ${header.record_bytes} does not match the encoding (${expectBytes})`);
      const want = PREFIX_BYTES + hlen + header.positions * header.record_bytes;
      if (size !== want) {
        throw new EvalError('REFERENCE_TRUNCATED', `the file has ${size} bytes; its header describes ${want}`, {
          file: path,
          fix: 'the file is truncated or damaged: save the reference again',
        });
      }
      return new ReferenceReader(path, fh, header, PREFIX_BYTES + hlen);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** Throws EvalError unless the file was saved for these tokens, this vocabulary and these windows. */
  check(e: ReferenceExpectation): void {
    const h = this.header;
    const hash = hashTokenSequences(e.sequences);
    if (hash !== h.tokens_sha256) {
      let tokens = 0;
      for (const s of e.sequences) tokens += s.length;
      throw new EvalError(
        'REFERENCE_TOKENS_MISMATCH',
        `the reference was saved for other tokens (${h.sequences} sequences, ${h.tokens} tokens, sha256 ${h.tokens_sha256.slice(0, 12)}…) ` +
          `than the ones being evaluated (${e.sequences.length} sequences, ${tokens} tokens, sha256 ${hash.slice(0, 12)}…)`,
        {
          file: this.path,
          fix: 'evaluate the same --tokens/--text (same --column, --max-tokens and tokenizer) used with --save-reference, or save a new reference',
        },
      );
    }
    if (e.nVocab !== h.n_vocab) {
      throw new EvalError('REFERENCE_VOCAB_MISMATCH', `the reference has ${h.n_vocab} vocabulary entries, the model ${e.nVocab}`, {
        file: this.path,
        fix: 'compare models of the same vocabulary (a quantized package against its own unquantized model)',
      });
    }
    // Only the windows' effect matters: different numbers that cut every sequence the same way are fine.
    const theirs = { maxLength: h.max_length, stride: h.stride };
    const sameWindows = e.sequences.every((s) => sameWindowPlan(planWindows(s.length, e), planWindows(s.length, theirs)));
    if (!sameWindows) {
      throw new EvalError(
        'REFERENCE_WINDOWS_MISMATCH',
        `the reference was scored with --max-length ${h.max_length} --stride ${h.stride}, this evaluation uses ${e.maxLength}/${e.stride}`,
        { file: this.path, fix: `omit --max-length/--stride (the reference's are used) or pass --max-length ${h.max_length} --stride ${h.stride}` },
      );
    }
  }

  get remaining(): number {
    return this.header.positions - this.next;
  }

  /** The next `count` records, in order. */
  async read(count: number): Promise<RecordBlock> {
    if (count > this.remaining) {
      throw new EvalError('REFERENCE_EXHAUSTED', `asked for ${count} more records, ${this.remaining} left of ${this.header.positions}`, {
        file: this.path,
      });
    }
    const rb = this.header.record_bytes;
    const buf = new ArrayBuffer(count * rb);
    const view = new Uint8Array(buf);
    let done = 0;
    const pos = this.dataOffset + this.next * rb;
    while (done < view.length) {
      const { bytesRead } = await this.fh.read(view, done, view.length - done, pos + done);
      if (bytesRead === 0) throw new EvalError('REFERENCE_TRUNCATED', 'unexpected end of file', { file: this.path });
      done += bytesRead;
    }
    this.next += count;
    return new RecordBlock(buf, count, this.header, this.scratch);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
