// Where the quantizer puts the tensors it makes. In memory for small models and tests; for real models a spill file:
// each quantized tensor is appended to a scratch data file as soon as its rows are done, and the initializer points
// at it (external data), so a quantization run holds only the tensors in flight, never the quantized model.
// The model is then saved elsewhere (saveModel copies the spilled bytes into its own data file) and the spill removed.
import { open, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { QuantizationError } from '../../util/errors.js';
import { Tensor } from '../../onnx/tensor.js';

/** One tensor being written in consecutive pieces. */
export interface TensorWriter {
  append(piece: Uint8Array): Promise<void>;
  /** The tensor made of every piece appended, in order. */
  finish(name: string, dataType: number, dims: readonly number[]): Promise<Tensor>;
}

export interface TensorSink {
  begin(): TensorWriter;
  /** Bytes written to the sink so far. */
  readonly bytes: number;
}

/** Keeps tensors inline (pieces joined). */
export function memorySink(): TensorSink {
  let total = 0;
  return {
    get bytes() {
      return total;
    },
    begin() {
      const pieces: Uint8Array[] = [];
      return {
        async append(piece) {
          pieces.push(piece);
          total += piece.byteLength;
        },
        async finish(name, dataType, dims) {
          const bytes = pieces.length === 1 ? pieces[0] : joinPieces(pieces);
          return Tensor.fromBytes(name, dataType, dims, bytes);
        },
      };
    },
  };
}

function joinPieces(pieces: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Tensors start at multiples of this in the spill (the alignment saveModel gives small tensors). */
const SPILL_ALIGNMENT = 64;

/**
 * A scratch data file that tensors are appended to, one writer at a time (pieces of one tensor must be contiguous).
 * Create it where the output goes (same disk); `remove()` it once the model that reads it has been saved.
 */
export class SpillFile implements TensorSink {
  private offset = 0;
  private busy = false;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
  ) {}

  /** Creates the file; it must not exist yet (two runs must never share a spill). */
  static async create(path: string): Promise<SpillFile> {
    const file = resolve(path);
    try {
      return new SpillFile(file, await open(file, 'wx+'));
    } catch (e) {
      throw new QuantizationError('QUANT_SPILL_CREATE', 'cannot create the scratch file for quantized tensors', {
        where: file,
        fix: 'make the output folder writable (and remove a stale scratch file of a killed run)',
        cause: e,
      });
    }
  }

  get bytes(): number {
    return this.offset;
  }

  begin(): TensorWriter {
    if (this.busy) throw new Error('SpillFile: a tensor is already being written');
    this.busy = true;
    const pad = (SPILL_ALIGNMENT - (this.offset % SPILL_ALIGNMENT)) % SPILL_ALIGNMENT;
    this.offset += pad;
    const start = this.offset;
    return {
      append: async (piece) => {
        let done = 0;
        while (done < piece.byteLength) {
          const { bytesWritten } = await this.fh.write(piece, done, piece.byteLength - done, this.offset);
          done += bytesWritten;
          this.offset += bytesWritten;
        }
      },
      finish: async (name, dataType, dims) => {
        this.busy = false;
        return new Tensor(name, dataType, dims, {
          kind: 'external',
          path: this.path,
          location: basename(this.path),
          dir: dirname(this.path),
          offset: start,
          length: this.offset - start,
        });
      },
    };
  }

  /** Closes and deletes the file (tensors pointing at it become unreadable). Safe to call twice. */
  async remove(): Promise<void> {
    await this.fh.close().catch(() => {});
    await rm(this.path, { force: true });
  }
}
