// loadModel/saveModel: external data layout (aligned, smallest first, subgraph tensors included), streaming of lazy
// tensors, in-place saves, determinism, crash safety, size limits — checked by reading the files back and by
// running the saved model in onnxruntime-node.
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readFile, readdir, realpath, rename, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeModel, encodeModel } from '../../src/onnx/codec.js';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph, Model, Tensor, attr, tensorType } from '../../src/onnx/ir.js';
import { loadModel, saveModel, type SaveProgress } from '../../src/onnx/model-file.js';
import { OnnxError } from '../../src/util/errors.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'phi-forge-model-file-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
let n = 0;
const freshDir = () => join(root, `case-${n++}`);

const fill = (len: number, f: (i: number) => number) => Float32Array.from({ length: len }, (_, i) => f(i));
const X = fill(256, (i) => ((i % 7) - 3) / 10);
const C = fill(256, (i) => i / 256);
const S = fill(256, (i) => 0.5 + (i % 3) / 4);
const W1 = fill(256 * 1024, (i) => ((((i >> 10) * 31 + (i & 1023) * 17) % 23) - 11) / 256);
const W2 = fill(1024 * 8, (i) => ((((i >> 3) * 13 + (i & 7) * 5) % 19) - 9) / 64);
const B = fill(8, (i) => i / 8);

/**
 *   x[1,256] ─Add(Constant C[256])─ x2 ─If(cond)─ then: Mul(x2, S[256] in the subgraph)  else: Identity ─ z
 *   z ─MatMul(W1[256,1024], 1 MiB)─ MatMul(W2[1024,8], lazy)─ Add(b[8]) ─ y[1,8]
 * Tensors ≥ 1 KiB: W1, W2, S (subgraph initializer) go to the data file; b and C (a Constant node's value, which
 * onnxruntime's shape inference may read before external data) stay inline.
 */
function buildModel(produced?: { count: number }): Model {
  const F = DataType.FLOAT;
  const g = new Graph('main');
  g.inputs.push({ name: 'x', type: tensorType(F, [1, 256]) }, { name: 'cond', type: tensorType(DataType.BOOL, []) });
  g.outputs.push({ name: 'y', type: tensorType(F, [1, 8]) });
  g.addInitializer(Tensor.fromFloat32('W1', [256, 1024], W1));
  g.addInitializer(
    Tensor.lazy('W2', F, [1024, 8], () => {
      if (produced) produced.count++;
      return new Uint8Array(W2.slice().buffer);
    }),
  );
  g.addInitializer(Tensor.fromFloat32('b', [8], B));
  g.addInitializer(new Tensor('labels', DataType.STRING, [2], { kind: 'strings', values: [new Uint8Array(2000), new Uint8Array([65])] }));
  g.addNode({ opType: 'Constant', name: 'const_c', inputs: [], outputs: ['c'], attributes: [attr.tensor('value', Tensor.fromFloat32('C', [256], C))] });
  g.addNode({ opType: 'Add', inputs: ['x', 'c'], outputs: ['x2'] });
  const thenG = new Graph('then');
  thenG.addInitializer(Tensor.fromFloat32('S', [256], S));
  thenG.outputs.push({ name: 'zt', type: tensorType(F, [1, 256]) });
  thenG.addNode({ opType: 'Mul', inputs: ['x2', 'S'], outputs: ['zt'] });
  const elseG = new Graph('else');
  elseG.outputs.push({ name: 'ze', type: tensorType(F, [1, 256]) });
  elseG.addNode({ opType: 'Identity', inputs: ['x2'], outputs: ['ze'] });
  g.addNode({ opType: 'If', inputs: ['cond'], outputs: ['z'], attributes: [attr.graph('then_branch', thenG), attr.graph('else_branch', elseG)] });
  g.addNode({ opType: 'MatMul', inputs: ['z', 'W1'], outputs: ['h'] });
  g.addNode({ opType: 'MatMul', inputs: ['h', 'W2'], outputs: ['hw'] });
  g.addNode({ opType: 'Add', inputs: ['hw', 'b'], outputs: ['y'] });
  return new Model(g, [{ domain: '', version: 21 }]);
}

