// Execution-provider checks of packages: small runnable cpu/cuda/dml packages (test/helpers/package.ts) checked as
// built and after edits that break one rule each; then tiny-phi built through the CLI for cpu, cuda and dml, where
// the fp16 cuda/dml graphs' logits are compared with the fp32 cpu graph of the same checkpoint on the same tokens.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/dtype.js';
import { attr, Graph, Node, type Model } from '../../src/onnx/ir.js';
import { loadModel, saveModel } from '../../src/onnx/model-file.js';
import { Tensor } from '../../src/onnx/tensor.js';
import { checkPackageForTarget } from '../../src/package/ep-check.js';
import { DecoderSession } from '../../src/runtime/decoder-session.js';
import { getTarget, type TargetId } from '../../src/target/index.js';
import { cleanTempDirs, tempDir, writeRunnablePackage } from '../helpers/package.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

let work: string;
beforeAll(async () => {
  work = await tempDir('phi-forge-ep-check-');
});
afterAll(cleanTempDirs);

let seq = 0;
async function runnable(target: TargetId): Promise<string> {
  const dir = await writeRunnablePackage(join(work, `${target}-${++seq}`), { target });
  // The helper leaves an empty raw_data beside the external-data entries (onnxruntime ignores it, our codec refuses
  // it as ambiguous): drop it so the package reads with loadModel.
  const { onnx } = onnxProto;
  const m = onnx.ModelProto.decode(await readFile(join(dir, 'model.onnx')));
  for (const t of m.graph!.initializer!) if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) t.rawData = null as unknown as Uint8Array;
  await writeFile(join(dir, 'model.onnx'), onnx.ModelProto.encode(m).finish());
  return dir;
}

/** Loads the package's model, lets `edit` change it, saves it back in place. */
async function editModel(dir: string, edit: (m: Model) => void): Promise<void> {
  const m = await loadModel(join(dir, 'model.onnx'));
  edit(m);
  await saveModel(m, join(dir, 'model.onnx'));
}

type GenaiJson = { model: { vocab_size?: number; decoder: Record<string, unknown> & { inputs: Record<string, string>; session_options: { provider_options: unknown[] } } } };

async function editGenai(dir: string, edit: (g: GenaiJson) => void): Promise<void> {
  const p = join(dir, 'genai_config.json');
  const g = JSON.parse(await readFile(p, 'utf8')) as GenaiJson;
  edit(g);
  await writeFile(p, JSON.stringify(g, null, 2));
}

const PROVIDERS: Record<TargetId, unknown[]> = { cpu: [], mobile: [], cuda: [{ cuda: { enable_cuda_graph: '0' } }], dml: [{ dml: {} }] };
const selectProvider = (t: TargetId) => (g: GenaiJson) => {
  g.model.decoder.session_options.provider_options = PROVIDERS[t];
};

describe('checkPackageForTarget: packages as built', () => {
  it.each(['cpu', 'mobile', 'cuda', 'dml'] as const)('passes a runnable %s package and runs a finite forward on the CPU EP', async (t) => {
    const dir = await runnable(t);
    const r = await checkPackageForTarget(dir, getTarget(t));
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.forward).toMatchObject({ status: 'ok', positions: 5, vocabSize: 40 });
    expect(r.executionProvider).toBe({ cpu: 'CPUExecutionProvider', mobile: 'CPUExecutionProvider', cuda: 'CUDAExecutionProvider', dml: 'DmlExecutionProvider' }[t]);
  });
});

