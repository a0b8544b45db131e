// Quantization options shared by the passes: defaults, validation, per-node overrides by name pattern, and the
// per-node schemes a mixed-precision plan hands to the passes after it.
import { QuantizationError } from '../util/errors.js';
import {
  ACCURACY_LEVEL_RULE,
  BLOCK_SIZE_LIST,
  BLOCK_SIZE_RULE,
  isAccuracyLevel,
  isBlockSize,
  isOneOf,
  QUANT_ALGOS,
  QUANT_DEFAULTS,
  QUANT_SCHEMES,
  type QuantAlgo,
  type QuantScheme,
  type TernaryGranularity,
} from '../vocabulary.js';
import type { QuantMethod } from './workers/kernel.js';
import type { PassContext } from './passes/pass.js';
import { compilePattern, PatternSet } from './passes/patterns.js';

/** What a node is quantized with; every field optional in options and overrides. */
export interface MethodOptions {
  scheme?: QuantScheme;
  algo?: QuantAlgo;
  /** Values per block along K: a power of two, 16..256. Default 32. */
  blockSize?: number;
  /** Asymmetric: store per-block zero points (int4/int8 RTN). Default false. */
  asym?: boolean;
  /** MatMulNBits accuracy_level: 0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8 activations. Default 4. */
  accuracyLevel?: number;
  ternaryScope?: TernaryGranularity;
  /** GPTQ: damping as a fraction of mean diag(H) (default 0.01) and activation order (default true). */
  gptqDamp?: number;
  gptqActOrder?: boolean;
}

export interface Override extends MethodOptions {
  /** Node-name pattern (glob or /regex/); the first matching override wins. */
  pattern: string;
}

export interface NodeMethod extends QuantMethod {
  accuracyLevel: number;
}

export function validateMethod(m: MethodOptions, where: string): void {
  const bad = (msg: string, fix: string) => new QuantizationError('QUANT_OPTIONS', msg, { where, fix });
  // Library callers (and files read without a schema) can pass any string: checked against the vocabulary here.
  if (m.scheme !== undefined && !isOneOf(QUANT_SCHEMES, m.scheme)) {
    throw bad(`unknown scheme ${m.scheme}`, `use one of ${QUANT_SCHEMES.join(', ')}`);
  }
  if (m.algo !== undefined && !isOneOf(QUANT_ALGOS, m.algo)) throw bad(`unknown algorithm ${m.algo}`, `use one of ${QUANT_ALGOS.join(', ')}`);
  const bs = m.blockSize;
  if (bs !== undefined && !isBlockSize(bs)) {
    throw bad(`block size ${bs} is not ${BLOCK_SIZE_RULE}`, `MatMulNBits needs ${BLOCK_SIZE_LIST}`);
  }
  const al = m.accuracyLevel;
  if (al !== undefined && !isAccuracyLevel(al)) {
    throw bad(`accuracy level ${al} is not 0..4`, ACCURACY_LEVEL_RULE);
  }
  if (m.algo && m.algo !== 'rtn' && m.scheme === 'ternary') {
    throw bad(`${m.algo.toUpperCase()} has no ternary variant`, 'use --algo rtn with --scheme ternary');
  }
  if (m.gptqDamp !== undefined && !(m.gptqDamp > 0 && m.gptqDamp < 1)) throw bad(`GPTQ damping ${m.gptqDamp} is not in (0, 1)`, 'typical: 0.01');
}

/** Resolves the method of each node from the base options and the overrides; remembers which overrides matched. */
export class MethodResolver {
  private readonly overrides: readonly Override[];
  private readonly patterns: PatternSet;
  readonly warnings: string[] = [];

