// Quantizing in row bands with quantized tensors spilled to disk (quantize-weights.ts, tensor-sink.ts,
// quantize-file.ts): the output files are byte-identical to quantizing each weight whole in memory, for every
// scheme and both weight layouts; the quantized tensors live in the spill, not in memory; the spill never outlives
// the run; errors in a later band name the element of the whole weight.
import { spawnSync } from 'node:child_process';
import { copyFile, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertCheckpoint } from '../../src/arch/convert.js';
import { loadModel, saveModel } from '../../src/onnx/model-file.js';
import { Tensor } from '../../src/onnx/tensor.js';
import { findMatMulWeights } from '../../src/quant/passes/find-weights.js';
import { quantizeModelFile } from '../../src/quant/quantize-file.js';
import { quantizeModel, type QuantizeOptions } from '../../src/quant/quantize-model.js';
import { SpillFile } from '../../src/quant/streaming/tensor-sink.js';
import { readWeightRows, rowBands } from '../../src/quant/streaming/weight-rows.js';
import { isPhiForgeError } from '../../src/util/errors.js';
import { cleanTempDirs, tempDir, tinyCheckpoint } from '../helpers/build.js';
import { matmulModel, randomMatrix } from '../helpers/quant.js';

/**
 * Small enough that the big weights of a tiny model are cut into several bands of a few rows (not a multiple of any
 * row size); the fp16 model (hidden size 64) needs smaller pieces.
 */
const TINY_PIECE = 20_000;
const TINY_PIECE_FP16 = 4_000;

let phi4: string; // tied embeddings, lm_head [H, V] ('kn'), fp32
let phi3: string; // untied embedding table [V, H] ('nk'), fp16

beforeAll(async () => {
  for (const [preset, target] of [
    ['phi-4-mini', 'cpu'],
    ['phi-3-mini-4k', 'cuda'],
  ] as const) {
    const { dir } = await tinyCheckpoint(preset);
    const out = await tempDir();
    await convertCheckpoint({ checkpointDir: dir, outDir: out, target });
    if (preset === 'phi-4-mini') phi4 = join(out, 'model.onnx');
    else phi3 = join(out, 'model.onnx');
  }
}, 60_000);
afterAll(cleanTempDirs);

/** Reference: every weight quantized whole, tensors in memory, then saved. */
async function inMemory(input: string, o: QuantizeOptions): Promise<string> {
  const out = join(await tempDir(), 'model.onnx');
  const r = await quantizeModel(await loadModel(input), { ...o, threads: 0, pieceBytes: Number.MAX_SAFE_INTEGER });
  await saveModel(r.model, out);
  return out;
}

async function sameFiles(a: string, b: string): Promise<void> {
  expect(Buffer.compare(await readFile(a), await readFile(b))).toBe(0);
  expect(Buffer.compare(await readFile(`${a}.data`), await readFile(`${b}.data`))).toBe(0);
}

