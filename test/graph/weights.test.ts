import { describe, expect, it } from 'vitest';
import { expectShape, linearWeight, plainWeight, type WeightSource } from '../../src/graph/weights.js';
import { DataType } from '../../src/onnx/dtype.js';
import { ScratchPool, float16BitsToFloat32, float32ToBfloat16Bits, float32ToFloat16Bits, viewBytes } from '../../src/onnx/tensor.js';
import { CheckpointError } from '../../src/util/errors.js';

/** An in-memory WeightSource over float32 values stored as `dataType`, counting reads; `readsInto` adds readRowsInto. */
function memory(tensors: Record<string, { dims: number[]; values: number[]; dataType?: number }>, readsInto = false) {
  const stats = { reads: 0 };
  const src: WeightSource = {
    info: (name) => {
      const t = tensors[name];
      return t && { dataType: t.dataType ?? DataType.FLOAT, dims: t.dims };
    },
    readRows: async (name, start, end) => {
      stats.reads++;
      const t = tensors[name];
      const cols = t.dims.slice(1).reduce((a, b) => a * b, 1);
      const f = Float32Array.from(t.values.slice(start * cols, end * cols));
      if (t.dataType === DataType.BFLOAT16) return viewBytes(float32ToBfloat16Bits(f));
      if (t.dataType === DataType.FLOAT16) return viewBytes(float32ToFloat16Bits(f));
      return viewBytes(f);
    },
  };
  if (readsInto) {
    src.readRowsInto = async (name, start, into) => {
      const cols = tensors[name].dims.slice(1).reduce((a, b) => a * b, 1);
      const width = (tensors[name].dataType ?? DataType.FLOAT) === DataType.FLOAT ? 4 : 2;
      into.set(await src.readRows(name, start, start + into.byteLength / (cols * width)));
    };
  }
  return { src, stats };
}

describe('linearWeight', () => {
  // W [out=3, in=2] = [[1,2],[3,4],[5,6]] → MatMul weight [in, out] = [[1,3,5],[2,4,6]].
  const w = { dims: [3, 2], values: [1, 2, 3, 4, 5, 6] };

  it('transposes [out, in] to [in, out] lazily', async () => {
    const { src, stats } = memory({ w });
    const t = linearWeight(src, 'x.weight', [{ tensor: 'w' }], DataType.FLOAT);
    expect(t.dims).toEqual([2, 3]);
    expect(t.source.kind).toBe('lazy');
    expect(stats.reads).toBe(0);
    expect([...(await t.float32())]).toEqual([1, 3, 5, 2, 4, 6]);
  });

  it('stacks row slices (packed QKV) and splits them (gate/up)', async () => {
    const { src } = memory({ w, v: { dims: [1, 2], values: [7, 8] } });
    const packed = linearWeight(src, 'p', [{ tensor: 'w', rows: [1, 3] }, { tensor: 'v' }], DataType.FLOAT);
    expect(packed.dims).toEqual([2, 3]);
    expect([...(await packed.float32())]).toEqual([3, 5, 7, 4, 6, 8]);
  });

  it('reads bf16 and writes fp16', async () => {
    const { src } = memory({ w: { ...w, dataType: DataType.BFLOAT16 } });
    const t = linearWeight(src, 'h', [{ tensor: 'w' }], DataType.FLOAT16);
    expect(t.dataType).toBe(DataType.FLOAT16);
    const bytes = await t.bytes();
    expect([...float16BitsToFloat32(new Uint16Array(bytes.buffer, bytes.byteOffset, 6))]).toEqual([1, 3, 5, 2, 4, 6]);
  });

  it('refuses a slice whose input width differs', () => {
    const { src } = memory({ w, u: { dims: [2, 3], values: [0, 0, 0, 0, 0, 0] } });
    expect(() => linearWeight(src, 'p', [{ tensor: 'w' }, { tensor: 'u' }], DataType.FLOAT)).toThrow(/tensor u has shape \[2, 3\], expected \[\*, 2\]/);
  });

  it('names a missing tensor', () => {
    const { src } = memory({});
    expect(() => linearWeight(src, 'p', [{ tensor: 'gone' }], DataType.FLOAT)).toThrow(CheckpointError);
    expect(() => linearWeight(src, 'p', [{ tensor: 'gone' }], DataType.FLOAT)).toThrow(/gone/);
  });

  it('reads big tensors in row chunks, not at once', async () => {
    // 40 MB of fp32 rows (above the 32 MB chunk) → at least two reads.
    const rows = 5000;
    const cols = 2048;
    const big = { dims: [rows, cols], values: [] as number[] };
    let reads = 0;
    const src: WeightSource = {
      info: () => ({ dataType: DataType.FLOAT, dims: big.dims }),
      readRows: async (_n, start, end) => {
        reads++;
        const f = new Float32Array((end - start) * cols);
        for (let r = start; r < end; r++) f[(r - start) * cols + 7] = r;
        return viewBytes(f);
      },
    };
    const t = linearWeight(src, 'big', [{ tensor: 'big' }], DataType.FLOAT);
    const out = await t.float32();
    expect(reads).toBeGreaterThan(1);
    // Row r, column 7 of the source is [7, r] of the transposed weight.
    expect(out[7 * rows + 4321]).toBe(4321);
  });
});

