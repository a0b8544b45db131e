// The committed uniform-kernels.wasm is exactly what wabt makes of uniform-kernels.wat, so the two cannot drift apart.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileWat, KERNELS_WASM, KERNELS_WAT } from '../../scripts/build-wasm.js';
import { KERNELS_WASM as LOADED_WASM, simdKernels } from '../../src/quant/formats/uniform-simd.js';

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
});