function expectedY(cond: boolean): number[] {
  const z = Array.from(X, (x, i) => (x + C[i]) * (cond ? S[i] : 1));
  const h = Array.from({ length: 1024 }, (_, j) => z.reduce((s, v, i) => s + v * W1[i * 1024 + j], 0));
  return Array.from({ length: 8 }, (_, k) => h.reduce((s, v, j) => s + v * W2[j * 8 + k], 0) + B[k]);
}

async function runSaved(path: string, cond: boolean): Promise<number[]> {
  const session = await ort.InferenceSession.create(path, { logSeverityLevel: 3 });
  try {
    const out = await session.run({
      x: new ort.Tensor('float32', X, [1, 256]),
      cond: new ort.Tensor('bool', new Uint8Array([cond ? 1 : 0]), []),
    });
    return [...(out.y.data as Float32Array)];
  } finally {
    await session.release();
  }
}

/** Byte comparison: vitest's toEqual walks typed arrays element by element, slow for a 1 MiB tensor. */
function expectFloats(bytes: Uint8Array, want: Float32Array): void {
  expect(Buffer.compare(Buffer.from(bytes), Buffer.from(want.buffer, want.byteOffset, want.byteLength))).toBe(0);
}

function tensorsByName(m: Model): Map<string, Tensor> {
  return new Map([...m.allTensors()].map((t) => [t.name, t]));
}

async function expectOnnxErrorAsync(p: Promise<unknown>, code: string): Promise<OnnxError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(OnnxError);
  expect((e as OnnxError).code).toBe(code);
  return e as OnnxError;
}

describe('saveModel with external data', () => {
  let dir: string;
  let file: string;
  const progress: SaveProgress[] = [];
  const produced = { count: 0 };
  let model: Model;

  beforeAll(async () => {
    dir = freshDir();
    file = join(dir, 'model.onnx');
    model = buildModel(produced);
  });

  it('writes large tensors (also in subgraphs) smallest first at aligned offsets, Constant values inline', async () => {
    const r = await saveModel(model, file, { onProgress: (p) => progress.push(p) });
    expect(r).toMatchObject({ path: file, dataPath: join(dir, 'model.onnx.data'), externalTensors: 3, inlineTensors: 3 });
    expect(produced.count).toBe(1);
    const loaded = await loadModel(file);
    const ext = (name: string) => tensorsByName(loaded).get(name)!.source;
    // S (1 KiB), W2 (32 KiB) at 16-byte alignment; W1 (1 MiB) at a 64 KiB boundary.
    expect(ext('C').kind).toBe('inline');
    expect(ext('S')).toMatchObject({ kind: 'external', location: 'model.onnx.data', offset: 0, length: 1024 });
    expect(ext('W2')).toMatchObject({ kind: 'external', offset: 1024, length: 32768 });
    expect(ext('W1')).toMatchObject({ kind: 'external', offset: 65536, length: 1 << 20 });
    expect(ext('b').kind).toBe('inline');
    expect(ext('labels').kind).toBe('strings');
    expect((await stat(r.dataPath!)).size).toBe(65536 + (1 << 20));
    expect(r.dataBytes).toBe(65536 + (1 << 20));
    expect(r.protobufBytes).toBe((await stat(file)).size);
    expect(r.protobufBytes).toBeLessThan(4096 + 2000 + 1024);
    // Read back by offset: the same values.
    const byName = tensorsByName(loaded);
    expectFloats(await byName.get('W1')!.bytes(), W1);
    expectFloats(await byName.get('W2')!.bytes(), W2);
    expectFloats(await byName.get('S')!.bytes(), S);
  });

  it('reports progress per tensor, ending at the totals', () => {
    expect(progress.map((p) => p.tensor)).toEqual(['S', 'W2', 'W1']);
    expect(progress.map((p) => p.tensors)).toEqual([1, 2, 3]);
    expect(progress.at(-1)).toMatchObject({ tensors: 3, totalTensors: 3, bytes: 1024 + 32768 + (1 << 20), totalBytes: 1024 + 32768 + (1 << 20) });
  });

  it('the saved pair runs in onnxruntime and gives the hand-computed output', async () => {
    for (const cond of [true, false]) {
      const got = await runSaved(file, cond);
      const want = expectedY(cond);
      got.forEach((v, k) => expect(Math.abs(v - want[k])).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(want[k]))));
    }
  });

  it('does not change the model it saves', () => {
    const fresh = buildModel();
    const describe = (m: Model) => [...m.allTensors()].map((t) => [t.name, t.source.kind, t.dims.join('x')].join(':'));
    expect(describe(model)).toEqual(describe(fresh));
    expect(model.graph.initializer('W1')!.source.kind).toBe('inline');
    expect(model.graph.initializer('W2')!.source.kind).toBe('lazy');
  });

  it('is deterministic: the same model saved twice gives byte-identical files', async () => {
    const other = freshDir();
    await saveModel(buildModel(), join(other, 'model.onnx'));
    expect(Buffer.compare(await readFile(join(other, 'model.onnx')), await readFile(file))).toBe(0);
    expect(Buffer.compare(await readFile(join(other, 'model.onnx.data')), await readFile(join(dir, 'model.onnx.data')))).toBe(0);
  });

  it('saves over its own files (in place), also when the layout changes', async () => {
    const loaded = await loadModel(file);
    // A new 1.5 KiB tensor sorts before W2 and moves it and W1: each must still be read from the old layout.
    loaded.graph.addInitializer(Tensor.fromFloat32('extra', [384], fill(384, (i) => -i)));
    await saveModel(loaded, file);
    const again = await loadModel(file);
    const byName = tensorsByName(again);
    expect(byName.get('W2')!.source).toMatchObject({ offset: 2560 });
    expectFloats(await byName.get('W1')!.bytes(), W1);
    expectFloats(await byName.get('W2')!.bytes(), W2);
    expectFloats(await byName.get('extra')!.bytes(), fill(384, (i) => -i));
    expect(await runSaved(file, false)).toHaveLength(8);
    expect((await readdir(dir)).sort()).toEqual(['model.onnx', 'model.onnx.data']);
  });
});