/** Collects a chunked lazy tensor's pieces (copied: a producer may reuse its buffer), with a writer's scratch pool if given. */
async function pieces(t: Awaited<ReturnType<typeof linearWeight>>, scratch?: ScratchPool): Promise<Uint8Array[]> {
  if (t.source.kind !== 'lazy' || !t.source.chunks) throw new Error(`${t.name} is not chunked`);
  const out: Uint8Array[] = [];
  for await (const c of t.source.chunks(scratch)) out.push(c.slice());
  return out;
}

describe('chunked output', () => {
  // q [5, 6], kv [4, 6] with values that say where they came from: 1000·tensor + 10·row + col.
  const val = (k: number, r: number, c: number) => 1000 * k + 10 * r + c;
  const grid = (k: number, rows: number) => Array.from({ length: rows * 6 }, (_, i) => val(k, Math.floor(i / 6), i % 6));

  it.each([
    ['fp32 from fp32', DataType.FLOAT, DataType.FLOAT],
    ['fp32 from bf16', DataType.BFLOAT16, DataType.FLOAT],
    ['fp16 from fp16', DataType.FLOAT16, DataType.FLOAT16],
  ] as const)('linearWeight %s: output rows in chunks of at most chunkBytes, equal to one transpose', async (_n, stored, dtype) => {
    const { src, stats } = memory({ q: { dims: [5, 6], values: grid(1, 5), dataType: stored }, kv: { dims: [4, 6], values: grid(2, 4), dataType: stored } });
    // Output [6, 5 + 2] (q rows 0..5, kv rows 1..3): 7 values = 28 bytes per row; 64 bytes → 2 rows per chunk.
    const t = linearWeight(src, 'w', [{ tensor: 'q' }, { tensor: 'kv', rows: [1, 3] }], dtype, { chunkBytes: 64 });
    expect(t.dims).toEqual([6, 7]);
    const got = await pieces(t);
    const width = dtype === DataType.FLOAT ? 4 : 2;
    expect(got.map((c) => c.byteLength)).toEqual([2, 2, 2].map((rows) => rows * 7 * width));
    expect(stats.reads).toBe(2); // each source slice read once, not once per chunk
    const joined = Buffer.concat(got);
    const values = dtype === DataType.FLOAT ? new Float32Array(joined.buffer, joined.byteOffset, 42) : float16BitsToFloat32(new Uint16Array(joined.buffer, joined.byteOffset, 42));
    const want: number[] = [];
    for (let i = 0; i < 6; i++) {
      for (let r = 0; r < 5; r++) want.push(val(1, r, i));
      for (let r = 1; r < 3; r++) want.push(val(2, r, i));
    }
    // fp32 and fp16 hold these integers (< 2048) exactly; bf16 keeps 8 significant bits (steps of 8 near 2000).
    const tol = stored === DataType.BFLOAT16 ? 4 : 0;
    [...values].forEach((v, j) => expect(Math.abs(v - want[j]), `element ${j}`).toBeLessThanOrEqual(tol));
    expect(Buffer.compare(Buffer.from(await t.bytes()), joined)).toBe(0);
  });

  it('plainWeight streams rows in chunks too', async () => {
    const { src } = memory({ e: { dims: [5, 6], values: grid(0, 5) } });
    const t = plainWeight(src, 'e', [{ tensor: 'e' }], DataType.FLOAT, { chunkBytes: 48 }); // 2 rows of 24 bytes
    const got = await pieces(t);
    expect(got.map((c) => c.byteLength)).toEqual([48, 48, 24]);
    const joined = Buffer.concat(got);
    expect([...new Float32Array(joined.buffer, joined.byteOffset, 30)]).toEqual(grid(0, 5));
  });
});

