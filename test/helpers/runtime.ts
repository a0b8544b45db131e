// Tiny decoder models with the onnxruntime-genai graph contract (GroupQueryAttention + KV cache), for runtime tests.
// Encoded with onnx-proto (an independent protobuf schema), so these tests do not depend on our own codec.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import { DataType } from '../../src/onnx/dtype.js';
import { float32ToFloat16Bits, viewBytes } from '../../src/onnx/tensor.js';
export { sharedFixture } from './fixtures.js';

const { onnx } = onnxProto;
type INode = InstanceType<typeof onnx.NodeProto>;
type ITensor = InstanceType<typeof onnx.TensorProto>;

export interface TinyDecoderOptions {
  layers?: number;
  hidden?: number;
  heads?: number;
  kvHeads?: number;
  headSize?: number;
  vocab?: number;
  /** Length of the rotary caches = the longest sequence the model can run. */
  contextLength?: number;
  /** Activation/weight dtype: logits and KV cache come out in this type. */
  dtype?: 'float32' | 'float16';
  /** DirectML-style: separate q/k/v, com.microsoft RotaryEmbedding fed by a `position_ids` input. */
  positionIds?: boolean;
  seed?: number;
  /** Name templates written to genai_config.json and used in the graph (defaults are the genai ones). */
  pastKeyName?: string;
  pastValueName?: string;
  presentKeyName?: string;
  presentValueName?: string;
}

export interface TinyDecoder {
  onnx: Uint8Array;
  genaiConfig: GenaiConfigJson;
  opts: Required<TinyDecoderOptions>;
}

export interface GenaiConfigJson {
  model: Record<string, unknown> & { decoder: Record<string, unknown> };
  search: Record<string, unknown>;
}

/** Deterministic uniform numbers in [-1, 1) (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

/**
 * Builds the graph:
 *
 *   input_ids ─Gather(embed)─ x ─┬─ MatMul(qkv) ─ GQA(rotary) ─ MatMul(o) ─ Add ─ ... ─ MatMul(lm_head) ─ logits
 *                                └──────────────── residual ───────────────┘
 *   attention_mask ─ ReduceSum−1 → seqlens_k (int32);  Shape[1] → total_sequence_length (int32)
 *
 * With positionIds: q/k/v MatMuls, RotaryEmbedding(q|k, position_ids) and GQA without rotary (the DML layout).
 */
