// Seeded pseudo-random numbers (xoshiro128** seeded by splitmix32; normals by a tabulated inverse normal CDF): same
// seed, same stream, on every machine, so synthetic checkpoints are byte-identical run to run.

/** splitmix32: turns any 32-bit value into a well-mixed one (used to expand seeds into generator state). */
export function splitmix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a over the UTF-16 code units of a string: a stable 32-bit hash to derive per-name streams. */
export function hashString32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * A seeded generator. `Rng.forName(seed, name)` gives an independent stream per name, so a tensor's values
 * depend only on (seed, tensor name) and not on the order tensors are produced in.
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  /** `seed` is any safe integer; `stream` (32-bit) selects an independent sequence for the same seed. */
  constructor(seed: number, stream = 0) {
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    let x = splitmix32(lo ^ splitmix32(hi ^ 0x5bd1e995) ^ Math.imul(stream >>> 0, 0x27d4eb2d));
    this.s0 = x = splitmix32(x);
    this.s1 = x = splitmix32(x);
    this.s2 = x = splitmix32(x);
    this.s3 = splitmix32(x);
    // xoshiro's state must not be all zero; splitmix32 of consecutive values never gives four zeros, but be sure.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A generator whose stream depends only on this generator's seed and `name`. */
  static forName(seed: number, name: string): Rng {
    return new Rng(seed, hashString32(name));
  }

  /** Next uniformly distributed unsigned 32-bit integer (xoshiro128**). */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }

  /**
   * Standard normal (mean 0, standard deviation 1) from one 32-bit draw: the top 16 bits pick a cell of a
   * 65536-cell table of normal quantiles, the low 16 bits interpolate inside it. Tails are cut at ±4.3 (a
   * probability of 1.5e-5), which synthetic weights do not miss; Box-Muller costs a log, a sqrt and two trig calls
   * per pair, about 8× slower here, and a full-size Phi-4 has 14 billion values to draw.
   */
  normal(): number {
    const u = this.nextU32();
    const t = normalTable();
    const i = u >>> 16;
    const a = t[i]!;
    return a + (t[i + 1]! - a) * ((u & 0xffff) / 65536);
  }

  /** Fills `out` with mean + std · normal(). */
  fillNormal(out: Float32Array, std: number, mean = 0): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = mean + std * this.normal();
    return out;
  }

  /** Fills `out` with values uniform in [lo, hi). */
  fillUniform(out: Float32Array, lo: number, hi: number): Float32Array {
    const span = hi - lo;
    for (let i = 0; i < out.length; i++) out[i] = lo + span * this.uniform();
    return out;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

let NORMAL_TABLE: Float64Array | undefined;

/** Normal quantiles at p = k/65536 (k = 0..65536), the end points clamped to p = 0.5/65536 and 1 − 0.5/65536. */
function normalTable(): Float64Array {
  if (NORMAL_TABLE) return NORMAL_TABLE;
  const t = new Float64Array(65537);
  const edge = 0.5 / 65536;
  for (let k = 0; k <= 65536; k++) t[k] = inverseNormalCdf(Math.min(1 - edge, Math.max(edge, k / 65536)));
  return (NORMAL_TABLE = t);
}

/** Φ⁻¹(p) for 0 < p < 1, Acklam's rational approximation (relative error below 1.2e-9). */
export function inverseNormalCdf(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`inverseNormalCdf: p = ${p} is outside (0, 1)`);
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) =>
    (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  const pLow = 0.02425;
  if (p < pLow) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - pLow) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  );
}