describe('banded, spilled quantization', () => {
  const cases: [string, () => string, QuantizeOptions, number][] = [
    ['int4 sym, tied lm_head [H, V]', () => phi4, { scheme: 'int4', blockSize: 32 }, TINY_PIECE],
    ['int4 asym', () => phi4, { scheme: 'int4', asym: true, blockSize: 16 }, TINY_PIECE],
    ['int8', () => phi4, { scheme: 'int8', blockSize: 32 }, TINY_PIECE],
    ['hqq', () => phi4, { scheme: 'int4', algo: 'hqq', blockSize: 32 }, TINY_PIECE],
    ['ternary per row', () => phi4, { scheme: 'ternary', ternaryScope: 'row', blockSize: 32 }, TINY_PIECE],
    ['fp16, untied table [V, H], embeddings all', () => phi3, { scheme: 'int4', embeddings: 'all', blockSize: 32 }, TINY_PIECE_FP16],
  ];
  it.each(cases)('%s: files equal whole-weight in-memory quantization; no scratch file left', async (_, input, o, pieceBytes) => {
    const dir = await tempDir();
    const out = join(dir, 'model.onnx');
    const r = await quantizeModelFile(input(), out, { ...o, threads: 2, pieceBytes });
    // The biggest weight really was cut into bands (the lm_head, [K, N]: column bands).
    const model = await loadModel(input());
    const weights = findMatMulWeights(model).candidates.map((c) => c.weight);
    expect(Math.max(...weights.map((w) => rowBands(w, pieceBytes).length))).toBeGreaterThan(3);
    await sameFiles(out, await inMemory(input(), o));
    expect((await readdir(dir)).sort()).toEqual(['model.onnx', 'model.onnx.data']);
    expect(r.spilledBytes).toBeGreaterThan(0);
    expect(r.saved.dataBytes).toBeGreaterThanOrEqual(r.spilledBytes * 0.9);
  });

  it('keeps every quantized tensor in the spill file, not in memory', async () => {
    const dir = await tempDir();
    const spill = await SpillFile.create(join(dir, 'scratch'));
    try {
      const r = await quantizeModel(await loadModel(phi4), { scheme: 'int4', asym: true, threads: 0, sink: spill, pieceBytes: TINY_PIECE });
      const quantized = r.model.graph.initializers.filter((t) => /\.(qweight|scales|qzeros)$/.test(t.name));
      expect(quantized.length).toBeGreaterThan(10);
      for (const t of quantized) expect(t.source).toMatchObject({ kind: 'external', path: spill.path });
      const bytes = quantized.reduce((n, t) => n + t.byteLength, 0);
      expect(spill.bytes).toBeGreaterThanOrEqual(bytes);
      expect(spill.bytes).toBeLessThan(bytes + 64 * quantized.length);
      // Read back, a spilled tensor is what the in-memory run made.
      const mem = await quantizeModel(await loadModel(phi4), { scheme: 'int4', asym: true, threads: 0 });
      for (const t of quantized) expect(await t.bytes()).toEqual(await mem.model.graph.initializer(t.name)!.bytes());
    } finally {
      await spill.remove();
    }
    expect(await readdir(dir)).toEqual([]);
  });

  it('a non-finite value in a later band fails naming the element of the whole weight, leaving nothing behind', async () => {
    const [K, N] = [64, 40];
    const w = randomMatrix(4, K, N);
    w[37 * N + 29] = Number.NaN; // row 37 of the stored [K, N] tensor, column 29: band 2 of 3 when bands are 16 columns
    const src = join(await tempDir(), 'in.onnx');
    await saveModel(matmulModel({ K, N, w }), src, { sizeThreshold: 0 });
    const dir = await tempDir();
    const e = await quantizeModelFile(src, join(dir, 'model.onnx'), { blockSize: 32, threads: 0, pieceBytes: 16 * K * 4 }).catch((x: unknown) => x);
    expect(isPhiForgeError(e) && e.code).toBe('QUANT_NON_FINITE');
    expect((e as Error).message).toContain('tensor W');
    expect((e as Error).message).toContain('NaN at [37, 29]');
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('aborting a quantization (Ctrl-C)', () => {
  it('stops between pieces, rejects with the reason, and leaves no scratch file or partial output', async () => {
    for (const when of ['quantizing', 'saving'] as const) {
      const dir = await tempDir();
      const ac = new AbortController();
      const reason = new Error('interrupted');
      let weightsDone = 0;
      const e = await quantizeModelFile(phi4, join(dir, 'model.onnx'), {
        scheme: 'int4',
        threads: 2,
        pieceBytes: TINY_PIECE,
        onProgress: () => {
          if (when === 'quantizing' && ++weightsDone === 2) ac.abort(reason);
        },
        onSaveProgress: (p) => {
          if (when === 'saving' && p.tensors === 3) ac.abort(reason);
        },
        signal: ac.signal,
      }).catch((x: unknown) => x);
      expect(e).toBe(reason);
      expect(await readdir(dir)).toEqual([]);
      // Work stops at the next piece: at most the pieces already in flight finish (the model has 11 weights).
      if (when === 'quantizing') expect(weightsDone).toBeLessThan(5);
    }
  });
});

describe('scratch files of killed runs', () => {
  it('are removed when their process is gone; a running process keeps its own', async () => {
    const dir = await tempDir();
    // A process that has exited: its id is free (a scratch file it left was never cleaned).
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    const stale = `.model.onnx.quantized.tmp-${gone}-0123abcd`;
    const live = `.model.onnx.quantized.tmp-${process.pid}-89abcdef`;
    const other = '.other.onnx.quantized.tmp-1-00000000';
    for (const f of [stale, live, other]) await writeFile(join(dir, f), 'x');
    await quantizeModelFile(phi4, join(dir, 'model.onnx'), { scheme: 'int4', threads: 0 });
    expect((await readdir(dir)).sort()).toEqual([live, other, 'model.onnx', 'model.onnx.data'].sort());
  });
});

describe('readWeightRows', () => {
  it('reads bands of rows of [N, K] and [K, N] weights, external or inline, equal to slicing the whole', async () => {
    const [K, N] = [24, 10];
    const data = randomMatrix(5, K, N);
    const path = join(await tempDir(), 'w.onnx');
    await saveModel(matmulModel({ K, N, w: data }), path, { sizeThreshold: 0 });
    const external = (await loadModel(path)).graph.initializer('W')!;
    expect(external.source.kind).toBe('external');
    const inline = Tensor.fromFloat32('W', [K, N], data);
    for (const tensor of [external, inline]) {
      // As [K, N] (a MatMul's B): row n of the quantizer is column n.
      const kn = await readWeightRows({ tensor, K, N, layout: 'kn' }, { n0: 3, n1: 7 });
      const want = new Float32Array(K * 4);
      for (let k = 0; k < K; k++) for (let j = 0; j < 4; j++) want[k * 4 + j] = data[k * N + 3 + j];
      expect(new Float32Array(kn.buffer, kn.byteOffset, kn.byteLength / 4)).toEqual(want);
      // The same bytes seen as [N', K'] = rows of 10 values: rows 5..9 are contiguous.
      const nk = await readWeightRows({ tensor, K: N, N: K, layout: 'nk' }, { n0: 5, n1: 9 });
      expect(new Float32Array(nk.buffer, nk.byteOffset, nk.byteLength / 4)).toEqual(data.slice(5 * N, 9 * N));
    }
  });

  it('reads external data and bands into the buffer it is given (the pool reuses them), with the same bytes', async () => {
    const [K, N] = [24, 10];
    const data = randomMatrix(6, K, N);
    const path = join(await tempDir(), 'w.onnx');
    await saveModel(matmulModel({ K, N, w: data }), path, { sizeThreshold: 0 });
    const external = (await loadModel(path)).graph.initializer('W')!;
    for (const tensor of [external, Tensor.fromFloat32('W', [K, N], data)]) {
      for (const [layout, band] of [['kn', { n0: 3, n1: 7 }], ['nk', { n0: 2, n1: 5 }], ['kn', { n0: 0, n1: N }]] as const) {
        const [k, n] = layout === 'kn' ? [K, N] : [N, K];
        const given: Uint8Array[] = [];
        // A reused buffer is bigger than asked for and holds old bytes; the result is a view of its start.
        const alloc = (len: number) => {
          const b = new Uint8Array(len + 64).fill(0xee).subarray(0, len);
          given.push(b);
          return b;
        };
        const got = await readWeightRows({ tensor, K: k, N: n, layout }, band, alloc);
        expect(got, `${layout} ${band.n0}..${band.n1}`).toEqual(await readWeightRows({ tensor, K: k, N: n, layout }, band));
        const inlineWhole = tensor.source.kind !== 'external' && band.n1 === n && band.n0 === 0;
        expect(given).toHaveLength(inlineWhole ? 0 : 1);
        if (!inlineWhole) expect(got.buffer).toBe(given[0].buffer);
      }
    }
  });

  it('refuses to read bands from a data file that became a symlink out of the model folder after loading', async () => {
    const [K, N] = [24, 10];
    const dir = await tempDir();
    const path = join(dir, 'w.onnx');
    await saveModel(matmulModel({ K, N, w: randomMatrix(5, K, N) }), path, { sizeThreshold: 0 });
    const tensor = (await loadModel(path)).graph.initializer('W')!;
    const outside = join(await tempDir(), 'elsewhere.bin');
    await copyFile(`${path}.data`, outside);
    await rm(`${path}.data`);
    await symlink(outside, `${path}.data`);
    for (const [layout, band] of [['kn', { n0: 3, n1: 7 }], ['nk', { n0: 2, n1: 5 }], ['kn', { n0: 0, n1: N }]] as const) {
      const e = await readWeightRows({ tensor, K, N, layout }, band).catch((err: unknown) => err);
      expect(isPhiForgeError(e) && e.code, `${layout} ${band.n0}..${band.n1}`).toBe('ONNX_EXTERNAL_ESCAPE');
    }
  });

  it('cuts weights into bands by bytes; reads [K, N] weights up to 4 pieces and computed (lazy) weights whole', () => {
    const t = Tensor.fromFloat32('W', [30, 100], new Float32Array(3000)); // 12,000 bytes
    const bands = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28].map((n0) => ({ n0, n1: n0 + 2 }));
    expect(rowBands({ tensor: t, K: 100, N: 30, layout: 'nk' }, 1000)).toEqual(bands);
    expect(rowBands({ tensor: t, K: 100, N: 30, layout: 'nk' }, 1)).toHaveLength(30);
    // [K, N]: a band of columns costs K reads, so up to 4 pieces the weight is read whole.
    expect(rowBands({ tensor: t, K: 100, N: 30, layout: 'kn' }, 1000)).toEqual(bands);
    expect(rowBands({ tensor: t, K: 100, N: 30, layout: 'kn' }, 3000)).toEqual([{ n0: 0, n1: 30 }]);
    expect(rowBands({ tensor: t, K: 100, N: 30, layout: 'nk' }, 3000)).toHaveLength(5);
    const lazy = Tensor.lazy('W', t.dataType, t.dims, () => new Uint8Array(12000));
    expect(rowBands({ tensor: lazy, K: 100, N: 30, layout: 'nk' }, 1000)).toEqual([{ n0: 0, n1: 30 }]);
  });
});