describe('saveModel options and failures', () => {
  it('externalData: false keeps every tensor inline (reading lazy and external ones)', async () => {
    const src = freshDir();
    await saveModel(buildModel(), join(src, 'a.onnx'));
    const external = await loadModel(join(src, 'a.onnx'));
    const dir = freshDir();
    const r = await saveModel(external, join(dir, 'b.onnx'), { externalData: false });
    expect(r.dataPath).toBeUndefined();
    expect(await readdir(dir)).toEqual(['b.onnx']);
    const inline = await loadModel(join(dir, 'b.onnx'));
    expect([...inline.allTensors()].every((t) => t.source.kind === 'inline' || t.source.kind === 'strings')).toBe(true);
    expectFloats(await inline.graph.initializer('W2')!.bytes(), W2);
    const want = expectedY(true);
    (await runSaved(join(dir, 'b.onnx'), true)).forEach((v, k) => expect(Math.abs(v - want[k])).toBeLessThan(1e-4 * (1 + Math.abs(want[k]))));
  });

  it('a custom data file name and size threshold', async () => {
    const dir = freshDir();
    const r = await saveModel(buildModel(), join(dir, 'm.onnx'), { externalData: 'weights.bin', sizeThreshold: 4096 });
    expect(r.externalTensors).toBe(2);
    const m = await loadModel(join(dir, 'm.onnx'));
    expect(m.graph.initializer('W1')!.source).toMatchObject({ location: 'weights.bin', path: join(dir, 'weights.bin') });
    expect(tensorsByName(m).get('C')!.source.kind).toBe('inline');
    await expectOnnxErrorAsync(saveModel(buildModel(), join(dir, 'x.onnx'), { externalData: '../up.bin' }), 'ONNX_EXTERNAL_LOCATION');
  });

  it('a tensor that fails to produce its bytes leaves no model, no data file and no temp files', async () => {
    const dir = freshDir();
    const m = buildModel();
    m.graph.replaceInitializer(
      Tensor.lazy('W2', DataType.FLOAT, [1024, 8], () => {
        throw new Error('checkpoint read failed');
      }),
    );
    await expect(saveModel(m, join(dir, 'model.onnx'))).rejects.toThrow('checkpoint read failed');
    expect(existsSync(dir) ? await readdir(dir) : []).toEqual([]);
  });

  it('makes the next lazy tensor while writing one: same bytes, producers in layout order, a late failure still fails the save', async () => {
    const made: string[] = [];
    const lazyModel = (fail?: string) => {
      const g = new Graph('main');
      for (const [name, n] of [['c', 3000], ['a', 1000], ['b', 2000]] as const) {
        g.addInitializer(
          Tensor.lazy(name, DataType.UINT8, [n], () => {
            made.push(name);
            if (name === fail) throw new Error(`${name} failed`);
            return Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) & 0xff);
          }),
        );
      }
      return new Model(g);
    };
    const dir = freshDir();
    await saveModel(lazyModel(), join(dir, 'lazy.onnx'), { sizeThreshold: 0 });
    expect(made).toEqual(['a', 'b', 'c']); // smallest first, each once
    const m = lazyModel();
    const loaded = await loadModel(join(dir, 'lazy.onnx'));
    for (const t of m.graph.initializers) expect(Buffer.compare(Buffer.from(await loaded.graph.initializer(t.name)!.bytes()), Buffer.from(await t.bytes()))).toBe(0);
    const failing = freshDir();
    await expect(saveModel(lazyModel('c'), join(failing, 'lazy.onnx'), { sizeThreshold: 0 })).rejects.toThrow('c failed');
    expect(existsSync(failing) ? await readdir(failing) : []).toEqual([]);
  });

  it('a failed in-place save leaves the previous files working', async () => {
    const dir = freshDir();
    const file = join(dir, 'model.onnx');
    await saveModel(buildModel(), file);
    const before = await readFile(file);
    const m = await loadModel(file);
    m.graph.addInitializer(
      Tensor.lazy('boom', DataType.FLOAT, [1024], () => {
        throw new Error('boom');
      }),
    );
    await expect(saveModel(m, file)).rejects.toThrow('boom');
    expect(Buffer.compare(await readFile(file), before)).toBe(0);
    expect(await runSaved(file, true)).toHaveLength(8);
    expect((await readdir(dir)).sort()).toEqual(['model.onnx', 'model.onnx.data']);
  });

  it('refuses to write a protobuf of 2 GiB or more before reading any tensor', async () => {
    const dir = freshDir();
    const g = new Graph('main');
    g.addInitializer(
      Tensor.lazy('huge', DataType.FLOAT, [2 ** 29 + 1], () => {
        throw new Error('must not be read');
      }),
    );
    const e = await expectOnnxErrorAsync(saveModel(new Model(g), join(dir, 'big.onnx'), { externalData: false }), 'ONNX_PROTOBUF_TOO_LARGE');
    expect(e.message).toContain('2 GiB');
    expect(existsSync(join(dir, 'big.onnx'))).toBe(false);
  });

  it('refuses a model that holds unknown fields unless told to drop them', async () => {
    const m = decodeModel(encodeModel(buildModelWithoutLazy()));
    m.unknownFields = [{ path: 'model.graph.node[0]', fieldNumber: 99, wireType: 0 }];
    const dir = freshDir();
    await expectOnnxErrorAsync(saveModel(m, join(dir, 'u.onnx')), 'ONNX_UNKNOWN_FIELDS');
    expect(existsSync(join(dir, 'u.onnx.data'))).toBe(false);
    await saveModel(m, join(dir, 'u.onnx'), { dropUnknownFields: true });
    expect((await loadModel(join(dir, 'u.onnx'))).unknownFields).toEqual([]);
  });
});

