// WebAssembly SIMD kernels behind uniform.ts's round-to-nearest quantizer (block min/max, scales and zero points,
// codes packed to 2, 4 or 8 bits), assembled here from opcodes so no toolchain is needed; one instance per thread.
//
// Why WebAssembly: the exact arithmetic is fp32 (fr(fr(w·(1/scale)) + zp)), which plain JS can only emulate with
// Math.fround, two float↔double conversions per rounding; f32x4 does it natively, four values at a time.
// Exactness against uniform.ts's scalar code, lane by lane:
// - min/max use f32x4.pmin/pmax, which are exactly `v < mn ? v : mn` / `mx < v ? v : mx` (NaN never wins). Only
//   the sign of a zero extreme can differ, where [N, K] blocks' lanes are combined out of order; params hands the one
//   block where that matters (symmetric, all zero) back to JS.
// - codes: f32x4.mul and f32x4.add round once, as fround of the exact double product / sum does. JS then clamps
//   ToInt32(s + 0.5), i.e. floor(s + 0.5) for finite s, to [0, maxq]; here s is clamped first and rounded half up
//   (see code()). NaN gives 0 both ways; ±Infinity would not (JS gives 0 for both), so params hands blocks with a
//   non-finite 1/scale or value back to JS.
// Each function's comment gives its memory layout; uniform.ts stages data in and out of the one memory.
// - block parameters: the same fp32 operations as blockParams, and roundToFloat16's rounding on the bits.

const I32 = 0x7f;
const V128 = 0x7b;

