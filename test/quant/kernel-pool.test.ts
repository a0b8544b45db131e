// Kernels in piscina workers (TypeScript loaded through tsx): same bytes as inline, input transferred not copied,
// typed errors carried back; and in-order commits whatever order the work finishes in.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/dtype.js';
import { float32ToFloat16Bits, viewBytes } from '../../src/onnx/tensor.js';
import type { KernelTask } from '../../src/quant/workers/kernel.js';
import { createKernelRunner, inlineKernelRunner, type KernelRunner } from '../../src/quant/workers/kernel-pool.js';
import { runInOrder } from '../../src/quant/streaming/run-in-order.js';
import { QuantizationError } from '../../src/util/errors.js';
import { randomMatrix } from '../helpers/quant.js';

const task = (bytes: Uint8Array, over: Partial<KernelTask> = {}): KernelTask => ({
  tensor: 'w',
  bytes,
  dataType: DataType.FLOAT,
  K: 64,
  N: 48,
  layout: 'kn',
  method: { scheme: 'int4', algo: 'rtn', blockSize: 32, symmetric: false, padding: 'block' },
  ...over,
});

describe('kernel pool', () => {
  let pool: KernelRunner;
  beforeAll(async () => {
    pool = await createKernelRunner({ threads: 1 });
  });
  afterAll(async () => {
    await pool.close();
  });

  it('a worker produces the same bytes as the inline kernel, for fp32 and fp16 weights and every algorithm', async () => {
    const w = randomMatrix(1, 64, 48);
    const inline = inlineKernelRunner();
    for (const t of [
      task(viewBytes(w)),
      task(viewBytes(float32ToFloat16Bits(w)), { dataType: DataType.FLOAT16 }),
      task(viewBytes(w), { method: { scheme: 'int8', algo: 'hqq', blockSize: 16, symmetric: false, padding: 'block' } }),
      task(viewBytes(w), { method: { scheme: 'ternary', algo: 'rtn', blockSize: 64, symmetric: true, padding: 'none' } }),
    ]) {
      const a = await inline.run(t);
      const b = await pool.run({ ...t, bytes: t.bytes.slice() }, { transfer: true });
      expect(b).toEqual(a);
    }
  });

  it('owned input is transferred (the caller buffer is detached), shared views are copied', async () => {
    const owned = viewBytes(randomMatrix(2, 64, 48));
    await pool.run(task(owned), { transfer: true });
    expect(owned.byteLength).toBe(0);
    const big = new Uint8Array(64 * 48 * 4 + 16);
    const view = big.subarray(16);
    await pool.run(task(view), { transfer: true });
    expect(big.byteLength).toBe(64 * 48 * 4 + 16);
  });

  it('reuses the input buffers workers send back: pool.buffer hands one out again, results stay byte-identical', async () => {
    const inline = inlineKernelRunner();
    const w = randomMatrix(7, 64, 48);
    const want = await inline.run(task(viewBytes(w)));
    const first = pool.buffer(w.byteLength);
    first.set(viewBytes(w));
    const size = first.buffer.byteLength;
    expect(await pool.run(task(first), { transfer: true })).toEqual(want);
    expect(first.byteLength).toBe(0); // moved to the worker
    // A smaller request gets the same (returned, already paged-in) memory as a view of its first bytes.
    const again = pool.buffer(w.byteLength - 64 * 4);
    expect(again.buffer.byteLength).toBe(size);
    expect(again.byteOffset).toBe(0);
    const fewer = randomMatrix(8, 64, 47);
    again.set(viewBytes(fewer));
    expect(await pool.run(task(again, { N: 47 }), { transfer: true })).toEqual(await inline.run(task(viewBytes(fewer), { N: 47 })));
    // Input the caller keeps is copied into such a buffer, never detached, and quantizes the same.
    const kept = viewBytes(w);
    expect(await pool.run(task(kept))).toEqual(want);
    expect(kept.byteLength).toBe(w.byteLength);
  });

  it('a kernel error comes back as a QuantizationError with its code', async () => {
    const w = randomMatrix(3, 64, 48);
    w[100] = Number.NaN;
    const err = await pool.run(task(viewBytes(w), { tensor: 'model.layers.3.mlp.down_proj.MatMul.weight' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuantizationError);
    expect((err as QuantizationError).code).toBe('QUANT_NON_FINITE');
    expect((err as QuantizationError).where).toBe('tensor model.layers.3.mlp.down_proj.MatMul.weight');
    expect((err as QuantizationError).message).toContain('NaN at [2, 4]');
    expect((err as QuantizationError).message.match(/fix:/g)).toHaveLength(1);
  });

  it('analyses (AWQ search with clipping, sensitivity, rounding error) give the same results in a worker as inline', async () => {
    const inline = inlineKernelRunner();
    const K = 64;
    const x = randomMatrix(4, 100, K, 1);
    for (let t = 0; t < 100; t++) x[t * K + 5] *= 12; // an outlier channel
    const absMean = new Float64Array(K);
    for (let i = 0; i < x.length; i++) absMean[i % K] += Math.abs(x[i]) / 100;
    const weight = { tensor: 'w', bytes: viewBytes(randomMatrix(5, K, 48)), dataType: DataType.FLOAT, K, N: 48, layout: 'kn' as const };
    const quant = { scheme: 'int4' as const, blockSize: 32, symmetric: true };
    const awqJob = { kind: 'awq-search' as const, input: 'x', weights: [{ ...weight, quant, clip: true }], activations: { kind: 'rows' as const, x, rows: 100 }, absMean };
    const jobs = [
      awqJob,
      { kind: 'sensitivity' as const, weight, activations: { kind: 'rows' as const, x, rows: 100 }, low: quant, high: { ...quant, scheme: 'int8' as const } },
      { kind: 'quant-delta' as const, weight, quant },
    ];
    for (const job of jobs) expect(await pool.analyze(job)).toEqual(await inline.analyze(job));
    const awq = await pool.analyze(awqJob);
    expect(awq.clips[0]!.length).toBe(48 * 2);
    const nan = randomMatrix(6, K, 48);
    nan[7] = Number.NaN;
    const bad = await pool.analyze({ kind: 'quant-delta', quant, weight: { ...weight, bytes: viewBytes(nan) } }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(QuantizationError);
    expect((bad as QuantizationError).code).toBe('QUANT_NON_FINITE');
  });
});

describe('runInOrder', () => {
  it('commits in input order with bounded concurrency, whatever order the work finishes in', async () => {
    const delays = [30, 5, 20, 1, 10, 2];
    let running = 0;
    let peak = 0;
    const committed: number[] = [];
    await runInOrder(
      delays.map((d, i) => ({ d, i })),
      3,
      async ({ d, i }) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, d));
        running--;
        return i * 10;
      },
      (item, r) => {
        committed.push(r + item.i);
      },
    );
    expect(committed).toEqual([0, 11, 22, 33, 44, 55]);
    expect(peak).toBe(3);
  });

  it('stops at the first failure and rethrows it after running work settles', async () => {
    const started: number[] = [];
    const err = await runInOrder(
      [0, 1, 2, 3, 4, 5],
      2,
      async (i) => {
        started.push(i);
        if (i === 1) throw new Error('boom');
        return i;
      },
      () => {},
    ).catch((e: Error) => e);
    expect((err as Error).message).toBe('boom');
    expect(started).toEqual([0, 1, 2]);
  });

  it('awaits an async commit before the next one, and a failing commit stops the run after running work settles', async () => {
    const log: string[] = [];
    let running = 0;
    const err = await runInOrder(
      [0, 1, 2, 3, 4, 5, 6],
      2,
      async (i) => {
        running++;
        await new Promise((r) => setTimeout(r, i === 0 ? 20 : 30));
        running--;
        return i;
      },
      async (i) => {
        log.push(`begin ${i}`);
        await new Promise((r) => setTimeout(r, 5));
        if (i === 2) throw new Error('commit failed');
        log.push(`end ${i}`);
      },
    ).catch((e: Error) => e);
    // The error surfaces only once work already started (items 3 and 4) has settled.
    expect(running).toBe(0);
    expect((err as Error).message).toBe('commit failed');
    // Commits never overlap and keep input order.
    expect(log).toEqual(['begin 0', 'end 0', 'begin 1', 'end 1', 'begin 2']);
  });
});