describe('scratch pool', () => {
  // Lent buffers come back dirty (not zeroed): every weight must overwrite all it yields, whatever the pool held before.
  it.each([
    ['rows read as new buffers', false],
    ['rows read into lent buffers', true],
  ])('weights made with reused, dirty buffers are byte-identical to ones made without a pool (%s)', async (_n, readsInto) => {
    const vals = (n: number, k: number) => Array.from({ length: n }, (_, i) => ((i * 7 + k) % 23) - 11 + 0.25 * k);
    const { src } = memory({
      q: { dims: [5, 6], values: vals(30, 1), dataType: DataType.BFLOAT16 },
      kv: { dims: [4, 6], values: vals(24, 2), dataType: DataType.FLOAT16 },
      f: { dims: [7, 6], values: vals(42, 3) },
      e: { dims: [9, 6], values: vals(54, 4), dataType: DataType.BFLOAT16 },
    }, readsInto);
    const make = () => [
      linearWeight(src, 'big', [{ tensor: 'f' }], DataType.FLOAT),
      linearWeight(src, 'qkv', [{ tensor: 'q' }, { tensor: 'kv', rows: [1, 3] }], DataType.FLOAT16, { chunkBytes: 16 }),
      linearWeight(src, 'q32', [{ tensor: 'q' }], DataType.FLOAT, { chunkBytes: 40 }),
      plainWeight(src, 'emb16', [{ tensor: 'e' }], DataType.FLOAT16, { chunkBytes: 24 }),
      plainWeight(src, 'emb32', [{ tensor: 'e' }, { tensor: 'kv' }], DataType.FLOAT, { chunkBytes: 48 }),
      linearWeight(src, 'kv16', [{ tensor: 'kv' }], DataType.FLOAT16),
    ];
    const pool = new ScratchPool();
    const dirty = pool.take(4096);
    dirty.fill(0xa5);
    pool.give(dirty);
    for (const [plain, pooled] of make().map((t, i) => [t, make()[i]] as const)) {
      const want = Buffer.from(await plain.bytes());
      // Twice through the same pool: the second run reuses what the first (and the weights before) left behind.
      for (let run = 0; run < 2; run++) expect(Buffer.compare(Buffer.concat(await pieces(pooled, pool)), want), `${plain.name} run ${run}`).toBe(0);
    }
  });

  it('lends a free buffer that fits, and drops the free ones when none does', () => {
    const pool = new ScratchPool();
    const a = pool.take(100);
    pool.give(a);
    const b = pool.take(60);
    expect(b.buffer).toBe(a.buffer);
    expect(b.byteLength).toBe(60);
    pool.give(b);
    const c = pool.take(200);
    expect(c.buffer).not.toBe(a.buffer);
    expect(pool.take(50).buffer).not.toBe(a.buffer); // a was let go when nothing fitted 200
  });
});

describe('plainWeight', () => {
  it('copies as stored and concatenates 1-D slices (packed bias)', async () => {
    const { src } = memory({ a: { dims: [2], values: [1, 2] }, b: { dims: [3], values: [3, 4, 5] } });
    const t = plainWeight(src, 'bias', [{ tensor: 'a' }, { tensor: 'b', rows: [1, 3] }], DataType.FLOAT);
    expect(t.dims).toEqual([4]);
    expect([...(await t.float32())]).toEqual([1, 2, 4, 5]);
  });

  it('checks shapes against the config', () => {
    const { src } = memory({ a: { dims: [2, 4], values: new Array(8).fill(0) } });
    expect(() => expectShape(src, 'a', [2, 4])).not.toThrow();
    expect(() => expectShape(src, 'a', [4, 2])).toThrow(/config implies \[4, 2\]/);
  });
});
