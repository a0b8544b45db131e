// The committed uniform-kernels.wasm is exactly what wabt makes of uniform-kernels.wat, so the two cannot drift apart.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileWat, KERNELS_WASM, KERNELS_WAT } from '../../scripts/build-wasm.js';
import { findNonFinite } from '../../src/quant/formats/block.js';
import { KERNELS_WASM as LOADED_WASM, simdKernels } from '../../src/quant/formats/uniform-simd.js';
import { Rng } from '../../src/util/random.js';

describe('uniform-kernels.wasm', () => {
  it('is the compiled uniform-kernels.wat, byte for byte', async () => {
    const built = Buffer.from(await compileWat(readFileSync(KERNELS_WAT, 'utf8')));
    const committed = readFileSync(KERNELS_WASM);
    expect(
      built.equals(committed),
      `${KERNELS_WASM} is not the compiled ${KERNELS_WAT}: run \`pnpm tsx scripts/build-wasm.ts\``,
    ).toBe(true);
  });

  it('is the file uniform-simd.ts loads, with the kernels uniform.ts calls', () => {
    expect(LOADED_WASM).toBe(KERNELS_WASM);
    const k = simdKernels();
    // Node 20 has WebAssembly SIMD: a missing kernel here is a broken module, not a runtime without SIMD.
    expect(k).toBeDefined();
    const { f32 } = k!.reserve(64);
    f32.set([3, -1, 2, 5, 0.5, -0, 7, -8], 0);
    k!.minmax(0, 2, 4, 32, 40);
    expect([...f32.subarray(8, 12)]).toEqual([-1, -8, 5, 7]);
  });

  it('does not compile a text with an error', async () => {
    await expect(compileWat('(module (func (result i32)))')).rejects.toThrow();
  });

  it('finds the first NaN or ±Infinity like a plain loop, anywhere (lanes, chunk edges, the scalar tail)', () => {
    const plain = (a: Float32Array) => {
      const i = a.findIndex((v) => !Number.isFinite(v));
      return i < 0 ? undefined : i;
    };
    const rng = new Rng(3);
    const chunk = 1 << 18; // block.ts copies this many floats at a time
    for (const length of [0, 1, 3, 4, 7, 64, chunk - 1, chunk, chunk + 5, 3 * chunk + 2]) {
      const a = rng.fillNormal(new Float32Array(length), 1e30); // big but finite
      expect(findNonFinite(a)).toBe(plain(a));
      const spots = [0, 1, 2, 3, 5, length - 1, length - 2, chunk - 1, chunk, chunk + 3, 2 * chunk + 1].filter((i) => i >= 0 && i < length);
      for (const at of spots) {
        for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
          const b = a.slice();
          b[at] = bad;
          if (at + 2 < length) b[at + 2] = Number.NaN; // a later one must not win
          expect(findNonFinite(b)).toBe(at);
        }
      }
    }
    // Largest finite values and subnormals are finite.
    expect(findNonFinite(Float32Array.of(3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -0, 0))).toBeUndefined();
  });
});
