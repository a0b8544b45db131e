// A minimal Parquet writer for tests (no writer package is installed): one row group, one UTF-8 string column per
// call, one PLAIN data page (v1), optional nulls via definition levels, and a chosen codec — written from the
// format's spec (thrift compact protocol) so the reader under test gets a file it did not produce itself.
import { brotliCompressSync, gzipSync } from 'node:zlib';

type Codec = 'UNCOMPRESSED' | 'GZIP' | 'BROTLI';
const CODEC_IDS: Record<Codec, number> = { UNCOMPRESSED: 0, GZIP: 2, BROTLI: 4 };

// Thrift compact protocol type ids.
const T = { I32: 5, I64: 6, BINARY: 8, LIST: 9, STRUCT: 12 } as const;

class CompactWriter {
  private bytes: number[] = [];
  private lastField: number[] = [0];

  varint(n: number): void {
    let v = BigInt(n);
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v) b |= 0x80;
      this.bytes.push(b);
    } while (v);
  }

  zigzag(n: number): void {
    const v = BigInt(n);
    this.varint(Number(v >= 0n ? v << 1n : ((-v) << 1n) - 1n));
  }

  fieldHeader(id: number, type: number): void {
    const last = this.lastField[this.lastField.length - 1];
    const delta = id - last;
    if (delta > 0 && delta <= 15) this.bytes.push((delta << 4) | type);
    else {
      this.bytes.push(type);
      this.zigzag(id);
    }
    this.lastField[this.lastField.length - 1] = id;
  }

  i32(id: number, v: number): void {
    this.fieldHeader(id, T.I32);
    this.zigzag(v);
  }

  i64(id: number, v: number): void {
    this.fieldHeader(id, T.I64);
    this.zigzag(v);
  }

  binary(id: number, v: Uint8Array | string): void {
    this.fieldHeader(id, T.BINARY);
    this.rawBinary(v);
  }

  rawBinary(v: Uint8Array | string): void {
    const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    this.varint(b.length);
    for (const x of b) this.bytes.push(x);
  }

  struct(id: number | undefined, body: () => void): void {
    if (id !== undefined) this.fieldHeader(id, T.STRUCT);
    this.lastField.push(0);
    body();
    this.bytes.push(0); // stop
    this.lastField.pop();
  }

  list(id: number, elemType: number, items: (() => void)[]): void {
    this.fieldHeader(id, T.LIST);
    if (items.length < 15) this.bytes.push((items.length << 4) | elemType);
    else {
      this.bytes.push(0xf0 | elemType);
      this.varint(items.length);
    }
    for (const it of items) it();
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

export interface ParquetColumnOptions {
  name: string;
  /** null entries need `optional`. */
  values: (string | null)[];
  optional?: boolean;
  codec?: Codec;
  /** Extra column written after the text column (to test column selection): int32 values, required. */
  extraInt32Column?: { name: string; values: number[] };
}

/** Encodes a Parquet file holding the column(s). */
export function writeParquet(o: ParquetColumnOptions): Uint8Array {
  const codec = o.codec ?? 'UNCOMPRESSED';
  const n = o.values.length;
  if (!o.optional && o.values.some((v) => v === null)) throw new Error('nulls need an optional column');

  const chunks: Uint8Array[] = [Buffer.from('PAR1')];
  let offset = 4;
  const columnMeta: { name: string; type: number; offset: number; uncompressed: number; compressed: number; codec: number }[] = [];

  // Text column page: [definition levels: u32 length + bit-packed hybrid (bit width 1)] + PLAIN byte arrays.
  {
    const parts: Buffer[] = [];
    if (o.optional) {
      const groups = Math.ceil(n / 8);
      const levels = Buffer.alloc(groups);
      o.values.forEach((v, i) => {
        if (v !== null) levels[i >> 3] |= 1 << (i & 7);
      });
      const header = new CompactWriter();
      header.varint((groups << 1) | 1);
      const rle = Buffer.concat([Buffer.from(header.finish()), levels]);
      const len = Buffer.alloc(4);
      len.writeUInt32LE(rle.length);
      parts.push(len, rle);
    }
    for (const v of o.values) {
      if (v === null) continue;
      const b = Buffer.from(v, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      parts.push(len, b);
    }
    const page = Buffer.concat(parts);
    const body = codec === 'GZIP' ? gzipSync(page) : codec === 'BROTLI' ? brotliCompressSync(page) : page;
    const h = new CompactWriter();
    h.struct(undefined, () => {
      h.i32(1, 0); // DATA_PAGE
      h.i32(2, page.length);
      h.i32(3, body.length);
      h.struct(5, () => {
        h.i32(1, n);
        h.i32(2, 0); // PLAIN
        h.i32(3, 3); // RLE
        h.i32(4, 3); // RLE
      });
    });
    const hb = h.finish();
    columnMeta.push({ name: o.name, type: 6, offset, uncompressed: hb.length + page.length, compressed: hb.length + body.length, codec: CODEC_IDS[codec] });
    chunks.push(hb, body);
    offset += hb.length + body.length;
  }
  if (o.extraInt32Column) {
    const vals = o.extraInt32Column.values;
    if (vals.length !== n) throw new Error('extra column needs one value per row');
    const page = Buffer.alloc(4 * n);
    vals.forEach((v, i) => page.writeInt32LE(v, 4 * i));
    const h = new CompactWriter();
    h.struct(undefined, () => {
      h.i32(1, 0);
      h.i32(2, page.length);
      h.i32(3, page.length);
      h.struct(5, () => {
        h.i32(1, n);
        h.i32(2, 0);
        h.i32(3, 3);
        h.i32(4, 3);
      });
    });
    const hb = h.finish();
    columnMeta.push({ name: o.extraInt32Column.name, type: 1, offset, uncompressed: hb.length + page.length, compressed: hb.length + page.length, codec: 0 });
    chunks.push(hb, page);
    offset += hb.length + page.length;
  }

  const m = new CompactWriter();
  m.struct(undefined, () => {
    m.i32(1, 1);
    m.list(2, T.STRUCT, [
      () =>
        m.struct(undefined, () => {
          m.binary(4, 'schema');
          m.i32(5, columnMeta.length);
        }),
      ...columnMeta.map((c, i) => () =>
        m.struct(undefined, () => {
          m.i32(1, c.type);
          m.i32(3, i === 0 && o.optional ? 1 : 0);
          m.binary(4, c.name);
          if (c.type === 6) m.i32(6, 0); // UTF8
        }),
      ),
    ]);
    m.i64(3, n);
    m.list(4, T.STRUCT, [
      () =>
        m.struct(undefined, () => {
          m.list(
            1,
            T.STRUCT,
            columnMeta.map((c) => () =>
              m.struct(undefined, () => {
                m.i64(2, c.offset);
                m.struct(3, () => {
                  m.i32(1, c.type);
                  m.list(2, T.I32, [() => m.zigzag(0), () => m.zigzag(3)]);
                  m.list(3, T.BINARY, [() => m.rawBinary(c.name)]);
                  m.i32(4, c.codec);
                  m.i64(5, n);
                  m.i64(6, c.uncompressed);
                  m.i64(7, c.compressed);
                  m.i64(9, c.offset);
                });
              }),
            ),
          );
          m.i64(2, columnMeta.reduce((a, c) => a + c.uncompressed, 0));
          m.i64(3, n);
        }),
    ]);
    m.binary(6, 'phi-forge test writer');
  });
  const meta = m.finish();
  const len = Buffer.alloc(4);
  len.writeUInt32LE(meta.length);
  chunks.push(meta, len, Buffer.from('PAR1'));
  return Buffer.concat(chunks);
}