describe('checkPackageForTarget: one broken rule at a time', () => {
  it('names ops DirectML cannot run, inside If branches too', async () => {
    const dir = await runnable('dml');
    await editModel(dir, (m) => {
      // If(mask_sum > 1) with a Gelu (opset 20, no DML kernel) in each branch, reading x0 from the outer scope.
      const branch = (name: string) => {
        const g = new Graph(name);
        g.addNode(new Node({ opType: 'Gelu', name: `/${name}/Gelu`, inputs: ['x0'], outputs: [`${name}_y`] }));
        g.outputs.push({ name: `${name}_y`, type: { kind: 'tensor', elemType: DataType.FLOAT16 } });
        return g;
      };
      m.graph.addNode(new Node({ opType: 'Greater', name: '/cond/Greater', inputs: ['mask_sum', 'one'], outputs: ['cond'] }));
      m.graph.addNode(
        new Node({ opType: 'If', name: '/cond/If', inputs: ['cond'], outputs: ['unused'], attributes: [attr.graph('then_branch', branch('then')), attr.graph('else_branch', branch('else'))] }),
      );
    });
    const r = await checkPackageForTarget(dir, getTarget('dml'));
    expect(r.problems).toEqual([
      'op Gelu (2 nodes, e.g. /then/Gelu) cannot run on DmlExecutionProvider: DirectML has no kernel for the opset-20 Gelu (use com.microsoft Gelu or FastGelu)',
      'op If (1 node, e.g. /cond/If) cannot run on DmlExecutionProvider: onnxruntime-genai captures the DML graph, and graph capture cannot replay control flow',
    ]);
    // The same graph is fine for the CPU EP, which also runs it.
    await editGenai(dir, selectProvider('cpu'));
    await editGenai(dir, (g) => {
      delete g.model.decoder.inputs.position_ids;
    });
    const asCpu = await checkPackageForTarget(dir, getTarget('cpu'), { activationDtype: DataType.FLOAT16 });
    expect(asCpu.problems.filter((p) => p.startsWith('op '))).toEqual([]);
  });

  it('names a GatherBlockQuantized on dml (no DML kernel) — structural check without a forward', async () => {
    const dir = await runnable('dml');
    await editModel(dir, (m) => {
      const gather = [...m.graph.allNodes()].find((n) => n.opType === 'Gather' && n.inputs[0] === 'embed')!;
      gather.opType = 'GatherBlockQuantized';
      gather.domain = 'com.microsoft';
    });
    const r = await checkPackageForTarget(dir, getTarget('dml'), { forward: false });
    expect(r.problems).toEqual([
      'op com.microsoft.GatherBlockQuantized (1 node, e.g. x0/node) cannot run on DmlExecutionProvider: no com.microsoft.GatherBlockQuantized kernel on this execution provider',
    ]);
    expect(r.forward).toEqual({ status: 'skipped', reason: 'forward not requested' });
    // cuda has the kernel: the same op is no problem there.
    expect(getTarget('cuda').supportsOp('com.microsoft', 'GatherBlockQuantized')).toBe(true);
  });

  it('a cuda package with fp32 activations: GroupQueryAttention has no float32 CUDA kernel, the I/O types are named', async () => {
    const dir = await runnable('cpu');
    await editGenai(dir, selectProvider('cuda'));
    const r = await checkPackageForTarget(dir, getTarget('cuda'));
    expect(r.problems).toEqual([
      'op com.microsoft.GroupQueryAttention (2 nodes, e.g. l0/attn/node) has no float32 kernel on CUDAExecutionProvider (it takes bfloat16, float16)',
      'logits, past_key_values.0.key, past_key_values.1.key, past_key_values.0.value, ... (9) are float32; this cuda package must use float16 activations',
    ]);
    expect(r.forward.status).toBe('ok'); // dtypes do not stop the CPU EP from running it
  });

  it('a package whose providers are not the target’s', async () => {
    const dir = await runnable('cuda');
    await editGenai(dir, selectProvider('dml'));
    const r = await checkPackageForTarget(dir, getTarget('cuda'));
    expect(r.problems).toEqual(['genai_config.json selects provider [dml]; a cuda package selects [cuda] (model.decoder.session_options.provider_options)']);
  });

  it('position_ids exactly when the layout needs it (dml), and named in genai_config.json', async () => {
    const packed = await runnable('cuda');
    await editGenai(packed, selectProvider('dml'));
    const asDml = await checkPackageForTarget(packed, getTarget('dml'));
    expect(asDml.problems).toEqual(['the dml layout feeds RotaryEmbedding from a position_ids input, but the graph has none']);
    expect(asDml.forward).toMatchObject({ status: 'skipped' });

    const dml = await runnable('dml');
    await editGenai(dml, selectProvider('cuda'));
    const asCuda = await checkPackageForTarget(dml, getTarget('cuda'));
    expect(asCuda.problems).toEqual(['the cuda layout computes positions inside the graph, but it has a position_ids input']);

    const unnamed = await runnable('dml');
    await editGenai(unnamed, (g) => {
      delete g.model.decoder.inputs.position_ids;
    });
    const r = await checkPackageForTarget(unnamed, getTarget('dml'));
    expect(r.problems).toEqual([
      'the graph has a position_ids input that genai_config.json does not name (model.decoder.inputs.position_ids)',
    ]);
  });

  it('graph inputs, outputs and cache shapes must be what genai_config.json names', async () => {
    const dir = await runnable('cpu');
    await editGenai(dir, (g) => {
      g.model.decoder.inputs.past_key_names = 'past.%d.key';
      g.model.decoder.num_key_value_heads = 4;
      g.model.vocab_size = 41;
    });
    const r = await checkPackageForTarget(dir, getTarget('cpu'));
    expect(r.problems).toEqual([
      'inputs genai_config.json names are missing from the graph: past.0.key, past.1.key',
      'graph inputs onnxruntime-genai does not feed: past_key_values.0.key, past_key_values.1.key',
      ...['past_key_values.0.value', 'past_key_values.1.value', 'present.0.key', 'present.1.key', 'present.0.value', 'present.1.value'].map(
        (n) => `${n} has 2 kv heads; genai_config.json says num_key_value_heads 4`,
      ),
      'logits has 40 columns; genai_config.json says vocab_size 41',
    ]);
    expect(r.forward).toMatchObject({ status: 'skipped' });
  });

  it('fails a forward with NaN logits', async () => {
    const dir = await runnable('cpu');
    await editModel(dir, (m) => {
      const e = m.graph.initializer('embed')!;
      m.graph.replaceInitializer(new Tensor('embed', DataType.FLOAT, e.dims, { kind: 'inline', bytes: new Uint8Array(new Float32Array(e.size).fill(Number.NaN).buffer) }));
    });
    const r = await checkPackageForTarget(dir, getTarget('cpu'));
    expect(r.ok).toBe(false);
    expect(r.forward).toEqual({ status: 'failed', error: '160 of 160 prefill logits are NaN or infinite' });
    expect(r.problems).toEqual(['forward on the CPU EP: 160 of 160 prefill logits are NaN or infinite']);
  });

  it('skips (does not fail) the forward of a cuda package using an op the CPU EP has no kernel for', async () => {
    const dir = await runnable('cuda');
    await editModel(dir, (m) => {
      // x0 → BiasAdd(x0, 0, x0) → the first layer: com.microsoft BiasAdd has CUDA and DML kernels, none on CPU.
      m.graph.addInitializer(new Tensor('zero_bias', DataType.FLOAT16, [32], { kind: 'inline', bytes: new Uint8Array(64) }));
      for (const n of m.graph.nodes) n.inputs = n.inputs.map((v) => (v === 'x0' ? 'x0b' : v));
      m.graph.addNode(new Node({ opType: 'BiasAdd', domain: 'com.microsoft', name: '/bias/BiasAdd', inputs: ['x0', 'zero_bias', 'x0'], outputs: ['x0b'] }));
      m.graph.topologicalSort();
    });
    const r = await checkPackageForTarget(dir, getTarget('cuda'));
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.forward).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/CPU EP has no kernel for .*BiasAdd/) });
    // On cpu the same graph is a problem twice over: no BiasAdd kernel, and the forward cannot load.
    await editGenai(dir, selectProvider('cpu'));
    const asCpu = await checkPackageForTarget(dir, getTarget('cpu'), { activationDtype: DataType.FLOAT16 });
    expect(asCpu.problems[0]).toBe('op com.microsoft.BiasAdd (1 node, e.g. /bias/BiasAdd) cannot run on CPUExecutionProvider: no com.microsoft.BiasAdd kernel on this execution provider');
    expect(asCpu.forward.status).toBe('failed');
  });

  it('reports, does not throw, for a folder without genai_config.json or model file', async () => {
    const empty = await tempDir('phi-forge-ep-empty-');
    const r = await checkPackageForTarget(empty, getTarget('cpu'));
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([expect.stringMatching(/^genai_config\.json: .*no genai_config\.json/)]);
    const noModel = await runnable('cpu');
    await editGenai(noModel, (g) => {
      g.model.decoder.filename = 'missing.onnx';
    });
    const r2 = await checkPackageForTarget(noModel, getTarget('cpu'));
    expect(r2.problems).toEqual([expect.stringMatching(/^missing\.onnx: .*model file cannot be read/)]);
  });
});

