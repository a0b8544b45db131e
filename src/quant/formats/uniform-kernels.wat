;; WebAssembly SIMD kernels behind uniform.ts's round-to-nearest quantizer (block min/max, scales and zero points,
;; codes packed to 2, 4 or 8 bits). scripts/build-wasm.ts compiles this to uniform-kernels.wasm, which
;; uniform-simd.ts loads (one instance per thread); test/quant/wasm-kernels.test.ts checks the two match.
;;
;; Why WebAssembly: the exact arithmetic is fp32 (fr(fr(w·(1/scale)) + zp)), which plain JS can only emulate with
;; Math.fround, two float↔double conversions per rounding; f32x4 does it natively, four values at a time.
;; Exactness against uniform.ts's scalar code, lane by lane:
;; - min/max use f32x4.pmin/pmax, which are exactly `v < mn ? v : mn` / `mx < v ? v : mx` (NaN never wins). Only
;;   the sign of a zero extreme can differ, where [N, K] blocks' lanes are combined out of order; params hands the
;;   one block where that matters (symmetric, all zero) back to JS.
;; - block parameters: the same fp32 operations as blockParams, and roundToFloat16's rounding on the bits.
;; - codes: f32x4.mul and f32x4.add round once, as fround of the exact double product / sum does. JS then clamps
;;   ToInt32(s + 0.5), i.e. floor(s + 0.5) for finite s, to [0, maxq]; here s is clamped first and rounded half up
;;   (below). NaN gives 0 both ways; ±Infinity would not (JS gives 0 for both), so params hands blocks with a
;;   non-finite 1/scale or value back to JS.
;;
;; The code of a value (written out in full wherever a codes function needs one, so that nothing depends on the
;; engine inlining a call): with 1/scale and the zero point in $R and $Z,
;;   x = pmin(maxq, pmax(0, fr(fr(v·R) + Z)))     the clamp comes first (it commutes with rounding to an
;;                                                 integer); pmax(0, s) also sends NaN to 0
;;   y = x + 2^23                                  rounds x (in [0, 255]) to an integer (ties to even), left in the
;;                                                 low mantissa bits
;;   code = (y − (y − 2^23 − x == −0.5)) & 0xff    a tie that went down to even goes up instead: y − 2^23 − x is
;;                                                 −0.5 exactly there (the subtraction is exact), and subtracting
;;                                                 that all-ones mask from the bits adds 1
;;
;; Memory: one exported memory of at least one page, grown by uniform-simd.ts on demand; all addresses are byte
;; addresses and each function's comment gives its layout (uniform.ts stages data in and out). Loads and stores of
;; v128 and lanes say align=1: they need not be aligned.
(module
  ;; minmax(src, count, bs, mnAt, mxAt): for `count` contiguous blocks of bs floats (bs a multiple of 4) at byte
  ;; address src, writes block i's min and max as f32 at mnAt + 4i and mxAt + 4i.
  (func $minmax (export "minmax")
    (param $src i32) (param $count i32) (param $bs i32) (param $mnAt i32) (param $mxAt i32)
    (local $stop i32) (local $mn v128) (local $mx v128) (local $v v128)
    (block $done
      (loop $block
        (br_if $done (i32.eqz (local.get $count)))
        (local.set $mn (v128.const f32x4 0x1.fffffep+127 0x1.fffffep+127 0x1.fffffep+127 0x1.fffffep+127))
        (local.set $mx (v128.const f32x4 -0x1.fffffep+127 -0x1.fffffep+127 -0x1.fffffep+127 -0x1.fffffep+127))
        (local.set $stop (i32.add (local.get $src) (i32.shl (local.get $bs) (i32.const 2))))
        (loop $four
          ;; mn = v < mn ? v : mn; mx = mx < v ? v : mx (pmin(a, b) is b < a ? b : a; pmax(a, b) is a < b ? b : a),
          ;; exactly the scalar comparisons, so NaN never wins
          (local.set $v (v128.load align=1 (local.get $src)))
          (local.set $mn (f32x4.pmin (local.get $mn) (local.get $v)))
          (local.set $mx (f32x4.pmax (local.get $mx) (local.get $v)))
          (br_if $four (i32.lt_u (local.tee $src (i32.add (local.get $src) (i32.const 16))) (local.get $stop))))
        ;; fold the four lanes (upper half onto lower, then lane 1 onto lane 0); lanes combine out of order here, which
        ;; can only change the sign of a zero extreme (params hands the one block where that matters back to JS)
        local.get $mnAt
        (local.set $mn (f32x4.pmin (local.get $mn) (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $mn) (local.get $mn))))
        (f32x4.extract_lane 0 (f32x4.pmin (local.get $mn) (i8x16.shuffle 4 5 6 7 0 1 2 3 8 9 10 11 12 13 14 15 (local.get $mn) (local.get $mn))))
        f32.store
        local.get $mxAt
        (local.set $mx (f32x4.pmax (local.get $mx) (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $mx) (local.get $mx))))
        (f32x4.extract_lane 0 (f32x4.pmax (local.get $mx) (i8x16.shuffle 4 5 6 7 0 1 2 3 8 9 10 11 12 13 14 15 (local.get $mx) (local.get $mx))))
        f32.store
        (local.set $mnAt (i32.add (local.get $mnAt) (i32.const 4)))
        (local.set $mxAt (i32.add (local.get $mxAt) (i32.const 4)))
        (local.set $count (i32.add (local.get $count) (i32.const -1)))
        (br $block))))

  ;; params(mnAt, mxAt, count, recipAt, zpAt, scalesAt, zpsAt, stride, sym, f16, mid, maxq, redo) → how many to
  ;; redo: uniform.ts's blockParams for `count` blocks (min and max f32 at mnAt + 4i, mxAt + 4i), four at a time in
  ;; the same fp32 steps (each f32 operation rounds once, as fround of the double result does there). Block i gets
  ;; its scale (f32) at scalesAt + 4i·stride and its zero point (u8) at zpsAt + i·stride, and [1/scale, zp] as f32
  ;; at recipAt + 4i, zpAt + 4i for the code pass. Blocks the code pass cannot do exactly get [0, 0] there and
  ;; their index in the i32 list at redo. Works in whole groups of four: up to three blocks past `count` are
  ;; computed (and written) from whatever follows. mid = 2^(bits−1), maxq = 2^bits − 1.
  (func $params (export "params")
    (param $mnAt i32) (param $mxAt i32) (param $count i32) (param $recipAt i32) (param $zpAt i32)
    (param $scalesAt i32) (param $zpsAt i32) (param $stride i32) (param $sym i32) (param $f16 i32)
    (param $mid i32) (param $maxq i32) (param $redo i32)
    (result i32)
    (local $i i32) (local $n i32) (local $bits i32)
    (local $mn v128) (local $mx v128) (local $scale v128) (local $recip v128) (local $zp v128) (local $spec v128)
    (local $lo v128) (local $zf v128) (local $x v128) (local $sign v128) (local $t v128) (local $fmid v128) (local $fmaxq v128)
    (local.set $fmid (f32x4.splat (f32.convert_i32_s (local.get $mid))))
    (local.set $fmaxq (f32x4.splat (f32.convert_i32_s (local.get $maxq))))
    (block $done
      (loop $four
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $mn (v128.load align=1 (i32.add (local.get $mnAt) (i32.mul (local.get $i) (i32.const 4)))))
        (local.set $mx (v128.load align=1 (i32.add (local.get $mxAt) (i32.mul (local.get $i) (i32.const 4)))))
        ;; spec: lanes JS must do. First, an infinite value (its codes would not match JS's ToInt32)
        (local.set $spec (v128.or (f32x4.eq (local.get $mn) (v128.const f32x4 -inf -inf -inf -inf)) (f32x4.eq (local.get $mx) (v128.const f32x4 inf inf inf inf))))
        (if (local.get $sym)
          (then
            ;; symmetric: m = |mx| > |mn| ? mx : mn; scale = −m / mid; zp = mid
            (local.set $scale
              (f32x4.div
                (f32x4.neg (v128.bitselect (local.get $mx) (local.get $mn) (f32x4.gt (f32x4.abs (local.get $mx)) (f32x4.abs (local.get $mn)))))
                (local.get $fmid)))
            (local.set $zp (local.get $fmid))
            ;; an all-zero block: its scale's sign is that of the block's first zero, which only JS finds (min/max lose
            ;; the order of zeros)
            (local.set $spec (v128.or (local.get $spec) (v128.and (f32x4.eq (local.get $mn) (v128.const f32x4 0 0 0 0)) (f32x4.eq (local.get $mx) (v128.const f32x4 0 0 0 0)))))
          )
          (else
            ;; asymmetric: lo = mn < 0 ? mn : 0; hi = mx > 0 ? mx : 0; scale = (hi − lo) / maxq
            (local.set $lo (v128.bitselect (local.get $mn) (v128.const f32x4 0 0 0 0) (f32x4.lt (local.get $mn) (v128.const f32x4 0 0 0 0))))
            (local.set $scale
              (f32x4.div
                (f32x4.sub (v128.bitselect (local.get $mx) (v128.const f32x4 0 0 0 0) (f32x4.gt (local.get $mx) (v128.const f32x4 0 0 0 0))) (local.get $lo))
                (local.get $fmaxq)))
            ;; zf = scale ≠ 0 ? −(lo / scale) : 0; zp = zf > maxq ? maxq : floor(zf + 0.5)
            (local.set $zf (v128.bitselect (f32x4.neg (f32x4.div (local.get $lo) (local.get $scale))) (v128.const f32x4 0 0 0 0) (f32x4.ne (local.get $scale) (v128.const f32x4 0 0 0 0))))
            (local.set $zp
              (v128.bitselect
                (local.get $fmaxq)
                ;; floor(zf + 0.5) for zf in [0, 2^22): adding 2^23 rounds to an integer (ties to even) and subtracting it
                ;; again is exact; where that was a tie sent down to even, t − zf = −0.5 exactly and the tie goes up by 1
                (f32x4.add
                  (local.tee $t (f32x4.sub (f32x4.add (local.get $zf) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
                  (v128.and (f32x4.eq (f32x4.sub (local.get $t) (local.get $zf)) (v128.const f32x4 -0.5 -0.5 -0.5 -0.5)) (v128.const f32x4 1 1 1 1)))
                (f32x4.gt (local.get $zf) (local.get $fmaxq))))
          ))
        (if (local.get $f16)
          (then
            ;; fp32 → nearest fp16 (ties to even) → fp32, as roundToFloat16 (float32ToFloat16Bits) does it, on the bits:
            ;; sign apart, x = |scale| as bits
            (local.set $sign (v128.and (local.get $scale) (v128.const i32x4 0x80000000 0x80000000 0x80000000 0x80000000)))
            (local.set $x (v128.and (local.get $scale) (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff)))
            (local.set $scale
              (v128.or
                (v128.bitselect
                  ;; ≥ 65536, Inf, NaN: Inf or a quiet NaN
                  (v128.bitselect (v128.const i32x4 0x7fc00000 0x7fc00000 0x7fc00000 0x7fc00000) (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000) (i32x4.gt_u (local.get $x) (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000)))
                  (v128.bitselect
                    ;; below fp16's smallest normal: adding 0.5 rounds to a multiple of 2^−24 (ties to even); subtracting is exact
                    (f32x4.sub (f32x4.add (local.get $x) (v128.const f32x4 0.5 0.5 0.5 0.5)) (v128.const f32x4 0.5 0.5 0.5 0.5))
                    ;; normal: round away the 13 low mantissa bits, ties to even; a carry to 65536 or more is Inf
                    (v128.bitselect
                      (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000)
                      (local.tee $t
                        (v128.and
                          (i32x4.add (i32x4.add (local.get $x) (v128.const i32x4 0xfff 0xfff 0xfff 0xfff)) (v128.and (i32x4.shr_u (local.get $x) (i32.const 13)) (v128.const i32x4 1 1 1 1)))
                          (v128.const i32x4 0xffffe000 0xffffe000 0xffffe000 0xffffe000)))
                      (i32x4.ge_u (local.get $t) (v128.const i32x4 0x47800000 0x47800000 0x47800000 0x47800000)))
                    (i32x4.lt_u (local.get $x) (v128.const i32x4 0x38800000 0x38800000 0x38800000 0x38800000)))
                  (i32x4.ge_u (local.get $x) (v128.const i32x4 0x47800000 0x47800000 0x47800000 0x47800000)))
                (local.get $sign)))
          ))
        ;; recip = scale ≠ 0 ? 1 / scale : 0; an infinite one (a subnormal scale) is JS's job too
        (local.set $spec
          (v128.or
            (f32x4.ge
              (f32x4.abs (local.tee $recip (v128.bitselect (f32x4.div (v128.const f32x4 1 1 1 1) (local.get $scale)) (v128.const f32x4 0 0 0 0) (f32x4.ne (local.get $scale) (v128.const f32x4 0 0 0 0)))))
              (v128.const f32x4 inf inf inf inf))
            (local.get $spec)))
        (v128.store32_lane align=1 0 (i32.add (local.get $scalesAt) (i32.mul (i32.mul (i32.add (local.get $i) (i32.const 0)) (local.get $stride)) (i32.const 4))) (local.get $scale))
        (v128.store32_lane align=1 1 (i32.add (local.get $scalesAt) (i32.mul (i32.mul (i32.add (local.get $i) (i32.const 1)) (local.get $stride)) (i32.const 4))) (local.get $scale))
        (v128.store32_lane align=1 2 (i32.add (local.get $scalesAt) (i32.mul (i32.mul (i32.add (local.get $i) (i32.const 2)) (local.get $stride)) (i32.const 4))) (local.get $scale))
        (v128.store32_lane align=1 3 (i32.add (local.get $scalesAt) (i32.mul (i32.mul (i32.add (local.get $i) (i32.const 3)) (local.get $stride)) (i32.const 4))) (local.get $scale))
        ;; zero points as bytes: the integer in the low bits of zp + 2^23
        (local.set $t (f32x4.add (local.get $zp) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
        (v128.store8_lane 0 (i32.add (local.get $zpsAt) (i32.mul (i32.mul (i32.add (local.get $i) (i32.const 0)) (local.get $stride)) (i32.const 1))) (local.get $t))
        (v128.store8_lane 4 (i32.add (local.get $zpsAt) (i32.mul (i32.mul (i32.add (local.get $i) (i32.const 1)) (local.get $stride)) (i32.const 1))) (local.get $t))
        (v128.store8_lane 8 (i32.add (local.get $zpsAt) (i32.mul (i32.mul (i32.add (local.get $i) (i32.const 2)) (local.get $stride)) (i32.const 1))) (local.get $t))
        (v128.store8_lane 12 (i32.add (local.get $zpsAt) (i32.mul (i32.mul (i32.add (local.get $i) (i32.const 3)) (local.get $stride)) (i32.const 1))) (local.get $t))
        ;; [1/scale, zp] for the code pass, [0, 0] for the blocks JS redoes
        (v128.store align=1 (i32.add (local.get $recipAt) (i32.mul (local.get $i) (i32.const 4))) (v128.andnot (local.get $recip) (local.get $spec)))
        (v128.store align=1 (i32.add (local.get $zpAt) (i32.mul (local.get $i) (i32.const 4))) (v128.andnot (local.get $zp) (local.get $spec)))
        ;; lists block i + k at redo when its lane of spec is set and it is one of the `count`
        (if (local.tee $bits (i32x4.bitmask (local.get $spec)))
          (then
            (if (i32.and (i32.and (i32.shr_u (local.get $bits) (i32.const 0)) (i32.const 1)) (i32.lt_u (i32.add (local.get $i) (i32.const 0)) (local.get $count)))
              (then
                (i32.store (i32.add (local.get $redo) (i32.shl (local.get $n) (i32.const 2))) (i32.add (local.get $i) (i32.const 0)))
                (local.set $n (i32.add (local.get $n) (i32.const 1)))))
            (if (i32.and (i32.and (i32.shr_u (local.get $bits) (i32.const 1)) (i32.const 1)) (i32.lt_u (i32.add (local.get $i) (i32.const 1)) (local.get $count)))
              (then
                (i32.store (i32.add (local.get $redo) (i32.shl (local.get $n) (i32.const 2))) (i32.add (local.get $i) (i32.const 1)))
                (local.set $n (i32.add (local.get $n) (i32.const 1)))))
            (if (i32.and (i32.and (i32.shr_u (local.get $bits) (i32.const 2)) (i32.const 1)) (i32.lt_u (i32.add (local.get $i) (i32.const 2)) (local.get $count)))
              (then
                (i32.store (i32.add (local.get $redo) (i32.shl (local.get $n) (i32.const 2))) (i32.add (local.get $i) (i32.const 2)))
                (local.set $n (i32.add (local.get $n) (i32.const 1)))))
            (if (i32.and (i32.and (i32.shr_u (local.get $bits) (i32.const 3)) (i32.const 1)) (i32.lt_u (i32.add (local.get $i) (i32.const 3)) (local.get $count)))
              (then
                (i32.store (i32.add (local.get $redo) (i32.shl (local.get $n) (i32.const 2))) (i32.add (local.get $i) (i32.const 3)))
                (local.set $n (i32.add (local.get $n) (i32.const 1)))))
          ))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $four)))
    (local.get $n))

  ;; codes<bits>(src, rows, perRow, bs, recip, zp, dst, stride): rows × perRow contiguous blocks of bs floats (bs a
  ;; multiple of 16) at src; block i uses 1/scale and the zero point (f32) at recip + 4i, zp + 4i; the codes of a
  ;; row's blocks are packed low bits first from dst + row·stride on. Each step codes sixteen values (see "The
  ;; code of a value" above) and narrows the four i32x4 to sixteen bytes, in order; codes2 and codes4 then pack
  ;; adjacent bytes together. codes2: four codes a byte.
  (func $codes2 (export "codes2")
    (param $src i32) (param $rows i32) (param $perRow i32) (param $bs i32) (param $recip i32) (param $zp i32)
    (param $dst i32) (param $stride i32)
    (local $o i32) (local $left i32) (local $stop i32) (local $R v128) (local $Z v128) (local $x v128) (local $y v128) (local $w v128)
    (block $done
      (loop $row
        (br_if $done (i32.eqz (local.get $rows)))
        (local.set $o (local.get $dst))
        (local.set $left (local.get $perRow))
        (block $rowDone
          (loop $block
            (br_if $rowDone (i32.eqz (local.get $left)))
            (local.set $R (f32x4.splat (f32.load (local.get $recip))))
            (local.set $Z (f32x4.splat (f32.load (local.get $zp))))
            (local.set $recip (i32.add (local.get $recip) (i32.const 4)))
            (local.set $zp (i32.add (local.get $zp) (i32.const 4)))
            (local.set $stop (i32.add (local.get $src) (i32.shl (local.get $bs) (i32.const 2))))
            (loop $sixteen
              local.get $o
              ;; codes of the floats at src + 0
              (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                        (f32x4.add (f32x4.mul (v128.load offset=0 align=1 (local.get $src)) (local.get $R)) (local.get $Z))))
              (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 3 3 3 3) (local.get $x)))
                                       (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
              (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                        (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
              i32x4.sub
              (v128.const i32x4 0xff 0xff 0xff 0xff)
              v128.and
              ;; codes of the floats at src + 16
              (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                        (f32x4.add (f32x4.mul (v128.load offset=16 align=1 (local.get $src)) (local.get $R)) (local.get $Z))))
              (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 3 3 3 3) (local.get $x)))
                                       (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
              (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                        (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
              i32x4.sub
              (v128.const i32x4 0xff 0xff 0xff 0xff)
              v128.and
              i16x8.narrow_i32x4_u
              ;; codes of the floats at src + 32
              (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                        (f32x4.add (f32x4.mul (v128.load offset=32 align=1 (local.get $src)) (local.get $R)) (local.get $Z))))
              (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 3 3 3 3) (local.get $x)))
                                       (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
              (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                        (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
              i32x4.sub
              (v128.const i32x4 0xff 0xff 0xff 0xff)
              v128.and
              ;; codes of the floats at src + 48
              (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                        (f32x4.add (f32x4.mul (v128.load offset=48 align=1 (local.get $src)) (local.get $R)) (local.get $Z))))
              (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 3 3 3 3) (local.get $x)))
                                       (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
              (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                        (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
              i32x4.sub
              (v128.const i32x4 0xff 0xff 0xff 0xff)
              v128.and
              i16x8.narrow_i32x4_u
              i8x16.narrow_i16x8_u
              ;; packs adjacent byte pairs (a, b) into a | b << 2, halving the bytes: seen as u16 lanes a | b << 8,
              ;; (x | x >> 6) & 0xff holds a | b << 2 in its low byte (a < 4 so a >> 6 is 0)
              local.tee $w
              (i16x8.shr_u (local.get $w) (i32.const 6))
              v128.or
              (v128.const i16x8 0xff 0xff 0xff 0xff 0xff 0xff 0xff 0xff)
              v128.and
              local.tee $w
              local.get $w
              i8x16.narrow_i16x8_u
              ;; packs adjacent byte pairs (a, b) into a | b << 4, halving the bytes: seen as u16 lanes a | b << 8,
              ;; (x | x >> 4) & 0xff holds a | b << 4 in its low byte (a < 16 so a >> 4 is 0)
              local.tee $w
              (i16x8.shr_u (local.get $w) (i32.const 4))
              v128.or
              (v128.const i16x8 0xff 0xff 0xff 0xff 0xff 0xff 0xff 0xff)
              v128.and
              local.tee $w
              local.get $w
              i8x16.narrow_i16x8_u
              v128.store32_lane align=1 0
              (local.set $o (i32.add (local.get $o) (i32.const 4)))
              (br_if $sixteen (i32.lt_u (local.tee $src (i32.add (local.get $src) (i32.const 64))) (local.get $stop))))
            (local.set $left (i32.add (local.get $left) (i32.const -1)))
            (br $block)))
        (local.set $dst (i32.add (local.get $dst) (local.get $stride)))
        (local.set $rows (i32.add (local.get $rows) (i32.const -1)))
        (br $row))))

  ;; codes4: two codes a byte, as codes2
  (func $codes4 (export "codes4")
    (param $src i32) (param $rows i32) (param $perRow i32) (param $bs i32) (param $recip i32) (param $zp i32)
    (param $dst i32) (param $stride i32)
    (local $o i32) (local $left i32) (local $stop i32) (local $R v128) (local $Z v128) (local $x v128) (local $y v128) (local $w v128)
    (block $done
      (loop $row
        (br_if $done (i32.eqz (local.get $rows)))
        (local.set $o (local.get $dst))
        (local.set $left (local.get $perRow))
        (block $rowDone
          (loop $block
            (br_if $rowDone (i32.eqz (local.get $left)))
            (local.set $R (f32x4.splat (f32.load (local.get $recip))))
            (local.set $Z (f32x4.splat (f32.load (local.get $zp))))
            (local.set $recip (i32.add (local.get $recip) (i32.const 4)))
            (local.set $zp (i32.add (local.get $zp) (i32.const 4)))
            (local.set $stop (i32.add (local.get $src) (i32.shl (local.get $bs) (i32.const 2))))
            (loop $sixteen
              local.get $o
              ;; codes of the floats at src + 0
              (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                        (f32x4.add (f32x4.mul (v128.load offset=0 align=1 (local.get $src)) (local.get $R)) (local.get $Z))))
              (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 15 15 15 15) (local.get $x)))
                                       (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
              (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                        (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
              i32x4.sub
              (v128.const i32x4 0xff 0xff 0xff 0xff)
              v128.and
              ;; codes of the floats at src + 16
              (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                        (f32x4.add (f32x4.mul (v128.load offset=16 align=1 (local.get $src)) (local.get $R)) (local.get $Z))))
              (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 15 15 15 15) (local.get $x)))
                                       (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
              (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                        (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
              i32x4.sub
              (v128.const i32x4 0xff 0xff 0xff 0xff)
              v128.and
              i16x8.narrow_i32x4_u
              ;; codes of the floats at src + 32
              (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                        (f32x4.add (f32x4.mul (v128.load offset=32 align=1 (local.get $src)) (local.get $R)) (local.get $Z))))
              (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 15 15 15 15) (local.get $x)))
                                       (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
              (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                        (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
              i32x4.sub
              (v128.const i32x4 0xff 0xff 0xff 0xff)
              v128.and
              ;; codes of the floats at src + 48
              (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                        (f32x4.add (f32x4.mul (v128.load offset=48 align=1 (local.get $src)) (local.get $R)) (local.get $Z))))
              (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 15 15 15 15) (local.get $x)))
                                       (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
              (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                        (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
              i32x4.sub
              (v128.const i32x4 0xff 0xff 0xff 0xff)
              v128.and
              i16x8.narrow_i32x4_u
              i8x16.narrow_i16x8_u
              ;; packs adjacent byte pairs (a, b) into a | b << 4, halving the bytes: seen as u16 lanes a | b << 8,
              ;; (x | x >> 4) & 0xff holds a | b << 4 in its low byte (a < 16 so a >> 4 is 0)
              local.tee $w
              (i16x8.shr_u (local.get $w) (i32.const 4))
              v128.or
              (v128.const i16x8 0xff 0xff 0xff 0xff 0xff 0xff 0xff 0xff)
              v128.and
              local.tee $w
              local.get $w
              i8x16.narrow_i16x8_u
              v128.store64_lane align=1 0
              (local.set $o (i32.add (local.get $o) (i32.const 8)))
              (br_if $sixteen (i32.lt_u (local.tee $src (i32.add (local.get $src) (i32.const 64))) (local.get $stop))))
            (local.set $left (i32.add (local.get $left) (i32.const -1)))
            (br $block)))
        (local.set $dst (i32.add (local.get $dst) (local.get $stride)))
        (local.set $rows (i32.add (local.get $rows) (i32.const -1)))
        (br $row))))

  ;; codes8: one code a byte, as codes2
  (func $codes8 (export "codes8")
    (param $src i32) (param $rows i32) (param $perRow i32) (param $bs i32) (param $recip i32) (param $zp i32)
    (param $dst i32) (param $stride i32)
    (local $o i32) (local $left i32) (local $stop i32) (local $R v128) (local $Z v128) (local $x v128) (local $y v128) (local $w v128)
    (block $done
      (loop $row
        (br_if $done (i32.eqz (local.get $rows)))
        (local.set $o (local.get $dst))
        (local.set $left (local.get $perRow))
        (block $rowDone
          (loop $block
            (br_if $rowDone (i32.eqz (local.get $left)))
            (local.set $R (f32x4.splat (f32.load (local.get $recip))))
            (local.set $Z (f32x4.splat (f32.load (local.get $zp))))
            (local.set $recip (i32.add (local.get $recip) (i32.const 4)))
            (local.set $zp (i32.add (local.get $zp) (i32.const 4)))
            (local.set $stop (i32.add (local.get $src) (i32.shl (local.get $bs) (i32.const 2))))
            (loop $sixteen
              local.get $o
              ;; codes of the floats at src + 0
              (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                        (f32x4.add (f32x4.mul (v128.load offset=0 align=1 (local.get $src)) (local.get $R)) (local.get $Z))))
              (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 255 255 255 255) (local.get $x)))
                                       (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
              (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                        (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
              i32x4.sub
              (v128.const i32x4 0xff 0xff 0xff 0xff)
              v128.and
              ;; codes of the floats at src + 16
              (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                        (f32x4.add (f32x4.mul (v128.load offset=16 align=1 (local.get $src)) (local.get $R)) (local.get $Z))))
              (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 255 255 255 255) (local.get $x)))
                                       (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
              (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                        (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
              i32x4.sub
              (v128.const i32x4 0xff 0xff 0xff 0xff)
              v128.and
              i16x8.narrow_i32x4_u
              ;; codes of the floats at src + 32
              (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                        (f32x4.add (f32x4.mul (v128.load offset=32 align=1 (local.get $src)) (local.get $R)) (local.get $Z))))
              (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 255 255 255 255) (local.get $x)))
                                       (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
              (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                        (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
              i32x4.sub
              (v128.const i32x4 0xff 0xff 0xff 0xff)
              v128.and
              ;; codes of the floats at src + 48
              (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                        (f32x4.add (f32x4.mul (v128.load offset=48 align=1 (local.get $src)) (local.get $R)) (local.get $Z))))
              (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 255 255 255 255) (local.get $x)))
                                       (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
              (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                        (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
              i32x4.sub
              (v128.const i32x4 0xff 0xff 0xff 0xff)
              v128.and
              i16x8.narrow_i32x4_u
              i8x16.narrow_i16x8_u
              v128.store align=1
              (local.set $o (i32.add (local.get $o) (i32.const 16)))
              (br_if $sixteen (i32.lt_u (local.tee $src (i32.add (local.get $src) (i32.const 64))) (local.get $stop))))
            (local.set $left (i32.add (local.get $left) (i32.const -1)))
            (br $block)))
        (local.set $dst (i32.add (local.get $dst) (local.get $stride)))
        (local.set $rows (i32.add (local.get $rows) (i32.const -1)))
        (br $row))))

  ;; [K, N] data: blocks run down columns, so these kernels take a [rows, cols] tile of floats (cols a multiple of
  ;; 4, rows = the block size) and give each SIMD lane a column. Every lane then sees its block in order, and four
  ;; blocks' parameters are one vector.
  ;;
  ;; minmaxCols(src, rows, cols, mnAt, mxAt): column c's min and max as f32 at mnAt + 4c, mxAt + 4c (pmin/pmax as
  ;; in minmax; each lane sees its column in order, so even the sign of a zero extreme is the scalar one).
  (func $minmaxCols (export "minmaxCols")
    (param $src i32) (param $rows i32) (param $cols i32) (param $mnAt i32) (param $mxAt i32)
    (local $c i32) (local $p i32) (local $stop i32) (local $rs i32) (local $mn v128) (local $mx v128) (local $v v128)
    (local.set $rs (i32.shl (local.get $cols) (i32.const 2)))
    (block $done
      (loop $four
        (br_if $done (i32.ge_u (local.get $c) (local.get $cols)))
        (local.set $mn (v128.const f32x4 0x1.fffffep+127 0x1.fffffep+127 0x1.fffffep+127 0x1.fffffep+127))
        (local.set $mx (v128.const f32x4 -0x1.fffffep+127 -0x1.fffffep+127 -0x1.fffffep+127 -0x1.fffffep+127))
        (local.set $stop (i32.add (local.tee $p (i32.add (local.get $src) (i32.shl (local.get $c) (i32.const 2)))) (i32.mul (local.get $rows) (local.get $rs))))
        (loop $row
          (local.set $v (v128.load align=1 (local.get $p)))
          (local.set $mn (f32x4.pmin (local.get $mn) (local.get $v)))
          (local.set $mx (f32x4.pmax (local.get $mx) (local.get $v)))
          (br_if $row (i32.lt_u (local.tee $p (i32.add (local.get $p) (local.get $rs))) (local.get $stop))))
        (v128.store align=1 (i32.add (local.get $mnAt) (i32.shl (local.get $c) (i32.const 2))) (local.get $mn))
        (v128.store align=1 (i32.add (local.get $mxAt) (i32.shl (local.get $c) (i32.const 2))) (local.get $mx))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $four))))

  ;; codesCols<bits>(src, rows, cols, recip, zp, dst, stride): column c's codes (1/scale and zero point as f32 at
  ;; recip + 4c, zp + 4c), packed low bits first into the row at dst + c·stride. rows is a multiple of 16: each
  ;; step takes sixteen rows of four columns, packs them along the column in the i32 lanes (row j + k shifted by
  ;; k·bits), then regroups bytes by column with shuffles.
  ;;
  ;; codesCols2: four bytes per column. The shuffle is a 4×4 byte transpose, [a0..3 b0..3 c0..3 d0..3] →
  ;; [a0 b0 c0 d0 a1 b1 …].
  (func $codesCols2 (export "codesCols2")
    (param $src i32) (param $rows i32) (param $cols i32) (param $recip i32) (param $zp i32) (param $dst i32) (param $stride i32)
    (local $c i32) (local $p i32) (local $q i32) (local $o i32) (local $rs i32) (local $r i32)
    (local $R v128) (local $Z v128) (local $x v128) (local $y v128)
    (local $m0 v128) (local $m1 v128) (local $m2 v128) (local $m3 v128) (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $rs (i32.shl (local.get $cols) (i32.const 2)))
    (block $done
      (loop $four
        (br_if $done (i32.ge_u (local.get $c) (local.get $cols)))
        (local.set $R (v128.load align=1 (i32.add (local.get $recip) (i32.shl (local.get $c) (i32.const 2)))))
        (local.set $Z (v128.load align=1 (i32.add (local.get $zp) (i32.shl (local.get $c) (i32.const 2)))))
        (local.set $p (i32.add (local.get $src) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $q (i32.add (local.get $dst) (i32.mul (local.get $c) (local.get $stride))))
        (local.set $o (i32.const 0))
        (local.set $r (i32.const 0))
        (block $columnsDone
          (loop $sixteen
            (br_if $columnsDone (i32.ge_u (local.get $r) (local.get $rows)))
            ;; row 0
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 0)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 3 3 3 3) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            ;; row 1
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 1)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 3 3 3 3) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            (i32x4.shl (i32.const 2))
            v128.or
            ;; row 2
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 2)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 3 3 3 3) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            (i32x4.shl (i32.const 4))
            v128.or
            ;; row 3
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 3)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 3 3 3 3) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            (i32x4.shl (i32.const 6))
            v128.or
            ;; row 4
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 4)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 3 3 3 3) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            ;; row 5
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 5)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 3 3 3 3) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            (i32x4.shl (i32.const 2))
            v128.or
            ;; row 6
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 6)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 3 3 3 3) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            (i32x4.shl (i32.const 4))
            v128.or
            ;; row 7
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 7)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 3 3 3 3) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            (i32x4.shl (i32.const 6))
            v128.or
            i16x8.narrow_i32x4_u
            ;; row 8
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 8)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 3 3 3 3) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            ;; row 9
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 9)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 3 3 3 3) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            (i32x4.shl (i32.const 2))
            v128.or
            ;; row 10
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 10)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 3 3 3 3) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            (i32x4.shl (i32.const 4))
            v128.or
            ;; row 11
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 11)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 3 3 3 3) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            (i32x4.shl (i32.const 6))
            v128.or
            ;; row 12
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 12)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 3 3 3 3) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            ;; row 13
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 13)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 3 3 3 3) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            (i32x4.shl (i32.const 2))
            v128.or
            ;; row 14
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 14)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 3 3 3 3) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            (i32x4.shl (i32.const 4))
            v128.or
            ;; row 15
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 15)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 3 3 3 3) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            (i32x4.shl (i32.const 6))
            v128.or
            i16x8.narrow_i32x4_u
            i8x16.narrow_i16x8_u
            local.set $m0
            (local.set $m0 (i8x16.shuffle 0 4 8 12 1 5 9 13 2 6 10 14 3 7 11 15 (local.get $m0) (local.get $m0)))
            (v128.store32_lane align=1 0 (i32.add (i32.add (local.get $q) (i32.mul (local.get $stride) (i32.const 0))) (local.get $o)) (local.get $m0))
            (v128.store32_lane align=1 1 (i32.add (i32.add (local.get $q) (i32.mul (local.get $stride) (i32.const 1))) (local.get $o)) (local.get $m0))
            (v128.store32_lane align=1 2 (i32.add (i32.add (local.get $q) (i32.mul (local.get $stride) (i32.const 2))) (local.get $o)) (local.get $m0))
            (v128.store32_lane align=1 3 (i32.add (i32.add (local.get $q) (i32.mul (local.get $stride) (i32.const 3))) (local.get $o)) (local.get $m0))
            (local.set $p (i32.add (local.get $p) (i32.shl (local.get $rs) (i32.const 4))))
            (local.set $o (i32.add (local.get $o) (i32.const 4)))
            (local.set $r (i32.add (local.get $r) (i32.const 16)))
            (br $sixteen)))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $four))))

  ;; codesCols4: eight bytes per column: the same transpose over two vectors.
  (func $codesCols4 (export "codesCols4")
    (param $src i32) (param $rows i32) (param $cols i32) (param $recip i32) (param $zp i32) (param $dst i32) (param $stride i32)
    (local $c i32) (local $p i32) (local $q i32) (local $o i32) (local $rs i32) (local $r i32)
    (local $R v128) (local $Z v128) (local $x v128) (local $y v128)
    (local $m0 v128) (local $m1 v128) (local $m2 v128) (local $m3 v128) (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $rs (i32.shl (local.get $cols) (i32.const 2)))
    (block $done
      (loop $four
        (br_if $done (i32.ge_u (local.get $c) (local.get $cols)))
        (local.set $R (v128.load align=1 (i32.add (local.get $recip) (i32.shl (local.get $c) (i32.const 2)))))
        (local.set $Z (v128.load align=1 (i32.add (local.get $zp) (i32.shl (local.get $c) (i32.const 2)))))
        (local.set $p (i32.add (local.get $src) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $q (i32.add (local.get $dst) (i32.mul (local.get $c) (local.get $stride))))
        (local.set $o (i32.const 0))
        (local.set $r (i32.const 0))
        (block $columnsDone
          (loop $sixteen
            (br_if $columnsDone (i32.ge_u (local.get $r) (local.get $rows)))
            ;; row 0
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 0)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 15 15 15 15) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            ;; row 1
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 1)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 15 15 15 15) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            (i32x4.shl (i32.const 4))
            v128.or
            ;; row 2
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 2)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 15 15 15 15) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            ;; row 3
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 3)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 15 15 15 15) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            (i32x4.shl (i32.const 4))
            v128.or
            i16x8.narrow_i32x4_u
            ;; row 4
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 4)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 15 15 15 15) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            ;; row 5
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 5)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 15 15 15 15) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            (i32x4.shl (i32.const 4))
            v128.or
            ;; row 6
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 6)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 15 15 15 15) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            ;; row 7
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 7)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 15 15 15 15) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            (i32x4.shl (i32.const 4))
            v128.or
            i16x8.narrow_i32x4_u
            i8x16.narrow_i16x8_u
            local.set $m0
            ;; row 8
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 8)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 15 15 15 15) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            ;; row 9
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 9)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 15 15 15 15) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            (i32x4.shl (i32.const 4))
            v128.or
            ;; row 10
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 10)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 15 15 15 15) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            ;; row 11
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 11)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 15 15 15 15) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            (i32x4.shl (i32.const 4))
            v128.or
            i16x8.narrow_i32x4_u
            ;; row 12
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 12)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 15 15 15 15) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            ;; row 13
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 13)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 15 15 15 15) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            (i32x4.shl (i32.const 4))
            v128.or
            ;; row 14
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 14)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 15 15 15 15) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            ;; row 15
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 15)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 15 15 15 15) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            (i32x4.shl (i32.const 4))
            v128.or
            i16x8.narrow_i32x4_u
            i8x16.narrow_i16x8_u
            local.set $m1
            (local.set $t0 (i8x16.shuffle 0 4 8 12 16 20 24 28 1 5 9 13 17 21 25 29 (local.get $m0) (local.get $m1)))
            (local.set $t1 (i8x16.shuffle 2 6 10 14 18 22 26 30 3 7 11 15 19 23 27 31 (local.get $m0) (local.get $m1)))
            (v128.store64_lane align=1 0 (i32.add (i32.add (local.get $q) (i32.mul (local.get $stride) (i32.const 0))) (local.get $o)) (local.get $t0))
            (v128.store64_lane align=1 1 (i32.add (i32.add (local.get $q) (i32.mul (local.get $stride) (i32.const 1))) (local.get $o)) (local.get $t0))
            (v128.store64_lane align=1 0 (i32.add (i32.add (local.get $q) (i32.mul (local.get $stride) (i32.const 2))) (local.get $o)) (local.get $t1))
            (v128.store64_lane align=1 1 (i32.add (i32.add (local.get $q) (i32.mul (local.get $stride) (i32.const 3))) (local.get $o)) (local.get $t1))
            (local.set $p (i32.add (local.get $p) (i32.shl (local.get $rs) (i32.const 4))))
            (local.set $o (i32.add (local.get $o) (i32.const 8)))
            (local.set $r (i32.add (local.get $r) (i32.const 16)))
            (br $sixteen)))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $four))))

  ;; codesCols8: sixteen bytes per column: four 4×4 byte transposes, then a 4×4 transpose of their 32-bit lanes.
  (func $codesCols8 (export "codesCols8")
    (param $src i32) (param $rows i32) (param $cols i32) (param $recip i32) (param $zp i32) (param $dst i32) (param $stride i32)
    (local $c i32) (local $p i32) (local $q i32) (local $o i32) (local $rs i32) (local $r i32)
    (local $R v128) (local $Z v128) (local $x v128) (local $y v128)
    (local $m0 v128) (local $m1 v128) (local $m2 v128) (local $m3 v128) (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $rs (i32.shl (local.get $cols) (i32.const 2)))
    (block $done
      (loop $four
        (br_if $done (i32.ge_u (local.get $c) (local.get $cols)))
        (local.set $R (v128.load align=1 (i32.add (local.get $recip) (i32.shl (local.get $c) (i32.const 2)))))
        (local.set $Z (v128.load align=1 (i32.add (local.get $zp) (i32.shl (local.get $c) (i32.const 2)))))
        (local.set $p (i32.add (local.get $src) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $q (i32.add (local.get $dst) (i32.mul (local.get $c) (local.get $stride))))
        (local.set $o (i32.const 0))
        (local.set $r (i32.const 0))
        (block $columnsDone
          (loop $sixteen
            (br_if $columnsDone (i32.ge_u (local.get $r) (local.get $rows)))
            ;; row 0
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 0)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 255 255 255 255) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            ;; row 1
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 1)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 255 255 255 255) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            i16x8.narrow_i32x4_u
            ;; row 2
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 2)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 255 255 255 255) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            ;; row 3
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 3)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 255 255 255 255) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            i16x8.narrow_i32x4_u
            i8x16.narrow_i16x8_u
            local.set $m0
            ;; row 4
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 4)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 255 255 255 255) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            ;; row 5
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 5)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 255 255 255 255) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            i16x8.narrow_i32x4_u
            ;; row 6
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 6)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 255 255 255 255) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            ;; row 7
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 7)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 255 255 255 255) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            i16x8.narrow_i32x4_u
            i8x16.narrow_i16x8_u
            local.set $m1
            ;; row 8
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 8)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 255 255 255 255) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            ;; row 9
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 9)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 255 255 255 255) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            i16x8.narrow_i32x4_u
            ;; row 10
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 10)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 255 255 255 255) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            ;; row 11
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 11)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 255 255 255 255) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            i16x8.narrow_i32x4_u
            i8x16.narrow_i16x8_u
            local.set $m2
            ;; row 12
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 12)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 255 255 255 255) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            ;; row 13
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 13)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 255 255 255 255) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            i16x8.narrow_i32x4_u
            ;; row 14
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 14)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 255 255 255 255) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            ;; row 15
            (local.set $x (f32x4.pmax (v128.const f32x4 0 0 0 0)
                                      (f32x4.add (f32x4.mul (v128.load align=1 (i32.add (local.get $p) (i32.mul (local.get $rs) (i32.const 15)))) (local.get $R)) (local.get $Z))))
            (local.tee $y (f32x4.add (local.tee $x (f32x4.pmin (v128.const f32x4 255 255 255 255) (local.get $x)))
                                     (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)))
            (f32x4.eq (f32x4.sub (f32x4.sub (local.get $y) (v128.const f32x4 0x1p+23 0x1p+23 0x1p+23 0x1p+23)) (local.get $x))
                      (v128.const f32x4 -0.5 -0.5 -0.5 -0.5))
            i32x4.sub
            (v128.const i32x4 0xff 0xff 0xff 0xff)
            v128.and
            i16x8.narrow_i32x4_u
            i8x16.narrow_i16x8_u
            local.set $m3
            (local.set $m0 (i8x16.shuffle 0 4 8 12 1 5 9 13 2 6 10 14 3 7 11 15 (local.get $m0) (local.get $m0)))
            (local.set $m1 (i8x16.shuffle 0 4 8 12 1 5 9 13 2 6 10 14 3 7 11 15 (local.get $m1) (local.get $m1)))
            (local.set $m2 (i8x16.shuffle 0 4 8 12 1 5 9 13 2 6 10 14 3 7 11 15 (local.get $m2) (local.get $m2)))
            (local.set $m3 (i8x16.shuffle 0 4 8 12 1 5 9 13 2 6 10 14 3 7 11 15 (local.get $m3) (local.get $m3)))
            (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $m0) (local.get $m1)))
            (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $m0) (local.get $m1)))
            (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $m2) (local.get $m3)))
            (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $m2) (local.get $m3)))
            (v128.store align=1 (i32.add (i32.add (local.get $q) (i32.mul (local.get $stride) (i32.const 0))) (local.get $o)) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2)))
            (v128.store align=1 (i32.add (i32.add (local.get $q) (i32.mul (local.get $stride) (i32.const 1))) (local.get $o)) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
            (v128.store align=1 (i32.add (i32.add (local.get $q) (i32.mul (local.get $stride) (i32.const 2))) (local.get $o)) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3)))
            (v128.store align=1 (i32.add (i32.add (local.get $q) (i32.mul (local.get $stride) (i32.const 3))) (local.get $o)) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3)))
            (local.set $p (i32.add (local.get $p) (i32.shl (local.get $rs) (i32.const 4))))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (local.set $r (i32.add (local.get $r) (i32.const 16)))
            (br $sixteen)))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $four))))

  ;; nonFinite(src, count): the index of the first NaN or ±Infinity among `count` f32 at byte address src (count a
  ;; multiple of 4; the caller scans a tail), or −1. v − v is NaN exactly for NaN and ±Infinity, and NaN ≠ NaN, so
  ;; one sub and one compare test four values; any_true leaves the loop at the first group holding one.
  (func $nonFinite (export "nonFinite") (param $src i32) (param $count i32) (result i32)
    (local $i i32) (local $d v128)
    (block $done
      (loop $group
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $d (v128.load align=1 (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $d (f32x4.sub (local.get $d) (local.get $d)))
        (if (v128.any_true (f32x4.ne (local.get $d) (local.get $d)))
          (then
            ;; The lane: the first of the four whose v − v is NaN.
            (if (f32.ne (f32x4.extract_lane 0 (local.get $d)) (f32x4.extract_lane 0 (local.get $d))) (then (return (local.get $i))))
            (if (f32.ne (f32x4.extract_lane 1 (local.get $d)) (f32x4.extract_lane 1 (local.get $d))) (then (return (i32.add (local.get $i) (i32.const 1)))))
            (if (f32.ne (f32x4.extract_lane 2 (local.get $d)) (f32x4.extract_lane 2 (local.get $d))) (then (return (i32.add (local.get $i) (i32.const 2)))))
            (return (i32.add (local.get $i) (i32.const 3)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $group)))
    (i32.const -1))

  (memory (export "memory") 1))