export function buildTinyDecoder(options: TinyDecoderOptions = {}): TinyDecoder {
  const o = {
    layers: 2,
    hidden: 32,
    heads: 4,
    kvHeads: 2,
    headSize: 16,
    vocab: 40,
    contextLength: 64,
    dtype: 'float32' as const,
    positionIds: false,
    seed: 1,
    pastKeyName: 'past_key_values.%d.key',
    pastValueName: 'past_key_values.%d.value',
    presentKeyName: 'present.%d.key',
    presentValueName: 'present.%d.value',
    ...options,
  };
  const fp = o.dtype === 'float16' ? DataType.FLOAT16 : DataType.FLOAT;
  const rand = rng(o.seed);
  const nodes: INode[] = [];
  const inits: ITensor[] = [];
  const weight = (name: string, dims: number[], scale: number) => {
    const f = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < f.length; i++) f[i] = rand() * scale;
    inits.push(floatTensor(name, dims, f, fp));
    return name;
  };
  const node = (opType: string, inputs: string[], outputs: string[], attrs: Record<string, number> = {}, domain = '') => {
    nodes.push(
      onnx.NodeProto.create({
        opType,
        domain,
        name: outputs[0] + '/node',
        input: inputs,
        output: outputs,
        attribute: Object.entries(attrs).map(([name, v]) =>
          Number.isInteger(v) && !(name === 'scale')
            ? onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: v })
            : onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.FLOAT, f: v }),
        ),
      }),
    );
    return outputs[0];
  };

  // Rotary caches [context, headSize/2] (rotate-half layout, theta 10000).
  const half = o.headSize / 2;
  const cos = new Float32Array(o.contextLength * half);
  const sin = new Float32Array(o.contextLength * half);
  for (let p = 0; p < o.contextLength; p++) {
    for (let i = 0; i < half; i++) {
      const a = p / 10000 ** ((2 * i) / o.headSize);
      cos[p * half + i] = Math.cos(a);
      sin[p * half + i] = Math.sin(a);
    }
  }
  inits.push(floatTensor('cos_cache', [o.contextLength, half], cos, fp));
  inits.push(floatTensor('sin_cache', [o.contextLength, half], sin, fp));
  inits.push(int64Tensor('one', [], [1n]));
  inits.push(int64Tensor('axis1', [1], [1n]));

  node('ReduceSum', ['attention_mask', 'axis1'], ['mask_sum'], { keepdims: 0 });
  node('Sub', ['mask_sum', 'one'], ['mask_sum_m1']);
  node('Cast', ['mask_sum_m1'], ['seqlens_k'], { to: DataType.INT32 });
  node('Shape', ['attention_mask'], ['mask_shape']);
  node('Gather', ['mask_shape', 'one'], ['total_len64'], { axis: 0 });
  node('Cast', ['total_len64'], ['total_len'], { to: DataType.INT32 });

  weight('embed', [o.vocab, o.hidden], 1);
  let x = node('Gather', ['embed', 'input_ids'], ['x0'], { axis: 0 });
  const qDim = o.heads * o.headSize;
  const kvDim = o.kvHeads * o.headSize;
  const ws = 1 / Math.sqrt(o.hidden);
  const gqaAttrs = { num_heads: o.heads, kv_num_heads: o.kvHeads, scale: 1 / Math.sqrt(o.headSize) };
  for (let l = 0; l < o.layers; l++) {
    const p = `l${l}`;
    const pastK = o.pastKeyName.replace('%d', String(l));
    const pastV = o.pastValueName.replace('%d', String(l));
    const presK = o.presentKeyName.replace('%d', String(l));
    const presV = o.presentValueName.replace('%d', String(l));
    let attn: string;
    if (o.positionIds) {
      const q = node('MatMul', [x, weight(`${p}.wq`, [o.hidden, qDim], ws)], [`${p}/q`]);
      const k = node('MatMul', [x, weight(`${p}.wk`, [o.hidden, kvDim], ws)], [`${p}/k`]);
      const v = node('MatMul', [x, weight(`${p}.wv`, [o.hidden, kvDim], ws)], [`${p}/v`]);
      const qr = node('RotaryEmbedding', [q, 'position_ids', 'cos_cache', 'sin_cache'], [`${p}/qr`], { num_heads: o.heads, interleaved: 0 }, 'com.microsoft');
      const kr = node('RotaryEmbedding', [k, 'position_ids', 'cos_cache', 'sin_cache'], [`${p}/kr`], { num_heads: o.kvHeads, interleaved: 0 }, 'com.microsoft');
      attn = node('GroupQueryAttention', [qr, kr, v, pastK, pastV, 'seqlens_k', 'total_len'], [`${p}/attn`, presK, presV], { ...gqaAttrs, do_rotary: 0 }, 'com.microsoft');
    } else {
      const qkv = node('MatMul', [x, weight(`${p}.wqkv`, [o.hidden, qDim + 2 * kvDim], ws)], [`${p}/qkv`]);
      attn = node(
        'GroupQueryAttention',
        [qkv, '', '', pastK, pastV, 'seqlens_k', 'total_len', 'cos_cache', 'sin_cache'],
        [`${p}/attn`, presK, presV],
        { ...gqaAttrs, do_rotary: 1, rotary_interleaved: 0 },
        'com.microsoft',
      );
    }
    const out = node('MatMul', [attn, weight(`${p}.wo`, [qDim, o.hidden], 1 / Math.sqrt(qDim))], [`${p}/o`]);
    x = node('Add', [x, out], [`${p}/res`]);
  }
  node('MatMul', [x, weight('lm_head', [o.hidden, o.vocab], 2 / Math.sqrt(o.hidden))], ['logits']);

  const kvShape = ['batch_size', o.kvHeads, 'past_sequence_length', o.headSize];
  const presShape = ['batch_size', o.kvHeads, 'total_sequence_length', o.headSize];
  const inputs = [
    valueInfo('input_ids', DataType.INT64, ['batch_size', 'sequence_length']),
    valueInfo('attention_mask', DataType.INT64, ['batch_size', 'total_sequence_length']),
  ];
  if (o.positionIds) inputs.push(valueInfo('position_ids', DataType.INT64, ['batch_size', 'sequence_length']));
  const outputs = [valueInfo('logits', fp, ['batch_size', 'sequence_length', o.vocab])];
  for (let l = 0; l < o.layers; l++) {
    const at = (t: string) => t.replace('%d', String(l));
    inputs.push(valueInfo(at(o.pastKeyName), fp, kvShape), valueInfo(at(o.pastValueName), fp, kvShape));
    outputs.push(valueInfo(at(o.presentKeyName), fp, presShape), valueInfo(at(o.presentValueName), fp, presShape));
  }
  const model = onnx.ModelProto.create({
    irVersion: 10,
    producerName: 'phi-forge-test',
    opsetImport: [
      { domain: '', version: 21 },
      { domain: 'com.microsoft', version: 1 },
    ],
    graph: { name: 'tiny', node: nodes, initializer: inits, input: inputs, output: outputs },
  });
  const bytes = onnx.ModelProto.encode(model).finish();

  const decoderInputs: Record<string, string> = {
    input_ids: 'input_ids',
    attention_mask: 'attention_mask',
    past_key_names: o.pastKeyName,
    past_value_names: o.pastValueName,
  };
  if (o.positionIds) decoderInputs.position_ids = 'position_ids';
  const genaiConfig: GenaiConfigJson = {
    model: {
      type: 'phi3',
      bos_token_id: 1,
      eos_token_id: [2, 3],
      pad_token_id: 0,
      vocab_size: o.vocab,
      context_length: o.contextLength,
      decoder: {
        filename: 'model.onnx',
        head_size: o.headSize,
        hidden_size: o.hidden,
        num_attention_heads: o.heads,
        num_hidden_layers: o.layers,
        num_key_value_heads: o.kvHeads,
        session_options: { log_id: 'onnxruntime-genai', provider_options: [] },
        inputs: decoderInputs,
        outputs: {
          logits: 'logits',
          present_key_names: o.presentKeyName,
          present_value_names: o.presentValueName,
        },
      },
    },
    search: { max_length: o.contextLength, past_present_share_buffer: false, do_sample: false, num_beams: 1 },
  };
  return { onnx: bytes, genaiConfig, opts: o };
}