// ---------------------------------------------------------------------------------------------------------------

/** tiny-phi's recipe with `quant` replaced per target (and dml's embeddings kept float: DML has no GatherBlockQuantized). */
async function tinyPhiRecipe(name: string, quant: 'shipped' | 'none'): Promise<string> {
  const r = JSON.parse(await readFile(join(ROOT, 'recipes/tiny-phi.json'), 'utf8')) as { targets: { target: string; quant?: Record<string, unknown> }[] };
  for (const t of r.targets) {
    if (quant === 'none') t.quant = { scheme: 'none' };
    else if (t.target === 'dml') t.quant = { ...t.quant, embeddings: 'none' };
  }
  const path = join(work, `${name}.json`);
  await writeFile(path, JSON.stringify(r, null, 2));
  return path;
}

async function buildTargets(recipe: string, out: string): Promise<void> {
  const r = await execa(
    'pnpm',
    ['pipeline', 'build', recipe, '--target', 'cpu', '--target', 'cuda', '--target', 'dml', '--artifacts', join(work, 'artifacts'), '--out', out, '--json'],
    { cwd: ROOT, reject: false, env: { CI: 'true' } },
  );
  expect(r.exitCode, r.stderr).toBe(0);
}

/** Logits of one prefill and three cached steps, rows concatenated. */
async function logits(dir: string): Promise<{ values: Float32Array; vocab: number }> {
  const s = await DecoderSession.open(dir);
  try {
    const cache = s.newCache();
    const parts = [await s.forward([1, 17, 42, 99, 3, 250, 311, 5, 77, 402, 12, 9], cache)];
    for (const t of [64, 128, 200]) parts.push(await s.forward([t], cache));
    const values = new Float32Array(parts.reduce((n, p) => n + p.logits.length, 0));
    let o = 0;
    for (const p of parts) {
      values.set(p.logits, o);
      o += p.logits.length;
    }
    return { values, vocab: parts[0].vocabSize };
  } finally {
    await s.release();
  }
}