describe('saveModel streaming and Constant nodes', () => {
  /** W2 as a chunked lazy tensor whose pieces (1000 bytes, the last shorter) reuse one buffer. */
  function chunkedW2(counts: { produce: number; pieces: number }, extraBytes = 0): Tensor {
    const bytes = new Uint8Array(W2.buffer);
    const t = Tensor.lazyChunks('W2', DataType.FLOAT, [1024, 8], async function* () {
      const buf = new Uint8Array(1000);
      const total = bytes.byteLength + extraBytes;
      for (let at = 0; at < total; at += buf.byteLength) {
        const n = Math.min(buf.byteLength, total - at);
        buf.fill(0);
        buf.set(bytes.subarray(at, at + n));
        counts.pieces++;
        yield buf.subarray(0, n);
      }
    });
    if (t.source.kind !== 'lazy') throw new Error('not lazy');
    const produce = t.source.produce;
    t.source.produce = () => {
      counts.produce++;
      return produce();
    };
    return t;
  }

  it('writes a chunked lazy tensor piece by piece, without asking for all its bytes at once', async () => {
    const counts = { produce: 0, pieces: 0 };
    const m = buildModel();
    m.graph.replaceInitializer(chunkedW2(counts));
    const dir = freshDir();
    await saveModel(m, join(dir, 'model.onnx'));
    expect(counts).toEqual({ produce: 0, pieces: 33 }); // 32768 bytes in 1000-byte pieces
    const loaded = await loadModel(join(dir, 'model.onnx'));
    expectFloats(await loaded.graph.initializer('W2')!.bytes(), W2);
    const want = expectedY(true);
    (await runSaved(join(dir, 'model.onnx'), true)).forEach((v, k) => expect(Math.abs(v - want[k])).toBeLessThan(1e-4 * (1 + Math.abs(want[k]))));
    // bytes() joins the pieces (copying out of the reused buffer).
    expectFloats(await chunkedW2({ produce: 0, pieces: 0 }).bytes(), W2);
  });

  it('a chunked tensor that yields more or fewer bytes than declared fails and leaves no files', async () => {
    for (const extra of [1000, -1000]) {
      const m = buildModel();
      m.graph.replaceInitializer(chunkedW2({ produce: 0, pieces: 0 }, extra));
      const dir = freshDir();
      await expectOnnxErrorAsync(saveModel(m, join(dir, 'model.onnx')), 'ONNX_TENSOR_SIZE');
      expect(existsSync(dir) ? await readdir(dir) : []).toEqual([]);
    }
  });

  it('keeps Constant values inline even at size threshold 0, so onnxruntime can read them during shape inference', async () => {
    const g = new Graph('main');
    g.inputs.push({ name: 'x', type: tensorType(DataType.FLOAT, [2, 3]) });
    g.outputs.push({ name: 'y', type: tensorType(DataType.FLOAT, [2]) });
    g.addNode({ opType: 'Constant', name: 'axes', inputs: [], outputs: ['axes'], attributes: [attr.tensor('value', Tensor.fromInt64('axes', [1], [1]))] });
    g.addNode({ opType: 'ReduceSum', inputs: ['x', 'axes'], outputs: ['y'], attributes: [attr.int('keepdims', 0)] });
    g.addInitializer(Tensor.fromFloat32('unused', [2], new Float32Array([1, 2])));
    const dir = freshDir();
    const r = await saveModel(new Model(g, [{ domain: '', version: 21 }]), join(dir, 'm.onnx'), { sizeThreshold: 0 });
    expect(r).toMatchObject({ externalTensors: 1, inlineTensors: 1 });
    const loaded = await loadModel(join(dir, 'm.onnx'));
    expect(tensorsByName(loaded).get('axes')!.source.kind).toBe('inline');
    const session = await ort.InferenceSession.create(join(dir, 'm.onnx'), { logSeverityLevel: 3 });
    try {
      const out = await session.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3]) });
      expect([...(out.y.data as Float32Array)]).toEqual([6, 15]);
    } finally {
      await session.release();
    }
  });
});

