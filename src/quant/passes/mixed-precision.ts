// Pass: mixed precision under a bits-per-weight budget. Plans, changes nothing in the graph: measures how much each
// quantized MatMul weight suffers at the low (base) scheme and would recover at the high one, then moves weights to
// the high scheme, largest gain per extra bit first, while the average stays within the budget. The plan (node →
// scheme) is left in the pass context for the passes after it (AWQ scaling, MatMulNBits).
//
// Sensitivity, best first:
//   kl            (calibration data and a `logits` output) the model's mean next-token KL from the float model when
//                 only this weight is rounded to the low scheme (kl-probe.ts: one run per weight per sample). On
//                 stories260K the layer-output proxy below is almost flat across depth while this ranges 50× (layer 0
//                 dominates): errors made early are amplified by every later layer, which only a model run sees.
//   output-error  (calibration data) the layer-output noise-to-signal ratio ||X·(Q(W) − W)ᵀ||² / ||X·Wᵀ||²
//   weight-error  (no calibration data) ||Q(W) − W||² / ||W||², inputs assumed white
// The gain of moving a weight to the high scheme is the low-scheme measure times 1 − e_high/e_low (the fraction of its
// layer-output error the high scheme removes). Bits count what MatMulNBits stores (codes, scales, zero points) over
// the quantized MatMul weights; a tied embedding reads the lm_head's tensors and adds nothing.
import { DataType } from '../../onnx/dtype.js';
import type { Model } from '../../onnx/ir.js';
import type { RowQuantizer } from '../algorithms/output-error.js';
import type { SensitivityJob, SensitivityOutcome } from '../workers/analysis-kernel.js';
import { captureActivations, requestBytes, scoringActivations, scoringRequest, type CalibrationSource } from '../calibration/calibration.js';
import { blockGeometry, zeroPointRowBytes } from '../formats/block.js';
import { codecFor } from '../formats/index.js';
import { constantName, findMatMulWeights, nodeLabel, type Candidate } from './find-weights.js';
import type { QuantMethod } from '../workers/kernel.js';
import { MethodResolver, setPlannedSchemes, type MethodOptions, type NodeMethod, type Override } from '../method.js';
import { definePass, type PassContext } from './pass.js';
import { PatternSet } from './patterns.js';
import { probeKl, type KlProbeUnit } from '../calibration/kl-probe.js';
import { chunkByBytes, runInOrder } from '../streaming/run-in-order.js';
import { QuantizationError } from '../../util/errors.js';
import { isOneOf, QUANT_DEFAULTS, QUANT_SCHEMES, type QuantScheme, type SensitivityMeasure } from '../../vocabulary.js';

export interface MixedPrecisionOptions extends MethodOptions {
  /** Average bits per quantized MatMul weight to stay within, scales and zero points included. */
  budgetBits: number;
  /** The scheme sensitive weights move to. Default int8. */
  high?: QuantScheme;
  exclude?: readonly string[];
  overrides?: readonly Override[];
  /** Activations to measure sensitivity on; without them the relative weight error is used. */
  calibration?: CalibrationSource;
  /** Activation rows sampled per input (inputs with K ≤ this use all rows exactly). Default 512. */
  sampleRows?: number;
  /** Output rows of each weight scored. Default: 64..256, by cost. */
  maxRows?: number;
  /** `kl` (default when there is calibration data and a `logits` output) or `output-error`. */
  sensitivity?: SensitivityMeasure;
}

export interface MixedUnit {
  weight: string;
  nodes: string[];
  /** K × N. */
  params: number;
  /** Relative output (or weight) error at the low and the high scheme (see the module comment). */
  errorLow: number;
  errorHigh: number;
  /** Model KL with only this weight at the low scheme (measure `kl`). */
  klLow?: number;
  /** What moving it to the high scheme is worth (the measure × 1 − errorHigh/errorLow). */
  gain: number;
  /** Bits this weight takes at the low and the high scheme. */
  bitsLow: number;
  bitsHigh: number;
  high: boolean;
}

export interface MixedPrecisionStats {
  low: QuantScheme;
  high: QuantScheme;
  budgetBits: number;
  /** See the module comment. */
  measure: SensitivityMeasure | 'weight-error';
  /** Average bits per weight with nothing moved, and with the plan. */
  baseBits: number;
  achievedBits: number;
  /** Nodes planned at the high scheme. */
  highNodes: string[];
  /** Weights measured (those at the base scheme that could move within the budget), largest gain per extra bit first. */
  units: MixedUnit[];
  /** Weights that keep the scheme an override or their position gave them, counted in the bits. */
  fixed: string[];
  warnings: string[];
  reason?: string;
}