/** Unsigned LEB128. */
function u32(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (i32.const immediates). */
function s32(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}

// Core instructions (binary opcodes from the WebAssembly core spec).
const get = (i: number) => [0x20, ...u32(i)];
const set = (i: number) => [0x21, ...u32(i)];
const tee = (i: number) => [0x22, ...u32(i)];
const i32c = (n: number) => [0x41, ...s32(n)];
const block = [0x02, 0x40];
const loop = [0x03, 0x40];
const end = [0x0b];
const br = (depth: number) => [0x0c, ...u32(depth)];
const brIf = (depth: number) => [0x0d, ...u32(depth)];
const ifThen = (then: number[]) => [0x04, 0x40, ...then, 0x0b];
const ifElse = (then: number[], otherwise: number[]) => [0x04, 0x40, ...then, 0x05, ...otherwise, 0x0b];
const i32Eqz = [0x45];
const i32LtU = [0x49];
const i32GeU = [0x4f];
const i32Add = [0x6a];
const i32Mul = [0x6c];
const i32And = [0x71];
const i32Shl = [0x74];
const i32ShrU = [0x76];
const i32Store = [0x36, 2, 0];
const f32ConvertI32S = [0xb2];
const f32Load = [0x2a, 2, 0];
const f32Store = (offset: number) => [0x38, 2, ...u32(offset)];
/** `local += n` */
const addTo = (i: number, n: number) => [...get(i), ...i32c(n), ...i32Add, ...set(i)];
/** `local + n` on the stack */
const plus = (i: number, n: number) => [...get(i), ...i32c(n), ...i32Add];

// SIMD instructions: 0xfd then the opcode as LEB128 (final numbering of the SIMD proposal, BinarySIMD.md).
const simd = (op: number, ...imm: number[]) => [0xfd, ...u32(op), ...imm];
const v128Load = (offset: number) => simd(0x00, 0, ...u32(offset)); // align 1: loads need not be aligned
const v128Store = simd(0x0b, 0, 0);
const v128Const = (bytes: Uint8Array) => simd(0x0c, ...bytes);
const shuffle = (lanes: number[]) => simd(0x0d, ...lanes);
const f32x4Splat = simd(0x13);
const f32x4ExtractLane0 = simd(0x1f, 0);
const i32x4GtU = simd(0x3c);
const i32x4GeU = simd(0x40);
const i32x4LtU = simd(0x3a);
const f32x4Eq = simd(0x41);
const f32x4Ne = simd(0x42);
const f32x4Lt = simd(0x43);
const f32x4Gt = simd(0x44);
const f32x4Ge = simd(0x46);
const v128And = simd(0x4e);
const v128AndNot = simd(0x4f);
const v128Or = simd(0x50);
/** bitselect(a, b, mask): a where mask bits are set, else b. */
const v128Bitselect = simd(0x52);
const store8Lane = (lane: number) => simd(0x58, 0, 0, lane);
const store32Lane = (lane: number) => simd(0x5a, 0, 0, lane);
const store32Lane0 = store32Lane(0);
const store64Lane = (lane: number) => simd(0x5b, 0, 0, lane);
const store64Lane0 = store64Lane(0);
const i8x16NarrowU = simd(0x66);
const i16x8NarrowU = simd(0x86);
const i16x8ShrU = simd(0x8d);
const i32x4Bitmask = simd(0xa4);
const i32x4Shl = simd(0xab);
const i32x4ShrU = simd(0xad);
const i32x4Add = simd(0xae);
const i32x4Sub = simd(0xb1);
const f32x4Abs = simd(0xe0);
const f32x4Neg = simd(0xe1);
const f32x4Add = simd(0xe4);
const f32x4Sub = simd(0xe5);
const f32x4Mul = simd(0xe6);
const f32x4Div = simd(0xe7);
const f32x4Pmin = simd(0xea);
const f32x4Pmax = simd(0xeb);

function f32x4(x: number): number[] {
  return v128Const(new Uint8Array(new Float32Array([x, x, x, x]).buffer));
}
function i32x4(x: number): number[] {
  return v128Const(new Uint8Array(new Int32Array([x, x, x, x]).buffer));
}
function i16x8(x: number): number[] {
  return v128Const(new Uint8Array(new Uint16Array(8).fill(x).buffer));
}
const range = (a: number, n: number) => Array.from({ length: n }, (_, i) => a + i);

/** 2^23: adding it to a float in [0, 2^22) rounds it to an integer (ties to even), left in the low mantissa bits. */
const MAGIC = 2 ** 23;

/** floor(x + 0.5) of the f32x4 in local x (each in [0, 2^22)), as floats: the 2^23 rounding, a tie sent up. */
function roundHalfUp(x: number, n: number): number[] {
  return [
    ...get(x), ...f32x4(MAGIC), ...f32x4Add, ...f32x4(MAGIC), ...f32x4Sub, ...tee(n),
    ...get(n), ...get(x), ...f32x4Sub, ...f32x4(-0.5), ...f32x4Eq, ...f32x4(1), ...v128And,
    ...f32x4Add,
  ];
}

/**
 * The codes of the four floats that `load` leaves on the stack, as i32x4, for the 1/scale and zero point in locals R
 * and Z (x, y: scratch): clamp(floor(fr(fr(v·R) + Z) + 0.5), 0, maxq). The clamp comes first (it commutes with
 * rounding to an integer); pmax(0, s) also sends NaN to 0. Adding 2^23 then rounds to an integer (ties to even) that
 * sits in the low mantissa bits; a tie that went down to even goes up instead: n − x = −0.5 exactly there (the
 * subtraction is exact), and subtracting that all-ones mask from the bits adds 1.
 */
function code(load: number[], maxq: number, R: number, Z: number, x: number, y: number): number[] {
  return [
    ...f32x4(0),
    ...load,
    ...get(R), ...f32x4Mul,
    ...get(Z), ...f32x4Add,
    ...f32x4Pmax, ...set(x),
    ...f32x4(maxq), ...get(x), ...f32x4Pmin, ...tee(x),
    ...f32x4(MAGIC), ...f32x4Add, ...tee(y),
    ...get(y), ...f32x4(MAGIC), ...f32x4Sub, ...get(x), ...f32x4Sub, ...f32x4(-0.5), ...f32x4Eq,
    ...i32x4Sub,
    ...i32x4(0xff), ...v128And,
  ];
}

/** Four i32x4 of values ≤ 255 (on the stack in order) as the sixteen bytes of one v128, in the same order. */
const bytesOf4 = (a: number[], b: number[], c: number[], d: number[]) => [
  ...a, ...b, ...i16x8NarrowU, ...c, ...d, ...i16x8NarrowU, ...i8x16NarrowU,
];

interface Fn {
  name: string;
  /** All i32. */
  params: number;
  /** Returns an i32. */
  result?: boolean;
  /** Extra locals, in order after the params. */
  locals: number[];
  body: number[];
}

// ---------------------------------------------------------------------------------------------------------------
// minmax(src, count, bs, mn, mx): for `count` contiguous blocks of bs floats (bs a multiple of 4) at byte address
// src, writes block i's min and max as f32 at mn + 4i and mx + 4i.
function minmaxFn(): Fn {
  const [src, count, bs, mnOut, mxOut, stop, mn, mx, v] = range(0, 9);
  const FLT_MAX = 3.4028234663852886e38;
  // Folds the four lanes of local `acc` with `op`; leaves lane 0 on the stack.
  const fold = (acc: number, op: number[]) => [
    ...get(acc), ...get(acc), ...get(acc), ...shuffle([...range(8, 8), ...range(0, 8)]), ...op, ...set(acc),
    ...get(acc), ...get(acc), ...get(acc), ...shuffle([...range(4, 4), ...range(0, 4), ...range(8, 8)]), ...op,
    ...f32x4ExtractLane0,
  ];
  return {
    name: 'minmax',
    params: 5,
    locals: [I32, V128, V128, V128],
    body: [
      ...block,
      ...loop,
      ...get(count), ...i32Eqz, ...brIf(1),
      ...f32x4(FLT_MAX), ...set(mn),
      ...f32x4(-FLT_MAX), ...set(mx),
      ...get(src), ...get(bs), ...i32c(2), ...i32Shl, ...i32Add, ...set(stop),
      ...loop,
      // mn = v < mn ? v : mn; mx = mx < v ? v : mx   (pmin(a, b) is b < a ? b : a; pmax(a, b) is a < b ? b : a)
      ...get(src), ...v128Load(0), ...set(v),
      ...get(mn), ...get(v), ...f32x4Pmin, ...set(mn),
      ...get(mx), ...get(v), ...f32x4Pmax, ...set(mx),
      ...get(src), ...i32c(16), ...i32Add, ...tee(src), ...get(stop), ...i32LtU, ...brIf(0),
      ...end,
      ...get(mnOut), ...fold(mn, f32x4Pmin), ...f32Store(0),
      ...get(mxOut), ...fold(mx, f32x4Pmax), ...f32Store(0),
      ...addTo(mnOut, 4),
      ...addTo(mxOut, 4),
      ...addTo(count, -1),
      ...br(0),
      ...end,
      ...end,
    ],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// params(mn, mx, count, recip, zp, scales, zps, stride, sym, f16, mid, maxq, redo) → how many to redo: uniform.ts's
// blockParams for `count` blocks (min and max f32 at mn + 4i, mx + 4i), four at a time in the same fp32 steps (each
// f32 operation rounds once, as fround of the double result does there). Block i gets its scale (f32) at
// scales + 4i·stride and its zero point (u8) at zps + i·stride, and [1/scale, zp] as f32 at recip + 4i, zp + 4i for
// the code pass. Blocks the code pass cannot do exactly get [0, 0] there and their index in the i32 list at redo. Works in
// whole groups of four: up to three blocks past `count` are computed (and written) from whatever follows.
function paramsFn(): Fn {
  const [mnIn, mxIn, count, recipOut, zpOut, scalesOut, zpsOut, stride, sym, f16, mid, maxq, redo] = range(0, 13);
  const [i, n, bits] = range(13, 3);
  const [mn, mx, scale, recip, zp, spec, lo, zf, x, sign, t, fmid, fmaxq] = range(16, 13);
  // fp32 → nearest fp16 (ties to even) → fp32, as roundToFloat16 (float32ToFloat16Bits) does it, on the bits.
  const roundToF16 = [
    ...get(scale), ...i32x4(0x80000000 | 0), ...v128And, ...set(sign),
    ...get(scale), ...i32x4(0x7fffffff), ...v128And, ...set(x),
    // ≥ 65536, Inf, NaN: Inf or a quiet NaN
    ...i32x4(0x7fc00000), ...i32x4(0x7f800000), ...get(x), ...i32x4(0x7f800000), ...i32x4GtU, ...v128Bitselect,
    // below fp16's smallest normal: adding 0.5 rounds to a multiple of 2^-24 (ties to even); subtracting is exact
    ...get(x), ...f32x4(0.5), ...f32x4Add, ...f32x4(0.5), ...f32x4Sub,
    // normal: round away the 13 low mantissa bits, ties to even; a carry to 65536 or more is Inf
    ...i32x4(0x7f800000),
    ...get(x), ...i32x4(0xfff), ...i32x4Add, ...get(x), ...i32c(13), ...i32x4ShrU, ...i32x4(1), ...v128And, ...i32x4Add,
    ...i32x4(0xffffe000 | 0), ...v128And, ...tee(t),
    ...get(t), ...i32x4(0x47800000), ...i32x4GeU, ...v128Bitselect,
    ...get(x), ...i32x4(0x38800000), ...i32x4LtU, ...v128Bitselect,
    ...get(x), ...i32x4(0x47800000), ...i32x4GeU, ...v128Bitselect,
    ...get(sign), ...v128Or, ...set(scale),
  ];
  const symmetric = [
    // m = |mx| > |mn| ? mx : mn; scale = −m / mid; zp = mid
    ...get(mx), ...get(mn), ...get(mx), ...f32x4Abs, ...get(mn), ...f32x4Abs, ...f32x4Gt, ...v128Bitselect,
    ...f32x4Neg, ...get(fmid), ...f32x4Div, ...set(scale),
    ...get(fmid), ...set(zp),
    // an all-zero block: its scale's sign is that of the block's first zero, which JS finds
    ...get(spec), ...get(mn), ...f32x4(0), ...f32x4Eq, ...get(mx), ...f32x4(0), ...f32x4Eq, ...v128And, ...v128Or, ...set(spec),
  ];
  const asymmetric = [
    // lo = mn < 0 ? mn : 0; hi = mx > 0 ? mx : 0; scale = (hi − lo) / maxq
    ...get(mn), ...f32x4(0), ...get(mn), ...f32x4(0), ...f32x4Lt, ...v128Bitselect, ...set(lo),
    ...get(mx), ...f32x4(0), ...get(mx), ...f32x4(0), ...f32x4Gt, ...v128Bitselect,
    ...get(lo), ...f32x4Sub, ...get(fmaxq), ...f32x4Div, ...set(scale),
    // zf = scale ≠ 0 ? −(lo / scale) : 0; zp = zf > maxq ? maxq : floor(zf + 0.5)
    ...get(lo), ...get(scale), ...f32x4Div, ...f32x4Neg, ...f32x4(0), ...get(scale), ...f32x4(0), ...f32x4Ne, ...v128Bitselect, ...set(zf),
    ...get(fmaxq), ...roundHalfUp(zf, t), ...get(zf), ...get(fmaxq), ...f32x4Gt, ...v128Bitselect, ...set(zp),
  ];
  // Appends block i + lane to the redo list when its lane of `bits` is set and it is one of the `count`.
  const noteRedo = (k: number) => [
    ...get(bits), ...i32c(k), ...i32ShrU, ...i32c(1), ...i32And, ...plus(i, k), ...get(count), ...i32LtU, ...i32And,
    ...ifThen([
      ...get(redo), ...get(n), ...i32c(2), ...i32Shl, ...i32Add, ...plus(i, k), ...i32Store,
      ...addTo(n, 1),
    ]),
  ];
  const at = (base: number, scale: number) => [...get(base), ...get(i), ...i32c(scale), ...i32Mul, ...i32Add];
  // Address of block i + k's scale (size 4) or zero point (size 1).
  const strided = (base: number, k: number, size: number) => [
    ...get(base), ...plus(i, k), ...get(stride), ...i32Mul, ...i32c(size), ...i32Mul, ...i32Add,
  ];
  return {
    name: 'params',
    params: 13,
    result: true,
    locals: [I32, I32, I32, ...new Array(13).fill(V128)],
    body: [
      ...get(mid), ...f32ConvertI32S, ...f32x4Splat, ...set(fmid),
      ...get(maxq), ...f32ConvertI32S, ...f32x4Splat, ...set(fmaxq),
      ...block,
      ...loop,
      ...get(i), ...get(count), ...i32GeU, ...brIf(1),
      ...at(mnIn, 4), ...v128Load(0), ...set(mn),
      ...at(mxIn, 4), ...v128Load(0), ...set(mx),
      // an infinite value
      ...get(mn), ...f32x4(-Infinity), ...f32x4Eq, ...get(mx), ...f32x4(Infinity), ...f32x4Eq, ...v128Or, ...set(spec),
      ...get(sym), ...ifElse(symmetric, asymmetric),
      ...get(f16), ...ifThen(roundToF16),
      // recip = scale ≠ 0 ? 1 / scale : 0; an infinite one (a subnormal scale) is JS's job too
      ...f32x4(1), ...get(scale), ...f32x4Div, ...f32x4(0), ...get(scale), ...f32x4(0), ...f32x4Ne, ...v128Bitselect, ...tee(recip),
      ...f32x4Abs, ...f32x4(Infinity), ...f32x4Ge, ...get(spec), ...v128Or, ...set(spec),
      ...range(0, 4).flatMap((k) => [...strided(scalesOut, k, 4), ...get(scale), ...store32Lane(k)]),
      // zero points as bytes: the integer in the low bits of zp + 2^23
      ...get(zp), ...f32x4(MAGIC), ...f32x4Add, ...set(t),
      ...range(0, 4).flatMap((k) => [...strided(zpsOut, k, 1), ...get(t), ...store8Lane(4 * k)]),
      ...at(recipOut, 4), ...get(recip), ...get(spec), ...v128AndNot, ...v128Store,
      ...at(zpOut, 4), ...get(zp), ...get(spec), ...v128AndNot, ...v128Store,
      ...get(spec), ...i32x4Bitmask, ...tee(bits),
      ...ifThen([...noteRedo(0), ...noteRedo(1), ...noteRedo(2), ...noteRedo(3)]),
      ...addTo(i, 4),
      ...br(0),
      ...end,
      ...end,
      ...get(n),
    ],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// codes<bits>(src, rows, perRow, bs, recip, zp, dst, dstStride): rows × perRow contiguous blocks of bs floats (bs a
// multiple of 16) at src; block i uses 1/scale and the zero point (f32) at recip + 4i, zp + 4i; the codes of a
// row's blocks are packed low bits first from dst + row·dstStride on.
function codesFn(bits: 2 | 4 | 8): Fn {
  const [src, rows, perRow, bs, recip, zp, dst, stride, o, left, stop, R, Z, x, y, w] = range(0, 16);
  const maxq = (1 << bits) - 1;
  const vec = (offset: number) => code([...get(src), ...v128Load(offset)], maxq, R, Z, x, y);
  const bytes16 = bytesOf4(vec(0), vec(16), vec(32), vec(48));
  // Packs adjacent byte pairs (a, b) into a | b << shift, halving the bytes: seen as u16 lanes a | b << 8,
  // (x | x >> (8 − shift)) & 0xff holds a | b << shift in its low byte (a < 2^shift so a >> (8 − shift) is 0).
  const pairs = (shift: number) => [
    ...tee(w), ...get(w), ...i32c(8 - shift), ...i16x8ShrU, ...v128Or,
    ...i16x8(0xff), ...v128And,
    ...tee(w), ...get(w), ...i8x16NarrowU,
  ];
  const store =
    bits === 8
      ? [...get(o), ...bytes16, ...v128Store, ...addTo(o, 16)]
      : bits === 4
        ? [...get(o), ...bytes16, ...pairs(4), ...store64Lane0, ...addTo(o, 8)]
        : [...get(o), ...bytes16, ...pairs(2), ...pairs(4), ...store32Lane0, ...addTo(o, 4)];
  return {
    name: `codes${bits}`,
    params: 8,
    locals: [I32, I32, I32, V128, V128, V128, V128, V128],
    body: [
      ...block,
      ...loop, // rows
      ...get(rows), ...i32Eqz, ...brIf(1),
      ...get(dst), ...set(o),
      ...get(perRow), ...set(left),
      ...block,
      ...loop, // blocks of the row
      ...get(left), ...i32Eqz, ...brIf(1),
      ...get(recip), ...f32Load, ...f32x4Splat, ...set(R),
      ...get(zp), ...f32Load, ...f32x4Splat, ...set(Z),
      ...addTo(recip, 4),
      ...addTo(zp, 4),
      ...get(src), ...get(bs), ...i32c(2), ...i32Shl, ...i32Add, ...set(stop),
      ...loop, // sixteen values at a time
      ...store,
      ...get(src), ...i32c(64), ...i32Add, ...tee(src), ...get(stop), ...i32LtU, ...brIf(0),
      ...end,
      ...addTo(left, -1),
      ...br(0),
      ...end,
      ...end,
      ...get(dst), ...get(stride), ...i32Add, ...set(dst),
      ...addTo(rows, -1),
      ...br(0),
      ...end,
      ...end,
    ],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// [K, N] data: blocks run down columns, so these kernels take a [rows, cols] tile of floats (cols a multiple of 4,
// rows = the block size) and give each SIMD lane a column. Every lane then sees its block in order, and four
// blocks' parameters are one vector.

// minmaxCols(src, rows, cols, mn, mx): column c's min and max as f32 at mn + 4c, mx + 4c.
function minmaxColsFn(): Fn {
  const [src, rows, cols, mnOut, mxOut, c, p, stop, rs, mn, mx, v] = range(0, 12);
  const FLT_MAX = 3.4028234663852886e38;
  return {
    name: 'minmaxCols',
    params: 5,
    locals: [I32, I32, I32, I32, V128, V128, V128],
    body: [
      ...get(cols), ...i32c(2), ...i32Shl, ...set(rs),
      ...block,
      ...loop,
      ...get(c), ...get(cols), ...i32GeU, ...brIf(1),
      ...f32x4(FLT_MAX), ...set(mn),
      ...f32x4(-FLT_MAX), ...set(mx),
      ...get(src), ...get(c), ...i32c(2), ...i32Shl, ...i32Add, ...tee(p),
      ...get(rows), ...get(rs), ...i32Mul, ...i32Add, ...set(stop),
      ...loop,
      ...get(p), ...v128Load(0), ...set(v),
      ...get(mn), ...get(v), ...f32x4Pmin, ...set(mn),
      ...get(mx), ...get(v), ...f32x4Pmax, ...set(mx),
      ...get(p), ...get(rs), ...i32Add, ...tee(p), ...get(stop), ...i32LtU, ...brIf(0),
      ...end,
      ...get(mnOut), ...get(c), ...i32c(2), ...i32Shl, ...i32Add, ...get(mn), ...v128Store,
      ...get(mxOut), ...get(c), ...i32c(2), ...i32Shl, ...i32Add, ...get(mx), ...v128Store,
      ...addTo(c, 4),
      ...br(0),
      ...end,
      ...end,
    ],
  };
}

// codesCols<bits>(src, rows, cols, recip, zp, dst, dstStride): column c's codes (1/scale and zero point as f32 at
// recip + 4c, zp + 4c), packed low bits first into the row at dst + c·dstStride. rows is a multiple of 16: each step
// takes sixteen rows of four columns, packs them along the column in the i32 lanes, then regroups bytes by column.
function codesColsFn(bits: 2 | 4 | 8): Fn {
  const [src, rows, cols, recip, zp, dst, stride, c, p, q, o, rs, r] = range(0, 13);
  const [R, Z, x, y, m0, m1, m2, m3, t0, t1, t2, t3] = range(13, 12);
  const maxq = (1 << bits) - 1;
  const vec = (j: number) => code([...get(p), ...get(rs), ...i32c(j), ...i32Mul, ...i32Add, ...v128Load(0)], maxq, R, Z, x, y);
  /** Rows j..j+per−1 packed: vec(j) | vec(j + 1) << bits | … (one byte per lane). */
  const packed = (j: number, per: number) => [
    ...vec(j),
    ...range(1, per - 1).flatMap((k) => [...vec(j + k), ...i32c(k * bits), ...i32x4Shl, ...v128Or]),
  ];
  /** Address of column c + k's output at byte o. */
  const out = (k: number) => [...get(q), ...get(stride), ...i32c(k), ...i32Mul, ...i32Add, ...get(o), ...i32Add];
  // Byte shuffles: [a0..3 b0..3 c0..3 d0..3] → [a0 b0 c0 d0 a1 b1 …] (a 4×4 byte transpose), and the same over two
  // vectors for eight bytes per column.
  const T4 = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15];
  const T8lo = [0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29];
  const T8hi = [2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31];
  const LO32 = [0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23];
  const HI32 = [8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31];
  const LO64 = [...range(0, 8), ...range(16, 8)];
  const HI64 = [...range(8, 8), ...range(24, 8)];
  let step: number[];
  if (bits === 2) {
    // four bytes per column
    step = [
      ...bytesOf4(packed(0, 4), packed(4, 4), packed(8, 4), packed(12, 4)), ...set(m0),
      ...get(m0), ...get(m0), ...shuffle(T4), ...set(m0),
      ...range(0, 4).flatMap((k) => [...out(k), ...get(m0), ...store32Lane(k)]),
    ];
  } else if (bits === 4) {
    // eight bytes per column
    step = [
      ...bytesOf4(packed(0, 2), packed(2, 2), packed(4, 2), packed(6, 2)), ...set(m0),
      ...bytesOf4(packed(8, 2), packed(10, 2), packed(12, 2), packed(14, 2)), ...set(m1),
      ...get(m0), ...get(m1), ...shuffle(T8lo), ...set(t0),
      ...get(m0), ...get(m1), ...shuffle(T8hi), ...set(t1),
      ...out(0), ...get(t0), ...store64Lane(0),
      ...out(1), ...get(t0), ...store64Lane(1),
      ...out(2), ...get(t1), ...store64Lane(0),
      ...out(3), ...get(t1), ...store64Lane(1),
    ];
  } else {
    // sixteen bytes per column: four 4×4 byte transposes, then a 4×4 transpose of their 32-bit lanes
    const m = [m0, m1, m2, m3];
    step = [
      ...range(0, 4).flatMap((k) => [...bytesOf4(vec(4 * k), vec(4 * k + 1), vec(4 * k + 2), vec(4 * k + 3)), ...set(m[k])]),
      ...m.flatMap((mk) => [...get(mk), ...get(mk), ...shuffle(T4), ...set(mk)]),
      ...get(m0), ...get(m1), ...shuffle(LO32), ...set(t0),
      ...get(m0), ...get(m1), ...shuffle(HI32), ...set(t1),
      ...get(m2), ...get(m3), ...shuffle(LO32), ...set(t2),
      ...get(m2), ...get(m3), ...shuffle(HI32), ...set(t3),
      ...out(0), ...get(t0), ...get(t2), ...shuffle(LO64), ...v128Store,
      ...out(1), ...get(t0), ...get(t2), ...shuffle(HI64), ...v128Store,
      ...out(2), ...get(t1), ...get(t3), ...shuffle(LO64), ...v128Store,
      ...out(3), ...get(t1), ...get(t3), ...shuffle(HI64), ...v128Store,
    ];
  }
  return {
    name: `codesCols${bits}`,
    params: 7,
    locals: [I32, I32, I32, I32, I32, I32, ...new Array(12).fill(V128)],
    body: [
      ...get(cols), ...i32c(2), ...i32Shl, ...set(rs),
      ...block,
      ...loop, // four columns at a time
      ...get(c), ...get(cols), ...i32GeU, ...brIf(1),
      ...get(recip), ...get(c), ...i32c(2), ...i32Shl, ...i32Add, ...v128Load(0), ...set(R),
      ...get(zp), ...get(c), ...i32c(2), ...i32Shl, ...i32Add, ...v128Load(0), ...set(Z),
      ...get(src), ...get(c), ...i32c(2), ...i32Shl, ...i32Add, ...set(p),
      ...get(dst), ...get(c), ...get(stride), ...i32Mul, ...i32Add, ...set(q),
      ...i32c(0), ...set(o),
      ...i32c(0), ...set(r),
      ...block,
      ...loop, // sixteen rows at a time
      ...get(r), ...get(rows), ...i32GeU, ...brIf(1),
      ...step,
      ...get(p), ...get(rs), ...i32c(4), ...i32Shl, ...i32Add, ...set(p),
      ...addTo(o, 2 * bits),
      ...addTo(r, 16),
      ...br(0),
      ...end,
      ...end,
      ...addTo(c, 4),
      ...br(0),
      ...end,
      ...end,
    ],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Module assembly

function section(id: number, content: number[]): number[] {
  return [id, ...u32(content.length), ...content];
}
const vec = (items: number[][]) => [...u32(items.length), ...items.flat()];
const name = (s: string) => vec([...s].map((ch) => [ch.charCodeAt(0)]));

function assemble(fns: Fn[]): Uint8Array {
  const types = fns.map((f) => [0x60, ...vec(new Array(f.params).fill([I32])), ...vec(f.result ? [[I32]] : [])]);
  const bodies = fns.map((f) => {
    // Locals as runs of one type.
    const runs: number[][] = [];
    for (const t of f.locals) {
      const last = runs[runs.length - 1];
      if (last && last[1] === t) last[0]++;
      else runs.push([1, t]);
    }
    const code = [...vec(runs.map(([count, t]) => [...u32(count), t])), ...f.body, ...end];
    return [...u32(code.length), ...code];
  });
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec(types)),
    ...section(3, vec(fns.map((_, i) => u32(i)))),
    ...section(5, vec([[0x00, 1]])), // one memory, at least one page, grown on demand
    ...section(7, vec([...fns.map((f, i) => [...name(f.name), 0x00, ...u32(i)]), [...name('memory'), 0x02, 0]])),
    ...section(10, vec(bodies)),
  ]);
}

type I32Fn = (...args: number[]) => number;

/** The kernels over one WebAssembly memory; addresses are in bytes (see each function above for its layout). */
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
}

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
  const bytes = assemble([
    minmaxFn(),
    paramsFn(),
    codesFn(2),
    codesFn(4),
    codesFn(8),
    minmaxColsFn(),
    codesColsFn(2),
    codesColsFn(4),
    codesColsFn(8),
  ]);
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
    params: (mn, mx, count, recip, zp, scales, zps, stride, sym, f16, bits, redo) =>
      e.params(mn, mx, count, recip, zp, scales, zps, stride, +sym, +f16, 1 << (bits - 1), (1 << bits) - 1, redo),
    codes: (bits, ...args) => codes[bits](...args),
    minmaxCols: e.minmaxCols,
    codesCols: (bits, ...args) => codesCols[bits](...args),
  };
}
