// Seeded pseudo-random numbers (xoshiro128** seeded by splitmix32, Box-Muller normals): same seed, same stream,
// on every machine, so synthetic checkpoints are byte-identical run to run.

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
 * A seeded generator. `fork(name)` derives an independent stream from the seed and a name, so a tensor's values
 * depend only on (seed, tensor name) and not on the order tensors are produced in.
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  /** The second value of the last Box-Muller pair, handed out by the next normal() call. */
  private spare = 0;
  private hasSpare = false;

  /** `seed` is any integer (taken modulo 2^32); `stream` selects an independent sequence for the same seed. */
  constructor(seed: number, stream = 0) {
    let x = splitmix32((seed >>> 0) ^ Math.imul(stream >>> 0, 0x27d4eb2d));
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

  /** Standard normal (mean 0, standard deviation 1), Box-Muller. */
  normal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    // 1 - uniform() is in (0, 1], so the log is finite.
    const r = Math.sqrt(-2 * Math.log(1 - this.uniform()));
    const theta = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(theta);
    this.hasSpare = true;
    return r * Math.cos(theta);
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