describe('tiny-phi built for cpu, cuda and dml through the CLI', () => {
  let shipped: string;
  let float: string;
  beforeAll(async () => {
    shipped = join(work, 'shipped');
    float = join(work, 'float');
    // The shipped quantization (int4 rtn b32; acc 4 on cpu) and the same checkpoint unquantized (fp32 cpu, fp16 gpu).
    await buildTargets(await tinyPhiRecipe('tiny-phi', 'shipped'), shipped);
    await buildTargets(await tinyPhiRecipe('tiny-phi-float', 'none'), float);
  });

  it.each(['cpu', 'cuda', 'dml'] as const)('the shipped %s package passes its execution-provider check', async (t) => {
    const r = await checkPackageForTarget(join(shipped, `tiny-phi-${t}`), getTarget(t));
    expect(r.problems).toEqual([]);
    expect(r.forward.status).toBe('ok');
  });

  it.each(['cuda', 'dml'] as const)('the fp16 %s graph gives the fp32 cpu graph’s logits within fp16 rounding', async (t) => {
    const ref = await logits(join(float, 'tiny-phi-float-cpu'));
    const got = await logits(join(float, `tiny-phi-float-${t}`));
    expect(got.vocab).toBe(ref.vocab);
    expect(got.values.length).toBe(ref.values.length);
    let maxRef = 0;
    let maxDiff = 0;
    for (let i = 0; i < ref.values.length; i++) {
      maxRef = Math.max(maxRef, Math.abs(ref.values[i]));
      maxDiff = Math.max(maxDiff, Math.abs(ref.values[i] - got.values[i]));
    }
    // 8 fp16 ulps at the largest logit: the activations and weights are rounded to 11 significant bits.
    const tol = 8 * 2 ** (Math.floor(Math.log2(maxRef)) - 10);
    expect(maxRef).toBeGreaterThan(0.5);
    expect(maxDiff).toBeGreaterThan(0); // really fp16, not the same graph
    expect(maxDiff).toBeLessThanOrEqual(tol);
    // The same next token wherever the cpu graph's choice is not a near tie.
    const rows = ref.values.length / ref.vocab;
    for (let p = 0; p < rows; p++) {
      const a = ref.values.subarray(p * ref.vocab, (p + 1) * ref.vocab);
      const b = got.values.subarray(p * ref.vocab, (p + 1) * ref.vocab);
      const sorted = [...a].sort((x, y) => y - x);
      if (sorted[0] - sorted[1] > 2 * tol) expect(b.indexOf(Math.max(...b)), `position ${p}`).toBe(a.indexOf(sorted[0]));
    }
  });
});
