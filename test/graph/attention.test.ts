// The attention-mask summary and the position ids computed from it, run in onnxruntime-node on hand-made masks.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { attentionMaskInfo, positionIdsFromMask } from '../../src/graph/attention.js';
import { GraphBuilder } from '../../src/graph/builder.js';
import { encodeModel } from '../../src/onnx/codec.js';
import { DataType } from '../../src/onnx/dtype.js';
import { runOrt } from '../helpers/onnx.js';

/** A graph input_ids [b, s], attention_mask [b, t] → seqlens_k, total_seq_len, position ids. */
function maskGraph(): Uint8Array {
  const b = new GraphBuilder();
  const ids = b.input('input_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  const mask = b.input('attention_mask', DataType.INT64, ['batch_size', 'total_sequence_length']);
  const info = attentionMaskInfo(b, mask);
  const pos = positionIdsFromMask(b, ids, info);
  b.op1('Identity', '/out/seqlens', [info.seqlensK], { output: 'seqlens_k' });
  b.op1('Identity', '/out/total', [info.totalSeqLen], { output: 'total' });
  b.op1('Identity', '/out/pos', [pos], { output: 'position_ids' });
  b.output('seqlens_k', DataType.INT32, ['batch_size']);
  b.output('total', DataType.INT32, []);
  b.output('position_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  b.graph.topologicalSort();
  return encodeModel(b.model);
}

async function run(rows: number[][], seq: number) {
  const total = rows[0].length;
  const feeds = {
    input_ids: new ort.Tensor('int64', new BigInt64Array(rows.length * seq), [rows.length, seq]),
    attention_mask: new ort.Tensor('int64', BigInt64Array.from(rows.flat(), BigInt), [rows.length, total]),
  };
  const out = await runOrt(maskGraph(), feeds);
  const pos = Array.from(out.position_ids.data as BigInt64Array, Number);
  return {
    seqlensK: Array.from(out.seqlens_k.data as Int32Array),
    total: Number((out.total.data as Int32Array)[0]),
    positions: rows.map((_, r) => pos.slice(r * seq, (r + 1) * seq)),
    dims: out.position_ids.dims,
  };
}

describe('attention mask summary and position ids from it', () => {
  it('a first prompt (past 0) numbers every row from 0, right-padded rows too', async () => {
    const r = await run(
      [
        [1, 1, 1, 1],
        [1, 1, 0, 0],
      ],
      4,
    );
    expect(r.seqlensK).toEqual([3, 1]);
    expect(r.total).toBe(4);
    expect(r.dims).toEqual([2, 4]);
    expect(r.positions).toEqual([
      [0, 1, 2, 3],
      [0, 1, 2, 3],
    ]);
  });

  it('a decoding step continues each row from the tokens it has seen (seqlens_k)', async () => {
    const r = await run(
      [
        [1, 1, 1, 1, 1, 1],
        [1, 1, 1, 0, 0, 1],
      ],
      1,
    );
    expect(r.seqlensK).toEqual([5, 3]);
    expect(r.positions).toEqual([[5], [3]]);
  });

  it('a later chunk of several tokens starts at past length', async () => {
    const r = await run([[1, 1, 1, 1, 1, 1, 1]], 3);
    expect(r.positions).toEqual([[4, 5, 6]]);
  });
});
