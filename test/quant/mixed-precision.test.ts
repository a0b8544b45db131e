// Mixed precision under a bits-per-weight budget: bytes per scheme by hand, the budget respected, the one layer made
// far more sensitive is the one kept at int8 under every sensitivity measure, overrides stay fixed and count, and
// the KL probe agrees with an independent KL between the float model and a MatMulNBits model run by onnxruntime.
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph, Model, tensorType } from '../../src/onnx/ir.js';
import { Tensor } from '../../src/onnx/tensor.js';
import type { CalibrationSource } from '../../src/quant/calibration/calibration.js';
import { findMatMulWeights } from '../../src/quant/passes/find-weights.js';
import { probeKl } from '../../src/quant/calibration/kl-probe.js';
import type { MatMulNBitsStats } from '../../src/quant/passes/matmul-nbits.js';
import { quantizedBytes, type MixedPrecisionStats } from '../../src/quant/passes/mixed-precision.js';
import { quantizeModel, type QuantizeOptions } from '../../src/quant/quantize-model.js';
import { inlineKernelRunner } from '../../src/quant/workers/kernel-pool.js';
import { Rng } from '../../src/util/random.js';
import { randomMatrix } from '../helpers/quant.js';
import { ort, runModel } from './awq-graphs.js';

const D = 64;
const S = 24;
const LAYERS = 4;

/**
 * A residual stack of four [64, 64] layers, h ← h + MatMul(Tanh(h), W_i), the last sum named `logits`. The
 * `sensitive` layer has one large weight in every block of 32 along K, so int4 rounds the rest of each block to
 * almost nothing: its rounding noise is about 20× the others' and goes straight into the residual stream.
 */
function chain(sensitive = 1): Model {
  const g = new Graph('chain');
  g.inputs.push({ name: 'x', type: tensorType(DataType.FLOAT, [1, 'S', D]) });
  g.outputs.push({ name: 'logits', type: tensorType(DataType.FLOAT, [1, 'S', D]) });
  let h = 'x';
  for (let i = 0; i < LAYERS; i++) {
    const w = randomMatrix(40 + i, D, D, 0.1);
    if (i === sensitive) for (let n = 0; n < D; n++) for (let b = 0; b < D; b += 32) w[(b + (n % 32)) * D + n] = 1.2;
    g.addInitializer(Tensor.fromFloat32(`W${i}`, [D, D], w));
    const p = `/layer.${i}`;
    g.addNode({ opType: 'Tanh', name: `${p}/Tanh`, inputs: [h], outputs: [`${p}/Tanh/output_0`] });
    g.addNode({ opType: 'MatMul', name: `${p}/MatMul`, inputs: [`${p}/Tanh/output_0`, `W${i}`], outputs: [`${p}/MatMul/output_0`] });
    const out = i === LAYERS - 1 ? 'logits' : `${p}/Add/output_0`;
    g.addNode({ opType: 'Add', name: `${p}/Add`, inputs: [h, `${p}/MatMul/output_0`], outputs: [out] });
    h = out;
  }
  return new Model(g);
}

const feeds = (seed: number) => ({ x: new ort.Tensor('float32', new Rng(seed).fillNormal(new Float32Array(S * D), 1), [1, S, D]) });
const calibration: CalibrationSource = { describe: 'normal rows', feeds: () => [1, 2, 3].map(feeds) };

async function mixed(o: QuantizeOptions) {
  const r = await quantizeModel(chain(), { threads: 0, accuracyLevel: 0, ...o });
  return { model: r.model, plan: r.reports[0].stats as MixedPrecisionStats, mm: r.reports.find((p) => p.pass === 'quant:matmul-nbits')!.stats as MatMulNBitsStats };
}

describe('bits per weight', () => {
  it('counts codes, scales and zero points (hand-computed)', () => {
    // int4, K = 64 (2 blocks of 32), N = 4: codes 4·2·16 B, fp32 scales 4·2·4 B → 160 B = 5 bits/weight.
    const m = { scheme: 'int4', algo: 'rtn', blockSize: 32, symmetric: true } as const;
    expect(quantizedBytes(64, 4, m, DataType.FLOAT)).toBe(160);
    expect(quantizedBytes(64, 4, m, DataType.FLOAT16)).toBe(128 + 16);
    // Asymmetric: + packed zero points, one byte per row for 2 blocks of 4 bits.
    expect(quantizedBytes(64, 4, { ...m, symmetric: false }, DataType.FLOAT)).toBe(164);
    // HQQ: float zero points, one per block.
    expect(quantizedBytes(64, 4, { ...m, algo: 'hqq', symmetric: false }, DataType.FLOAT)).toBe(192);
    // int8: 8·64·4/8 = 256 B codes + 32 B scales = 9 bits/weight; ternary 2 bits + scales = 3.
    expect(quantizedBytes(64, 4, { ...m, scheme: 'int8' }, DataType.FLOAT)).toBe(288);
    expect(quantizedBytes(64, 4, { ...m, scheme: 'ternary' }, DataType.FLOAT)).toBe(96);
    // A padded last block (K = 40): codes for 2 whole blocks.
    expect(quantizedBytes(40, 1, m, DataType.FLOAT)).toBe(40);
  });
});