/** Writes model.onnx + genai_config.json into dir (created); returns the tiny decoder. */
export async function writeTinyDecoder(dir: string, options: TinyDecoderOptions = {}): Promise<TinyDecoder> {
  const m = buildTinyDecoder(options);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'model.onnx'), m.onnx);
  await writeFile(join(dir, 'genai_config.json'), JSON.stringify(m.genaiConfig, null, 2));
  return m;
}

function floatTensor(name: string, dims: number[], data: Float32Array, fp: number): ITensor {
  const raw = fp === DataType.FLOAT16 ? viewBytes(float32ToFloat16Bits(data)) : viewBytes(data);
  return onnx.TensorProto.create({ name, dims, dataType: fp, rawData: raw });
}

function int64Tensor(name: string, dims: number[], data: bigint[]): ITensor {
  return onnx.TensorProto.create({ name, dims, dataType: DataType.INT64, rawData: viewBytes(BigInt64Array.from(data)) });
}

function valueInfo(name: string, elemType: number, shape: (number | string)[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

/**
 * Independent reference: runs the whole sequence in one raw onnxruntime call (empty past, hand-made mask and
 * positions 0..n-1) and returns float32 logits [n, vocab]. Shares no code with src/runtime.
 */
export async function referenceLogits(modelFile: string, m: TinyDecoder, ids: readonly number[]): Promise<Float32Array> {
  const ort = await import('onnxruntime-node');
  const { float16BitsToFloat32 } = await import('../../src/onnx/tensor.js');
  const s = await ort.InferenceSession.create(modelFile);
  try {
    const n = ids.length;
    const o = m.opts;
    const at = (t: string, l: number) => t.replace('%d', String(l));
    const empty = () => new ort.Tensor(o.dtype, o.dtype === 'float16' ? new Uint16Array(0) : new Float32Array(0), [1, o.kvHeads, 0, o.headSize]);
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, (v) => BigInt(v)), [1, n]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
    };
    if (o.positionIds) feeds.position_ids = new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(i)), [1, n]);
    for (let l = 0; l < o.layers; l++) {
      feeds[at(o.pastKeyName, l)] = empty();
      feeds[at(o.pastValueName, l)] = empty();
    }
    const out = await s.run(feeds);
    const logits = out.logits;
    return logits.type === 'float16' ? float16BitsToFloat32(logits.data as Uint16Array) : Float32Array.from(logits.data as Float32Array);
  } finally {
    await s.release();
  }
}