  /** `planned`: schemes chosen per node by the mixed-precision pass; an override's own scheme still wins. */
  constructor(
    private readonly base: MethodOptions,
    overrides: readonly Override[] = [],
    private readonly planned?: ReadonlyMap<string, QuantScheme>,
  ) {
    validateMethod(base, 'options');
    // Overrides are checked as they apply: merged over the base options.
    overrides.forEach((o) => validateMethod({ ...base, ...o }, `override ${o.pattern}`));
    this.overrides = overrides;
    this.patterns = new PatternSet(overrides.map((o) => o.pattern));
    if (base.scheme === 'ternary' && base.asym) this.warnings.push('ternary has a fixed zero point (2): --asym is ignored');
    for (const [m, where] of [[base, 'options'], ...overrides.map((o) => [o, `override ${o.pattern}`] as const)] as const) {
      const w = cpuKernelWarning({ ...base, ...m });
      if (w) this.warnings.push(`${where}: ${w}`);
    }
  }

  forNode(name: string, padding: QuantMethod['padding']): NodeMethod {
    const p = this.patterns.match(name);
    const o: MethodOptions = p ? this.overrides.find((x) => x.pattern === p.source)! : {};
    const pick = <K extends keyof MethodOptions>(k: K) => (o[k] ?? this.base[k]) as MethodOptions[K];
    const scheme = o.scheme ?? this.planned?.get(name) ?? this.base.scheme ?? QUANT_DEFAULTS.scheme;
    const algo = pick('algo') ?? QUANT_DEFAULTS.algo;
    return {
      scheme,
      algo,
      blockSize: pick('blockSize') ?? QUANT_DEFAULTS.blockSize,
      symmetric: algo === 'hqq' ? false : scheme === 'ternary' ? true : !(pick('asym') ?? QUANT_DEFAULTS.asym),
      padding,
      accuracyLevel: pick('accuracyLevel') ?? QUANT_DEFAULTS.accuracyLevel,
      ternaryScope: pick('ternaryScope'),
      gptq: algo === 'gptq' ? { damp: pick('gptqDamp'), actOrder: pick('gptqActOrder') } : undefined,
    };
  }

  unusedOverrides(): string[] {
    return this.patterns.unused();
  }

  /** Whether an override names this node's scheme (mixed precision leaves such nodes as the user set them). */
  schemeIsOverridden(name: string): boolean {
    const o = this.overrides.find((x) => compilePattern(x.pattern).test(name));
    return o?.scheme !== undefined;
  }
}

/** Where the mixed-precision pass leaves its plan (node name → scheme) for the passes after it. */
const PLAN_KEY = 'plannedSchemes';

export function plannedSchemes(ctx: PassContext): ReadonlyMap<string, QuantScheme> | undefined {
  return ctx.shared.get(PLAN_KEY) as ReadonlyMap<string, QuantScheme> | undefined;
}

export function setPlannedSchemes(ctx: PassContext, plan: ReadonlyMap<string, QuantScheme>): void {
  ctx.shared.set(PLAN_KEY, plan);
}

/**
 * Combinations that run on CPU but not on onnxruntime's int8-activation kernel, so accuracy_level 4 silently computes
 * in fp32 (several times slower). Measured with onnxruntime-node 1.30 on x64 (see test/quant/ort-kernels.test.ts).
 */
export function cpuKernelWarning(m: MethodOptions): string | undefined {
  if ((m.accuracyLevel ?? QUANT_DEFAULTS.accuracyLevel) !== 4) return undefined;
  const bs = m.blockSize ?? QUANT_DEFAULTS.blockSize;
  if (m.algo === 'hqq') return 'HQQ float zero points have no int8 kernel on CPU: accuracy_level 4 computes in fp32 there';
  if (m.scheme === 'ternary' && ![32, 64, 128].includes(bs)) {
    return `2-bit blocks of ${bs} have no int8 kernel on CPU (32, 64 and 128 do): accuracy_level 4 computes in fp32 there`;
  }
  return undefined;
}

/** A stable key: nodes sharing a weight share the quantized tensors only when their methods agree. */
export function methodKey(m: QuantMethod): string {
  return [m.scheme, m.algo, m.blockSize, m.symmetric ? 's' : 'a', m.padding, m.ternaryScope ?? '', m.gptq?.damp ?? '', m.gptq?.actOrder ?? ''].join('|');
}
