// Offline pre-optimisation of mobile packages: real tiny-phi and stories260K mobile packages built through the CLI,
// optimized with onnxruntime's basic level, checked against the originals (logits through src/runtime), against
// onnxruntime's own raw output (what the clean-up removes), and for byte-identical output across processes.
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Graph } from '../../src/onnx/ir.js';
import { loadModel } from '../../src/onnx/model-file.js';
import { optimizeOffline } from '../../src/package/optimize.js';
import { DecoderSession } from '../../src/runtime/decoder-session.js';
import { getTarget } from '../../src/target/index.js';
import { sharedFixture } from '../helpers/fixtures.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const STORIES = sharedFixture('stories260K/stories260K.bin');

let work: string;
/**
 * Built packages by name (read-only: tests optimize copies). The cpu package is the mobile graph before its
 * offline optimisation (the build's mobile packages are already optimised).
 */
const pkg: Record<string, string> = {};

async function build(recipe: string, name: string): Promise<void> {
  const r = await execa('pnpm', ['pipeline', 'build', recipe, '--target', 'cpu', '--artifacts', join(work, 'artifacts'), '--out', join(work, 'built'), '--json'], {
    cwd: ROOT,
    reject: false,
    env: { CI: 'true' },
  });
  expect(r.exitCode, r.stderr).toBe(0);
  pkg[name] = join(work, 'built', `${name}-cpu`);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'phi-forge-optimize-'));
  await build('tiny-phi', 'tiny-phi');
  if (STORIES) await build(join(ROOT, 'test/recipes/stories260k.json'), 'stories260k');
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** A fresh copy of a built package to optimize in place. */
async function copyOf(name: string, as: string): Promise<string> {
  const dir = join(work, as);
  await cp(pkg[name], dir, { recursive: true });
  return dir;
}