function buildModelWithoutLazy(): Model {
  const m = buildModel();
  m.graph.replaceInitializer(Tensor.fromFloat32('W2', [1024, 8], W2));
  return m;
}

describe('loadModel', () => {
  it('a truncated .data file fails when the tensor is read, naming the file and the tensor', async () => {
    const dir = freshDir();
    const file = join(dir, 'model.onnx');
    await saveModel(buildModel(), file);
    await truncate(join(dir, 'model.onnx.data'), 100_000);
    const m = await loadModel(file);
    const e = await expectOnnxErrorAsync(m.graph.initializer('W1')!.bytes(), 'ONNX_EXTERNAL_TRUNCATED');
    expect(e.message).toContain(join(dir, 'model.onnx.data'));
    expect(e.message).toContain('tensor W1');
    // Tensors that lie wholly before the cut still read fine.
    expect((await m.graph.initializer('W2')!.bytes()).byteLength).toBe(32768);
  });

  it('a missing .data file fails with the path', async () => {
    const dir = freshDir();
    await saveModel(buildModel(), join(dir, 'model.onnx'));
    await rm(join(dir, 'model.onnx.data'));
    const m = await loadModel(join(dir, 'model.onnx'));
    const e = await expectOnnxErrorAsync(m.graph.initializer('W1')!.bytes(), 'ONNX_EXTERNAL_MISSING');
    expect(e.message).toContain('model.onnx.data');
  });

  it('refuses a protobuf of 2 GiB or more and says to use external data', async () => {
    const dir = freshDir();
    const file = join(dir, 'huge.onnx');
    await saveModel(buildModel(), join(dir, 'ok.onnx'));
    const fh = await open(file, 'w');
    await fh.truncate(2 ** 31); // sparse: no disk space used
    await fh.close();
    const e = await expectOnnxErrorAsync(loadModel(file), 'ONNX_PROTOBUF_TOO_LARGE');
    expect(e.message).toMatch(/external data/);
  });

  it('a missing model or a corrupt one is an OnnxError with the path', async () => {
    const dir = freshDir();
    await expectOnnxErrorAsync(loadModel(join(dir, 'nope.onnx')), 'ONNX_FILE_MISSING');
    await saveModel(buildModel(), join(dir, 'bad.onnx'));
    await writeFile(join(dir, 'bad.onnx'), new Uint8Array([8, 10, 0xff]));
    const e = await expectOnnxErrorAsync(loadModel(join(dir, 'bad.onnx')), 'ONNX_PROTOBUF_INVALID');
    expect(e.message).toContain(join(dir, 'bad.onnx'));
  });

  it('refuses an empty file, and bytes that decode but hold no graph, IR version or opset imports', async () => {
    const dir = freshDir();
    await mkdir(dir, { recursive: true });
    const empty = join(dir, 'empty.onnx');
    await writeFile(empty, new Uint8Array());
    const e = await expectOnnxErrorAsync(loadModel(empty), 'ONNX_NOT_A_MODEL');
    expect(e.message).toContain(`${empty}: is empty`);
    // Field 100 = 1: valid protobuf, nothing of a model (another file type can look like this).
    const other = join(dir, 'other.onnx');
    await writeFile(other, new Uint8Array([0xa0, 0x06, 0x01]));
    expect((await expectOnnxErrorAsync(loadModel(other), 'ONNX_NOT_A_MODEL')).message).toContain(`${other}: is not an ONNX model (no graph, no IR version)`);
    const noOpsets = join(dir, 'no-opsets.onnx');
    await writeFile(noOpsets, encodeModel(new Model(buildModelWithoutLazy().graph, [])));
    expect((await expectOnnxErrorAsync(loadModel(noOpsets), 'ONNX_NOT_A_MODEL')).message).toContain('is not an ONNX model (no opset imports)');
    const noGraph = join(dir, 'no-graph.onnx');
    await writeFile(noGraph, encodeModel(new Model(new Graph(''))));
    expect((await expectOnnxErrorAsync(loadModel(noGraph), 'ONNX_NOT_A_MODEL')).message).toContain('is not an ONNX model (no graph)');
  });
});