interface Unit {
  key: string;
  c: Candidate;
  nodes: Candidate[];
  method: NodeMethod;
  candidate: boolean;
  outcome?: SensitivityOutcome;
  kl?: number;
}

/** Bytes MatMulNBits stores for a [K, N] weight with this method (codes, scales, zero points). */
export function quantizedBytes(K: number, N: number, m: Pick<QuantMethod, 'scheme' | 'algo' | 'blockSize' | 'symmetric'>, floatType: number): number {
  const bits = codecFor(m.scheme).bits;
  const { kBlocks, rowBytes } = blockGeometry(K, bits, m.blockSize, 'block');
  const scaleBytes = floatType === DataType.FLOAT16 ? 2 : 4;
  let zp = 0;
  if (m.algo === 'hqq') zp = N * kBlocks * scaleBytes;
  else if (!m.symmetric && m.scheme !== 'ternary') zp = N * zeroPointRowBytes(kBlocks, bits);
  return N * rowBytes + N * kBlocks * scaleBytes + zp;
}

export const mixedPrecisionPass = definePass<MixedPrecisionOptions, MixedPrecisionStats>({
  name: 'quant:mixed-precision',
  describe: 'plan which MatMul weights get the higher scheme so the average bits per weight meets a budget',
  async run(model, options, ctx) {
    const resolver = new MethodResolver(options, options.overrides);
    const low: QuantScheme = options.scheme ?? QUANT_DEFAULTS.scheme;
    const high: QuantScheme = options.high ?? QUANT_DEFAULTS.highScheme;
    const budget = options.budgetBits;
    if (!isOneOf(QUANT_SCHEMES, high)) {
      throw new QuantizationError('QUANT_OPTIONS', `unknown high scheme ${high}`, { where: 'options', fix: `use one of ${QUANT_SCHEMES.join(', ')}` });
    }
    if (!(budget > 0)) throw new QuantizationError('QUANT_OPTIONS', `bits budget ${budget} is not a positive number`, { where: 'options', fix: 'e.g. 5.0 or 6' });
    const stats: MixedPrecisionStats = {
      low,
      high,
      budgetBits: budget,
      measure: !options.calibration ? 'weight-error' : (options.sensitivity ?? 'kl') === 'kl' && model.graph.outputs.some((o) => o.name === 'logits') ? 'kl' : 'output-error',
      baseBits: 0,
      achievedBits: 0,
      highNodes: [],
      units: [],
      fixed: [],
      warnings: [],
    };
    if (codecFor(high).bits <= codecFor(low).bits) stats.warnings.push(`high scheme ${high} has no more bits than the base ${low}: nothing to move`);

    const exclude = new PatternSet(options.exclude ?? []);
    const units = new Map<string, Unit>();
    for (const c of findMatMulWeights(model).candidates) {
      const label = nodeLabel(c.node);
      if (exclude.match(label)) continue;
      const method = resolver.forNode(label, 'block');
      const key = `${constantName(c.weight)}\u0000${c.weight.layout}`;
      const own = method.scheme === low && !resolver.schemeIsOverridden(label) && c.graph === model.graph;
      const u = units.get(key);
      if (u) {
        u.nodes.push(c);
        u.candidate &&= own;
      } else units.set(key, { key, c, nodes: [c], method, candidate: own });
    }
    if (units.size === 0) {
      stats.reason = 'no MatMul weight is quantized';
      setPlannedSchemes(ctx, new Map());
      return { model, modified: false, stats };
    }
    const all = [...units.values()];
    const params = (u: Unit) => u.c.weight.K * u.c.weight.N;
    const bytesAt = (u: Unit, scheme: QuantScheme) => quantizedBytes(u.c.weight.K, u.c.weight.N, { ...u.method, scheme }, u.c.weight.floatType);
    const totalParams = all.reduce((n, u) => n + params(u), 0);
    let bits = all.reduce((n, u) => n + 8 * bytesAt(u, u.method.scheme), 0);
    stats.baseBits = bits / totalParams;
    stats.fixed = all.filter((u) => !u.candidate).map((u) => constantName(u.c.weight));
    const extra = (u: Unit) => 8 * (bytesAt(u, high) - bytesAt(u, low));
    // Only weights that could move within the budget are worth measuring.
    const slack = budget * totalParams - bits;
    const candidates = codecFor(high).bits > codecFor(low).bits ? all.filter((u) => u.candidate && extra(u) <= slack) : [];

    await measure(model, candidates, options, ctx, high);
    if (stats.measure === 'kl' && candidates.length) await measureKl(model, candidates, options, ctx);
    const gainOf = (u: Unit) => {
      const { low: el, high: eh } = u.outcome!;
      const saved = el > 0 ? Math.max(0, 1 - eh / el) : 0;
      return stats.measure === 'kl' ? u.kl! * saved : el - eh;
    };
    const perBit = (u: Unit) => gainOf(u) / Math.max(1, extra(u));
    candidates.sort((a, b) => perBit(b) - perBit(a));
    const chosen = new Set<Unit>();
    if (stats.baseBits > budget) {
      stats.warnings.push(`the budget ${budget} bits/weight is below the ${stats.baseBits.toFixed(3)} the base scheme already takes: nothing goes to ${high}`);
    }
    for (const u of candidates) {
      if ((bits + extra(u)) / totalParams <= budget) {
        chosen.add(u);
        bits += extra(u);
      }
    }
    const plan = new Map<string, QuantScheme>();
    for (const u of chosen) for (const c of u.nodes) plan.set(nodeLabel(c.node), high);
    setPlannedSchemes(ctx, plan);
    stats.achievedBits = bits / totalParams;
    stats.highNodes = [...plan.keys()];
    stats.units = candidates.map((u) => ({
      weight: constantName(u.c.weight),
      nodes: u.nodes.map((c) => nodeLabel(c.node)),
      params: params(u),
      errorLow: u.outcome!.low,
      errorHigh: u.outcome!.high,
      klLow: u.kl,
      gain: gainOf(u),
      bitsLow: 8 * bytesAt(u, low),
      bitsHigh: 8 * bytesAt(u, high),
      high: chosen.has(u),
    }));
    return { model, modified: false, stats };
  },
});

