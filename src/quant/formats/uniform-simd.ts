// Loads the WebAssembly SIMD kernels behind uniform.ts's round-to-nearest quantizer (uniform-kernels.wat, compiled to
// uniform-kernels.wasm by scripts/build-wasm.ts): one synchronous instance per thread, or none without SIMD.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

type I32Fn = (...args: number[]) => number;

/** The kernels over one WebAssembly memory; addresses are in bytes (uniform-kernels.wat gives each one's layout). */
export interface SimdKernels {
  /** Grows the memory to at least `bytes`; returns views made after growing (growth detaches older views). */
  reserve(bytes: number): { f32: Float32Array; u8: Uint8Array; i32: Int32Array };
  minmax(src: number, count: number, bs: number, mn: number, mx: number): void;
  /** Returns how many blocks it listed at `redo`. */
  params(
    mn: number,
    mx: number,
    count: number,
    recip: number,
    zp: number,
    scales: number,
    zps: number,
    stride: number,
    sym: boolean,
    f16: boolean,
    bits: number,
    redo: number,
  ): number;
  codes(bits: number, src: number, rows: number, perRow: number, bs: number, recip: number, zp: number, dst: number, dstStride: number): void;
  minmaxCols(src: number, rows: number, cols: number, mn: number, mx: number): void;
  codesCols(bits: number, src: number, rows: number, cols: number, recip: number, zp: number, dst: number, dstStride: number): void;
  /** Index of the first NaN or ±Infinity among `count` (a multiple of 4) f32 at `src`, or −1. */
  nonFinite(src: number, count: number): number;
}

/** The compiled kernels, next to this file (committed: tsx has no build step, and workers need them synchronously). */
export const KERNELS_WASM = join(dirname(fileURLToPath(import.meta.url)), 'uniform-kernels.wasm');

let kernels: SimdKernels | null | undefined;

/** This thread's kernels, or undefined where WebAssembly SIMD is not available. */
export function simdKernels(): SimdKernels | undefined {
  if (kernels === undefined) kernels = instantiate();
  return kernels ?? undefined;
}

/** The part of the WebAssembly JS API used here (the project's TypeScript libs do not declare it). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}
interface WasmMemory {
  buffer: ArrayBuffer;
  grow(pages: number): number;
}

function instantiate(): SimdKernels | null {
  const bytes = readFileSync(KERNELS_WASM);
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  // validate() is false where SIMD is not supported.
  if (!wasm || !wasm.validate(bytes)) return null;
  const e = new wasm.Instance(new wasm.Module(bytes)).exports as Record<string, I32Fn> & { memory: WasmMemory };
  const memory = e.memory;
  const codes: Record<number, I32Fn> = { 2: e.codes2, 4: e.codes4, 8: e.codes8 };
  const codesCols: Record<number, I32Fn> = { 2: e.codesCols2, 4: e.codesCols4, 8: e.codesCols8 };
  return {
    reserve(need) {
      const have = memory.buffer.byteLength;
      if (need > have) memory.grow(Math.ceil((need - have) / 65536));
      const buf = memory.buffer;
      return { f32: new Float32Array(buf), u8: new Uint8Array(buf), i32: new Int32Array(buf) };
    },
    minmax: e.minmax,
    // The kernel takes mid = 2^(bits−1) and maxq = 2^bits − 1 rather than bits.
    params: (mn, mx, count, recip, zp, scales, zps, stride, sym, f16, bits, redo) =>
      e.params(mn, mx, count, recip, zp, scales, zps, stride, +sym, +f16, 1 << (bits - 1), (1 << bits) - 1, redo),
    codes: (bits, ...args) => codes[bits](...args),
    minmaxCols: e.minmaxCols,
    codesCols: (bits, ...args) => codesCols[bits](...args),
    nonFinite: e.nonFinite,
  };
}