describe('external data reached through symlinks', () => {
  /**
   * A saved model in a fresh folder, and a fresh folder outside it. By default x[1,256]·W1 → y: onnxruntime refuses any
   * symlinked data of a subgraph's initializer (onnx's checker), so the onnxruntime cross-checks use a flat graph.
   */
  async function savedModel(opts: { externalData?: string; model?: Model } = {}): Promise<{ dir: string; file: string; outside: string }> {
    const dir = freshDir();
    const outside = freshDir();
    await mkdir(outside, { recursive: true });
    const file = join(dir, 'model.onnx');
    await saveModel(opts.model ?? flatModel(), file, { externalData: opts.externalData });
    return { dir, file, outside };
  }

  function flatModel(): Model {
    const g = new Graph('main');
    g.inputs.push({ name: 'x', type: tensorType(DataType.FLOAT, [1, 256]) });
    g.outputs.push({ name: 'y', type: tensorType(DataType.FLOAT, [1, 1024]) });
    g.addInitializer(Tensor.fromFloat32('W1', [256, 1024], W1));
    g.addNode({ opType: 'MatMul', inputs: ['x', 'W1'], outputs: ['y'] });
    return new Model(g, [{ domain: '', version: 21 }]);
  }

  async function expectRunsInOrt(file: string): Promise<void> {
    const session = await ort.InferenceSession.create(file, { logSeverityLevel: 3 });
    try {
      const y = (await session.run({ x: new ort.Tensor('float32', X, [1, 256]) })).y.data as Float32Array;
      for (const j of [0, 511, 1023]) {
        const want = X.reduce((acc, v, i) => acc + v * W1[i * 1024 + j], 0);
        expect(Math.abs(y[j] - want)).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(want)));
      }
    } finally {
      await session.release();
    }
  }

  it('refuses a data file that is a symlink to a file outside the model folder, naming it (as onnxruntime does)', async () => {
    const { dir, file, outside } = await savedModel();
    await rename(join(dir, 'model.onnx.data'), join(outside, 'secret.bin'));
    await symlink(join(outside, 'secret.bin'), join(dir, 'model.onnx.data'));
    const e = await expectOnnxErrorAsync(loadModel(file), 'ONNX_EXTERNAL_ESCAPE');
    expect(e.message).toContain(join(dir, 'model.onnx.data'));
    expect(e.message).toContain('escapes model directory');
    expect(e.message).toContain(await realpath(join(outside, 'secret.bin')));
    await expect(ort.InferenceSession.create(file, { logSeverityLevel: 4 })).rejects.toThrow(/escapes model directory/);
  });

  it('refuses a location that passes through a symlinked folder pointing outside', async () => {
    const { dir, file, outside } = await savedModel({ externalData: 'weights/model.onnx.data' });
    await rename(join(dir, 'weights'), join(outside, 'weights'));
    await symlink(join(outside, 'weights'), join(dir, 'weights'));
    const e = await expectOnnxErrorAsync(loadModel(file), 'ONNX_EXTERNAL_ESCAPE');
    expect(e.message).toContain(join(dir, 'weights', 'model.onnx.data'));
    expect(e.message).toContain('tensor W1');
  });

  it('checks on every read: a data file swapped for an outside symlink after loading is neither read nor copied', async () => {
    const { dir, file, outside } = await savedModel({ model: buildModelWithoutLazy() });
    const m = await loadModel(file);
    await copyFile(join(dir, 'model.onnx.data'), join(outside, 'same-bytes.bin'));
    await rm(join(dir, 'model.onnx.data'));
    await symlink(join(outside, 'same-bytes.bin'), join(dir, 'model.onnx.data'));
    const e = await expectOnnxErrorAsync(m.graph.initializer('W1')!.bytes(), 'ONNX_EXTERNAL_ESCAPE');
    expect(e.message).toContain('tensor W1');
    const out = freshDir();
    await expectOnnxErrorAsync(saveModel(m, join(out, 'copy.onnx')), 'ONNX_EXTERNAL_ESCAPE');
    expect(existsSync(out) ? await readdir(out) : []).toEqual([]);
  });

  it('follows symlinks that stay inside: a data file linked within the folder, a linked model folder, a hub-cache snapshot', async () => {
    // Data file linked to another file inside the model's folder.
    const a = await savedModel();
    await mkdir(join(a.dir, 'blobs'));
    await rename(join(a.dir, 'model.onnx.data'), join(a.dir, 'blobs', 'abc'));
    await symlink(join('blobs', 'abc'), join(a.dir, 'model.onnx.data'));
    expectFloats(await (await loadModel(a.file)).graph.initializer('W1')!.bytes(), W1);
    await expectRunsInOrt(a.file);

    // The model's folder itself reached through a symlink.
    const linked = join(a.outside, 'linked-model');
    await symlink(a.dir, linked);
    expectFloats(await (await loadModel(join(linked, 'model.onnx'))).graph.initializer('W1')!.bytes(), W1);
    await expectRunsInOrt(join(linked, 'model.onnx'));

    // Hugging Face cache layout: snapshots/<rev>/model.onnx and its data are both links into blobs/, outside the
    // snapshot folder; allowed because the data sits beside the model file's real path (onnxruntime's rule too).
    const hub = freshDir();
    await saveModel(flatModel(), join(hub, 'blobs', 'model.onnx'));
    await rename(join(hub, 'blobs', 'model.onnx'), join(hub, 'blobs', 'etag1'));
    await rename(join(hub, 'blobs', 'model.onnx.data'), join(hub, 'blobs', 'etag2'));
    const snap = join(hub, 'snapshots', 'rev1');
    await mkdir(snap, { recursive: true });
    await symlink(join('..', '..', 'blobs', 'etag1'), join(snap, 'model.onnx'));
    await symlink(join('..', '..', 'blobs', 'etag2'), join(snap, 'model.onnx.data'));
    const m = await loadModel(join(snap, 'model.onnx'));
    expectFloats(await m.graph.initializer('W1')!.bytes(), W1);
    await expectRunsInOrt(join(snap, 'model.onnx'));
    // Copying its tensors into a new model (what quantize does) works too.
    const copy = join(freshDir(), 'copy.onnx');
    await saveModel(m, copy);
    await expectRunsInOrt(copy);
  });
});