/** Logits of a prefill and three cached decode steps, concatenated. */
async function logitsOf(dir: string): Promise<Float32Array> {
  const s = await DecoderSession.open(dir);
  try {
    const cache = s.newCache();
    const rows = [await s.forward([1, 17, 42, 99, 3, 250], cache)];
    for (const t of [7, 311, 64]) rows.push(await s.forward([t], cache));
    const out = new Float32Array(rows.reduce((n, r) => n + r.logits.length, 0));
    let o = 0;
    for (const r of rows) {
      out.set(r.logits, o);
      o += r.logits.length;
    }
    return out;
  } finally {
    await s.release();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function initializerNames(g: Graph): string[] {
  const out = g.initializers.map((t) => t.name);
  for (const n of g.nodes) for (const s of n.subgraphs()) out.push(...initializerNames(s));
  return out;
}

describe('optimizeOffline (onnxruntime basic level, re-saved in our layout)', () => {
  async function sameLogits(name: string): Promise<void> {
    const dir = await copyOf(name, `${name}-same`);
    const before = await logitsOf(pkg[name]);
    const r = await optimizeOffline(dir, dir, { level: 'basic', target: getTarget('mobile') });
    expect(r.modelFile).toBe('model.onnx');
    expect(r.nodesAfter).toBeLessThan(r.nodesBefore);
    expect(r.introducedOps).toEqual([]);
    expect(maxAbsDiff(before, await logitsOf(dir))).toBeLessThanOrEqual(1e-5);
    const mobile = getTarget('mobile');
    const m = await loadModel(join(dir, 'model.onnx'));
    for (const n of m.graph.allNodes()) expect(mobile.supportsOp(n.domain, n.opType), `${n.domain}.${n.opType}`).toBe(true);
  }

  it('tiny-phi mobile: same logits (1e-5) through src/runtime, fewer nodes, no op the mobile target lacks', () => sameLogits('tiny-phi'));

  it.skipIf(!STORIES)('stories260K mobile: same logits (1e-5) through src/runtime, fewer nodes, no op the mobile target lacks', () =>
    sameLogits('stories260k'),
  );

  it('keeps a tied lm_head weight stored once (onnxruntime alone folds the embedding Reshape into a second copy)', async () => {
    const src = await loadModel(join(pkg['tiny-phi'], 'model.onnx'));
    const gbq = [...src.graph.allNodes()].find((n) => n.opType === 'GatherBlockQuantized')!;
    const reshape = src.graph.producer(gbq.inputs[0])!;
    expect(reshape.opType).toBe('Reshape'); // the tied layout: GatherBlockQuantized reads the lm_head's qweight
    const tied = reshape.inputs[0];
    const srcBytes = (await readFile(join(pkg['tiny-phi'], 'model.onnx.data'))).byteLength;

    // onnxruntime on its own (what optimizeOffline guards against): the data file grows by the folded copy.
    const raw = join(work, 'raw-ort');
    await mkdir(raw, { recursive: true });
    const s = await ort.InferenceSession.create(join(pkg['tiny-phi'], 'model.onnx'), {
      graphOptimizationLevel: 'basic',
      optimizedModelFilePath: join(raw, 'model.onnx'),
      logSeverityLevel: 3,
      extra: { session: { optimized_model_external_initializers_file_name: 'model.onnx.data', optimized_model_external_initializers_min_size_in_bytes: '1024' } },
    });
    await s.release();
    const rawModel = await loadModel(join(raw, 'model.onnx'));
    const tiedBytes = src.graph.initializer(tied)!.byteLength;
    expect((await readFile(join(raw, 'model.onnx.data'))).byteLength).toBeGreaterThanOrEqual(srcBytes + tiedBytes);
    expect(rawModel.opsetImports.length).toBeGreaterThan(2); // it also imports every domain it knows

    const dir = await copyOf('tiny-phi', 'tiny-phi-tied');
    const r = await optimizeOffline(dir, dir, { level: 'basic' });
    expect(r.pinned).toContain(tied);
    expect(r.tensorBytesAfter).toBe(r.tensorBytesBefore);
    const opt = await loadModel(join(dir, 'model.onnx'));
    // Still one qweight, read by the lm_head MatMulNBits and (through the Reshape) by GatherBlockQuantized.
    expect(opt.graph.consumerMap().get(tied)?.map((n) => n.opType).sort()).toEqual(['MatMulNBits', 'Reshape']);
    expect((await readFile(join(dir, 'model.onnx.data'))).byteLength).toBeLessThanOrEqual(srcBytes);
  });

  it('writes our layout: one model.onnx.data, no pinned inputs, no duplicate initializers, only the opsets nodes use', async () => {
    const dir = await copyOf('tiny-phi', 'tiny-phi-layout');
    const filesBefore = (await readdir(dir)).sort();
    const r = await optimizeOffline(dir, dir, { level: 'basic' });
    expect((await readdir(dir)).sort()).toEqual(filesBefore); // model.onnx and model.onnx.data replaced, nothing added
    const m = await loadModel(join(dir, 'model.onnx'));
    expect(r.pinned.length).toBeGreaterThan(0);
    for (const p of r.pinned) expect(m.graph.inputs.map((i) => i.name)).not.toContain(p);
    expect(m.graph.inputs.map((i) => i.name).sort()).toEqual(
      (await loadModel(join(pkg['tiny-phi'], 'model.onnx'))).graph.inputs.map((i) => i.name).sort(),
    );
    const names = initializerNames(m.graph);
    expect(new Set(names).size).toBe(names.length);
    expect(m.opsetImports.map((o) => o.domain).sort()).toEqual(['', 'com.microsoft']);
    const locations = new Set<string>();
    for (const t of m.allTensors()) {
      if (t.source.kind === 'external') locations.add(t.source.location);
      else expect(t.byteLength, t.name).toBeLessThan(1024);
    }
    expect([...locations]).toEqual(['model.onnx.data']);
    // The LongRoPE If survives with its rotary tables (onnxruntime moved them into the branches).
    const iff = [...m.graph.allNodes()].find((n) => n.opType === 'If')!;
    expect([...iff.subgraphs()].map((g) => g.initializers.length)).toEqual([2, 2]);
  });

  it('gives byte-identical files from two runs in separate processes', async () => {
    const script = join(work, 'run-optimize.mts');
    await writeFile(
      script,
      `import { optimizeOffline } from ${JSON.stringify(join(ROOT, 'src/package/optimize.ts'))};\n` +
        `await optimizeOffline(process.argv[2], process.argv[3], { level: 'basic' });\n`,
    );
    const outs = [join(work, 'det-1'), join(work, 'det-2')];
    for (const out of outs) {
      const r = await execa(process.execPath, ['--import', 'tsx', script, pkg['tiny-phi'], out], { cwd: ROOT, reject: false });
      expect(r.exitCode, r.stderr).toBe(0);
    }
    for (const f of ['model.onnx', 'model.onnx.data']) {
      const [a, b] = await Promise.all(outs.map((o) => readFile(join(o, f))));
      expect(a.equals(b), f).toBe(true);
    }
    // Only the model files are written to a fresh output folder.
    expect((await readdir(outs[0])).sort()).toEqual(['model.onnx', 'model.onnx.data']);
  });

  it('refuses a result with ops the given target cannot run, and levels other than basic', async () => {
    const dir = await copyOf('tiny-phi', 'tiny-phi-dml');
    await expect(optimizeOffline(dir, join(work, 'dml-out'), { level: 'basic', target: getTarget('dml') })).rejects.toMatchObject({
      code: 'OPTIMIZE_UNSUPPORTED_OP',
      message: expect.stringMatching(/uses If, com\.microsoft\.GatherBlockQuantized, which the dml target does not run/),
    });
    await expect(optimizeOffline(dir, dir, { level: 'all' as 'basic' })).rejects.toMatchObject({ code: 'OPTIMIZE_LEVEL' });
    await expect(optimizeOffline(join(work, 'no-such-package'), dir)).rejects.toMatchObject({ code: 'ONNX_FILE_MISSING' });
  });
});