describe('mixed precision', () => {
  for (const [label, o] of [
    ['model KL', { calibration }],
    ['layer-output error', { calibration, sensitivity: 'output-error' as const }],
    ['weight error (no calibration data)', {}],
  ] as const) {
    it(`budget 6 with int4 + int8: the sensitive layer alone goes high (${label})`, async () => {
      const { plan, mm } = await mixed({ scheme: 'int4', mixed: { budgetBits: 6, sensitivity: 'sensitivity' in o ? o.sensitivity : undefined }, calibration: 'calibration' in o ? o.calibration : undefined });
      expect(plan.measure).toBe(label === 'model KL' ? 'kl' : label.startsWith('layer') ? 'output-error' : 'weight-error');
      expect(plan.baseBits).toBe(5);
      expect(plan.highNodes).toEqual(['/layer.1/MatMul']);
      expect(plan.achievedBits).toBe(6);
      expect(plan.achievedBits).toBeLessThanOrEqual(6);
      // The most sensitive first, by a wide margin.
      expect(plan.units[0].weight).toBe('W1');
      expect(plan.units[0].gain).toBeGreaterThan(3 * plan.units[1].gain);
      // What MatMulNBits really stored matches the plan.
      expect(mm.bitsPerWeight).toBe(6);
      expect(mm.converted.map((c) => [c.node, c.scheme])).toEqual([
        ['/layer.0/MatMul', 'int4'],
        ['/layer.1/MatMul', 'int8'],
        ['/layer.2/MatMul', 'int4'],
        ['/layer.3/MatMul', 'int4'],
      ]);
    });
  }

  it('a larger budget takes more layers, never past it; a budget below the base scheme warns and moves nothing', async () => {
    const seven = await mixed({ mixed: { budgetBits: 7.5 }, calibration });
    expect(seven.plan.highNodes.length).toBe(2);
    expect(seven.plan.highNodes).toContain('/layer.1/MatMul');
    expect(seven.mm.bitsPerWeight).toBe(7);
    const tight = await mixed({ mixed: { budgetBits: 5.5 }, calibration });
    expect(tight.plan.highNodes).toEqual([]);
    expect(tight.plan.warnings).toEqual([]);
    const low = await mixed({ mixed: { budgetBits: 4 } });
    expect(low.plan.highNodes).toEqual([]);
    expect(low.plan.warnings[0]).toContain('below the 5.000 the base scheme already takes');
    expect(low.mm.bitsPerWeight).toBe(5);
  });

  it('a node whose scheme an override sets is fixed, and its bits count', async () => {
    const r = await mixed({ mixed: { budgetBits: 7 }, calibration, overrides: [{ pattern: '/layer.3/*', scheme: 'int8' }] });
    expect(r.plan.fixed).toEqual(['W3']);
    expect(r.plan.baseBits).toBe(6);
    expect(r.plan.highNodes).toEqual(['/layer.1/MatMul']);
    expect(r.plan.units.map((u) => u.weight).sort()).toEqual(['W0', 'W1', 'W2']);
    expect(r.mm.bitsPerWeight).toBe(7);
  });

  it("the mixed model's error is well below plain int4's (the int8 layer was the one that mattered)", async () => {
    const err = async (m: Model) => {
      let e = 0;
      for (const s of [11, 12]) {
        const a = (await runModel(chain(), feeds(s))).logits;
        const b = (await runModel(m, feeds(s))).logits;
        for (let i = 0; i < a.length; i++) e += (a[i] - b[i]) ** 2;
      }
      return e;
    };
    const plain = await quantizeModel(chain(), { threads: 0, accuracyLevel: 0 });
    const mix = await mixed({ mixed: { budgetBits: 6 }, calibration });
    expect(await err(mix.model)).toBeLessThan(0.3 * (await err(plain.model)));
  });

  it('the KL probe equals the KL between the float model and a MatMulNBits model of that one layer', async () => {
    const model = chain();
    const found = findMatMulWeights(model).candidates;
    const c = found.find((x) => x.node.name === '/layer.2/MatMul')!;
    const { delta } = await inlineKernelRunner().analyze({
      kind: 'quant-delta',
      weight: { tensor: 'W2', bytes: await c.weight.tensor.bytes(), dataType: DataType.FLOAT, K: D, N: D, layout: 'kn' },
      quant: { scheme: 'int4', blockSize: 32, symmetric: true },
    });
    const kl = await probeKl(model, [{ id: 'W2', nodes: [c.node], delta, K: D, N: D, floatType: DataType.FLOAT }], calibration);
    // The probe left the model as it was.
    expect(model.graph.nodes.length).toBe(chain().graph.nodes.length);
    expect(model.graph.inputs.map((v) => v.name)).toEqual(['x']);
    // Independent: only /layer.2 → MatMulNBits (fp32 compute), both models' logits through our own log-softmax.
    const q = await quantizeModel(chain(), { threads: 0, accuracyLevel: 0, exclude: ['/^(?!\\/layer\\.2\\/)/'] });
    expect(q.model.graph.nodes.filter((n) => n.opType === 'MatMulNBits').length).toBe(1);
    let sum = 0;
    let rows = 0;
    for (const s of [1, 2, 3]) {
      const a = (await runModel(chain(), feeds(s))).logits;
      const b = (await runModel(q.model, feeds(s))).logits;
      for (let o = 0; o < a.length; o += D) {
        const lse = (x: Float32Array) => {
          let m = -Infinity;
          for (let v = 0; v < D; v++) m = Math.max(m, x[o + v]);
          let t = 0;
          for (let v = 0; v < D; v++) t += Math.exp(x[o + v] - m);
          return m + Math.log(t);
        };
        const la = lse(a);
        const lb = lse(b);
        for (let v = 0; v < D; v++) sum += Math.exp(a[o + v] - la) * (a[o + v] - la - (b[o + v] - lb));
        rows++;
      }
    }
    expect(kl.get('W2')!).toBeGreaterThan(1e-3);
    expect(Math.abs(kl.get('W2')! - sum / rows) / (sum / rows)).toBeLessThan(1e-3);
  });
});