/** Largest absolute difference of two equally long arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}


/**
 * stories260K (llama2.c legacy .bin) written straight to an ONNX decoder with position_ids, independent of
 * src/arch and src/checkpoint: llama2.c's interleaved RoPE maps to RotaryEmbedding(interleaved=1) on the original
 * weights, and attention is GroupQueryAttention without rotary, the one layout onnxruntime runs at head size 8
 * (its in-op rotary needs head_size % 16 == 0). It isolates the runtime from the builder in the e2e comparison.
 */
export async function writeStories260kOnnx(bin: string, dir: string): Promise<void> {
  const { readFile } = await import('node:fs/promises');
  const buf = await readFile(bin);
  const [dim, hidden, L, H, KV, vocabRaw, seqLen] = Array.from(new Int32Array(buf.buffer, buf.byteOffset, 7));
  const vocab = Math.abs(vocabRaw);
  const hs = dim / H;
  const kvDim = KV * hs;
  const f = new Float32Array(buf.buffer.slice(buf.byteOffset + 28, buf.byteOffset + buf.byteLength));
  let at = 0;
  const take = (n: number) => f.subarray(at, (at += n));
  const w = {
    emb: take(vocab * dim), rmsAtt: take(L * dim), wq: take(L * dim * dim), wk: take(L * kvDim * dim), wv: take(L * kvDim * dim),
    wo: take(L * dim * dim), rmsFfn: take(L * dim), w1: take(L * hidden * dim), w2: take(L * dim * hidden), w3: take(L * hidden * dim),
    rmsFinal: take(dim),
  };
  /** Layer l's [out, in] matrix of a stacked weight, transposed to MatMul's [in, out]. */
  const matmulWeight = (all: Float32Array, l: number, out: number, inn: number) => {
    const src = all.subarray(l * out * inn, (l + 1) * out * inn);
    const t = new Float32Array(src.length);
    for (let o = 0; o < out; o++) for (let i = 0; i < inn; i++) t[i * out + o] = src[o * inn + i];
    return t;
  };
  const inits: ITensor[] = [];
  const nodes: INode[] = [];
  const init = (name: string, dims: number[], data: Float32Array) => (inits.push(floatTensor(name, dims, data, DataType.FLOAT)), name);
  let n = 0;
  const op = (opType: string, inputs: string[], attrs: Record<string, number> = {}, domain = '', outputs = [`n${n}`]) => {
    nodes.push(
      onnx.NodeProto.create({
        opType, domain, name: `node${n++}`, input: inputs, output: outputs,
        attribute: Object.entries(attrs).map(([name, v]) =>
          name === 'epsilon' || name === 'scale'
            ? onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.FLOAT, f: v })
            : onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: v }),
        ),
      }),
    );
    return outputs[0];
  };
  const half = hs / 2;
  const cos = new Float32Array(seqLen * half);
  const sin = new Float32Array(seqLen * half);
  for (let p = 0; p < seqLen; p++) {
    for (let i = 0; i < half; i++) {
      const a = p / 10000 ** ((2 * i) / hs);
      cos[p * half + i] = Math.cos(a);
      sin[p * half + i] = Math.sin(a);
    }
  }
  init('cos', [seqLen, half], cos);
  init('sin', [seqLen, half], sin);
  inits.push(int64Tensor('one', [], [1n]), int64Tensor('axis1', [1], [1n]));
  const seqlensK = op('Cast', [op('Sub', [op('ReduceSum', ['attention_mask', 'axis1'], { keepdims: 0 }), 'one'])], { to: DataType.INT32 });
  const total = op('Cast', [op('Gather', [op('Shape', ['attention_mask']), 'one'], { axis: 0 })], { to: DataType.INT32 });
  const norm = (x: string, scale: Float32Array, name: string) => op('SimplifiedLayerNormalization', [x, init(name, [dim], scale.slice())], { axis: -1, epsilon: 1e-5 });
  let x = op('Gather', [init('emb', [vocab, dim], w.emb), 'input_ids']);
  for (let l = 0; l < L; l++) {
    const h = norm(x, w.rmsAtt.subarray(l * dim, (l + 1) * dim), `rms_att.${l}`);
    const q = op('MatMul', [h, init(`wq.${l}`, [dim, dim], matmulWeight(w.wq, l, dim, dim))]);
    const k = op('MatMul', [h, init(`wk.${l}`, [dim, kvDim], matmulWeight(w.wk, l, kvDim, dim))]);
    const v = op('MatMul', [h, init(`wv.${l}`, [dim, kvDim], matmulWeight(w.wv, l, kvDim, dim))]);
    const qr = op('RotaryEmbedding', [q, 'position_ids', 'cos', 'sin'], { interleaved: 1, num_heads: H }, 'com.microsoft');
    const kr = op('RotaryEmbedding', [k, 'position_ids', 'cos', 'sin'], { interleaved: 1, num_heads: KV }, 'com.microsoft');
    const attn = op(
      'GroupQueryAttention',
      [qr, kr, v, `past_key_values.${l}.key`, `past_key_values.${l}.value`, seqlensK, total],
      { num_heads: H, kv_num_heads: KV, scale: 1 / Math.sqrt(hs), do_rotary: 0 },
      'com.microsoft',
      [`attn.${l}`, `present.${l}.key`, `present.${l}.value`],
    );
    x = op('Add', [x, op('MatMul', [attn, init(`wo.${l}`, [dim, dim], matmulWeight(w.wo, l, dim, dim))])]);
    const h2 = norm(x, w.rmsFfn.subarray(l * dim, (l + 1) * dim), `rms_ffn.${l}`);
    const g = op('MatMul', [h2, init(`w1.${l}`, [dim, hidden], matmulWeight(w.w1, l, hidden, dim))]);
    const u = op('MatMul', [h2, init(`w3.${l}`, [dim, hidden], matmulWeight(w.w3, l, hidden, dim))]);
    const gated = op('Mul', [op('Mul', [g, op('Sigmoid', [g])]), u]);
    x = op('Add', [x, op('MatMul', [gated, init(`w2.${l}`, [hidden, dim], matmulWeight(w.w2, l, dim, hidden))])]);
  }
  // Tied classifier: logits = norm(x) · embeddingᵀ.
  op('MatMul', [norm(x, w.rmsFinal, 'rms_final'), init('lm_head', [dim, vocab], matmulWeight(w.emb, 0, vocab, dim))], {}, '', ['logits']);
  const inputs = [
    valueInfo('input_ids', DataType.INT64, ['batch_size', 'sequence_length']),
    valueInfo('attention_mask', DataType.INT64, ['batch_size', 'total_sequence_length']),
    valueInfo('position_ids', DataType.INT64, ['batch_size', 'sequence_length']),
  ];
  const outputs = [valueInfo('logits', DataType.FLOAT, ['batch_size', 'sequence_length', vocab])];
  for (let l = 0; l < L; l++) {
    for (const kv of ['key', 'value']) {
      inputs.push(valueInfo(`past_key_values.${l}.${kv}`, DataType.FLOAT, ['batch_size', KV, 'past_sequence_length', hs]));
      outputs.push(valueInfo(`present.${l}.${kv}`, DataType.FLOAT, ['batch_size', KV, 'total_sequence_length', hs]));
    }
  }
  const model = onnx.ModelProto.create({
    irVersion: 10,
    opsetImport: [{ domain: '', version: 21 }, { domain: 'com.microsoft', version: 1 }],
    graph: { name: 'stories260K', node: nodes, initializer: inits, input: inputs, output: outputs },
  });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'model.onnx'), onnx.ModelProto.encode(model).finish());
  const genai = {
    model: {
      type: 'phi3', bos_token_id: 1, eos_token_id: 2, pad_token_id: 0, vocab_size: vocab, context_length: seqLen,
      decoder: {
        filename: 'model.onnx', head_size: hs, hidden_size: dim, num_attention_heads: H, num_hidden_layers: L, num_key_value_heads: KV,
        inputs: {
          input_ids: 'input_ids', attention_mask: 'attention_mask', position_ids: 'position_ids',
          past_key_names: 'past_key_values.%d.key', past_value_names: 'past_key_values.%d.value',
        },
        outputs: { logits: 'logits', present_key_names: 'present.%d.key', present_value_names: 'present.%d.value' },
      },
    },
    search: { max_length: seqLen, past_present_share_buffer: false },
  };
  await writeFile(join(dir, 'genai_config.json'), JSON.stringify(genai, null, 2));
}