/** Runs the sensitivity kernel for every candidate (activations captured in groups that fit 1 GiB, when given). */
async function measure(
  model: Model,
  units: Unit[],
  o: MixedPrecisionOptions,
  ctx: PassContext,
  high: QuantScheme,
): Promise<void> {
  const sampleRows = o.sampleRows ?? 512;
  const request = (u: Unit) => scoringRequest(u.c.node.inputs[0], u.c.weight.K, u.c.weight.floatType, sampleRows);
  const chunks = o.calibration ? [...chunkByBytes(units, (u) => requestBytes(request(u)), 2 ** 30)] : [units];
  let done = 0;
  for (const chunk of chunks) {
    const acts = o.calibration ? await captureActivations(model, chunk.map(request), o.calibration) : undefined;
    await runInOrder(
      chunk,
      ctx.kernels.concurrency,
      async (u) => {
        const w = u.c.weight;
        const a = acts?.get(u.c.node.inputs[0]);
        const job: SensitivityJob = {
          kind: 'sensitivity',
          weight: { tensor: constantName(w), bytes: await w.tensor.bytes(), dataType: w.tensor.dataType, K: w.K, N: w.N, layout: w.layout },
          activations: a && scoringActivations(a),
          low: rowQuantizer(u, u.method.scheme),
          high: rowQuantizer(u, high),
          maxRows: o.maxRows,
        };
        return ctx.kernels.analyze(job);
      },
      (u, r) => {
        u.outcome = r;
        ctx.progress({ pass: 'quant:mixed-precision', done: ++done, total: units.length, item: constantName(u.c.weight) });
      },
    );
  }
}

/** Model KL per candidate with only it at its low scheme (kl-probe.ts), computed a chunk of weights at a time. */
async function measureKl(model: Model, units: Unit[], o: MixedPrecisionOptions, ctx: PassContext): Promise<void> {
  let done = 0;
  // Δ tensors are float32 copies of the weights: a chunk of them at a time.
  for (const chunk of chunkByBytes(units, (u) => 4 * u.c.weight.K * u.c.weight.N, 256 * 2 ** 20)) {
    const probes: KlProbeUnit[] = [];
    for (const u of chunk) {
      const w = u.c.weight;
      const { delta } = await ctx.kernels.analyze({
        kind: 'quant-delta',
        weight: { tensor: constantName(w), bytes: await w.tensor.bytes(), dataType: w.tensor.dataType, K: w.K, N: w.N, layout: w.layout },
        quant: rowQuantizer(u, u.method.scheme),
      });
      probes.push({ id: u.key, nodes: u.nodes.map((c) => c.node), delta, K: w.K, N: w.N, floatType: w.floatType });
    }
    const kl = await probeKl(model, probes, o.calibration!);
    for (const u of chunk) u.kl = kl.get(u.key);
    done += chunk.length;
    ctx.progress({ pass: 'quant:mixed-precision', done, total: units.length, item: 'KL probe' });
  }
}

function rowQuantizer(u: Unit, scheme: QuantScheme): RowQuantizer {
  return {
    scheme,
    blockSize: u.method.blockSize,
    symmetric: scheme === 'ternary' ? true : u.method.symmetric,
    scaleType: u.c.weight.floatType === DataType.FLOAT16 ? 'float16' : 'float32',
    scope: u.method.ternaryScope,
  };
}
