// llama2.c checkpoint import: reads the legacy run.c format by offset and writes a Hugging Face Phi3ForCausalLM
// checkpoint (config.json, generation_config.json, model.safetensors in fp32), tensor by tensor.
import { open, readdir, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeDirAtomic } from '../util/atomic-fs.js';
import { checkOutputFolder } from '../util/output-path.js';
import { CheckpointError } from '../util/errors.js';
import { writeSafetensors, type TensorToWrite } from './safetensors-writer.js';

/** The 7 int32 header fields of a legacy llama2.c checkpoint (run.c's Config). */
export interface Llama2cHeader {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  /** Always positive here; the sign in the file is `sharedClassifier`. */
  vocabSize: number;
  seqLen: number;
  /** True when the file's vocab_size is positive: the classifier reuses the token embedding (no wcls). */
  sharedClassifier: boolean;
}

export const LLAMA2C_HEADER_BYTES = 7 * 4;
/** "ak42" read as a little-endian uint32: the magic of llama2.c's versioned export format (v1, v2). */
const VERSIONED_MAGIC = 0x616b3432;

/** One float32 tensor of the file: where it starts (in floats after the header) and how many floats it holds. */
interface Span {
  offset: number;
  count: number;
}

/** Where every tensor of a llama2.c file lives, in the order memory_map_weights (run.c) walks them. */
export interface Llama2cLayout {
  tokenEmbedding: Span;
  rmsAtt: Span;
  wq: Span;
  wk: Span;
  wv: Span;
  wo: Span;
  rmsFfn: Span;
  w1: Span;
  w2: Span;
  w3: Span;
  rmsFinal: Span;
  /** The two legacy RoPE tables (freq_cis_real, freq_cis_imag), skipped. */
  ropeTables: Span;
  /** Present only for an unshared classifier (negative vocab_size in the header). */
  wcls?: Span;
  /** Exact file size the header calls for. */
  fileBytes: number;
}

export function parseLlama2cHeader(bytes: Uint8Array, file: string): Llama2cHeader {
  if (bytes.byteLength < LLAMA2C_HEADER_BYTES) {
    throw new CheckpointError('LLAMA2C_TRUNCATED', `file is ${bytes.byteLength} bytes, shorter than the 28-byte llama2.c header`, {
      file,
      fix: 'pass a llama2.c checkpoint (.bin) written by export.py --version 0 or the original train.py',
    });
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, LLAMA2C_HEADER_BYTES);
  const f = Array.from({ length: 7 }, (_, i) => dv.getInt32(i * 4, true));
  if (dv.getUint32(0, true) === VERSIONED_MAGIC) {
    throw new CheckpointError('LLAMA2C_VERSIONED', `this is a llama2.c versioned export (magic "ak42", version ${f[1]}), not the legacy format run.c reads`, {
      file,
      fix: 're-export it with `python export.py out.bin --version 0 ...` (legacy float32 format)',
    });
  }
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabRaw, seqLen] = f as [number, number, number, number, number, number, number];
  const header: Llama2cHeader = {
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    vocabSize: Math.abs(vocabRaw),
    seqLen,
    sharedClassifier: vocabRaw > 0,
  };
  const bad = (what: string) =>
    new CheckpointError('LLAMA2C_BAD_HEADER', `header is not a llama2.c config: ${what} (header ${JSON.stringify(f)})`, {
      file,
      fix: 'check that the file is a legacy llama2.c checkpoint (7 little-endian int32: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len)',
    });
  for (const [k, v] of Object.entries({ dim, hiddenDim, nLayers, nHeads, nKvHeads, seqLen, vocabSize: header.vocabSize })) {
    if (!(v > 0)) throw bad(`${k} = ${v} must be positive`);
  }
  if (dim % nHeads !== 0) throw bad(`dim ${dim} is not a multiple of n_heads ${nHeads}`);
  if (nHeads % nKvHeads !== 0) throw bad(`n_heads ${nHeads} is not a multiple of n_kv_heads ${nKvHeads}`);
  if ((dim / nHeads) % 2 !== 0) throw bad(`head size ${dim / nHeads} is odd, RoPE needs pairs`);
  return header;
}

export function llama2cLayout(h: Llama2cHeader): Llama2cLayout {
  const headSize = h.dim / h.nHeads;
  const kvDim = headSize * h.nKvHeads;
  const L = h.nLayers;
  let at = 0;
  const take = (count: number): Span => {
    const s = { offset: at, count };
    at += count;
    return s;
  };
  const layout: Omit<Llama2cLayout, 'fileBytes'> = {
    tokenEmbedding: take(h.vocabSize * h.dim),
    rmsAtt: take(L * h.dim),
    wq: take(L * h.dim * h.dim),
    wk: take(L * kvDim * h.dim),
    wv: take(L * kvDim * h.dim),
    wo: take(L * h.dim * h.dim),
    rmsFfn: take(L * h.dim),
    w1: take(L * h.hiddenDim * h.dim),
    w2: take(L * h.dim * h.hiddenDim),
    w3: take(L * h.hiddenDim * h.dim),
    rmsFinal: take(h.dim),
    ropeTables: take(h.seqLen * headSize),
    wcls: undefined,
  };
  if (!h.sharedClassifier) layout.wcls = take(h.vocabSize * h.dim);
  return { ...layout, fileBytes: LLAMA2C_HEADER_BYTES + at * 4 };
}

/** The Hugging Face Phi-3 config.json of a llama2.c model (plain RoPE, full rotary, no sliding window). */
export function llama2cPhi3Config(h: Llama2cHeader): Record<string, unknown> {
  return {
    architectures: ['Phi3ForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: 1,
    embd_pdrop: 0.0,
    eos_token_id: 2,
    hidden_act: 'silu',
    hidden_size: h.dim,
    initializer_range: 0.02,
    intermediate_size: h.hiddenDim,
    max_position_embeddings: h.seqLen,
    model_type: 'phi3',
    num_attention_heads: h.nHeads,
    num_hidden_layers: h.nLayers,
    num_key_value_heads: h.nKvHeads,
    original_max_position_embeddings: h.seqLen,
    // Phi3Config's default pad id (32000) is outside a small llama2.c vocabulary and would break nn.Embedding;
    // id 0 is <unk> in llama2.c's sentencepiece vocabularies, the usual Llama padding choice.
    pad_token_id: 0,
    partial_rotary_factor: 1.0,
    resid_pdrop: 0.0,
    rms_norm_eps: 1e-5,
    rope_scaling: null,
    rope_theta: 10000.0,
    sliding_window: null,
    tie_word_embeddings: h.sharedClassifier,
    torch_dtype: 'float32',
    transformers_version: '4.46.0',
    use_cache: true,
    vocab_size: h.vocabSize,
  };
}

/**
 * Reorders the rows of a q or k projection ([nHeads·headSize, cols]) from llama2.c's interleaved RoPE pairs
 * (x[2i], x[2i+1]) to Hugging Face's rotate-half layout (x[i], x[i + headSize/2]): within each head,
 * HF row j·(headSize/2) + i takes llama2.c row 2i + j — the permutation transformers' convert_llama_weights_to_hf.py
 * applies, `(h d two) n -> (h two d) n`.
 */
export function interleavedToHalfRows(w: Float32Array, nHeads: number, headSize: number, cols: number): Float32Array {
  if (w.length !== nHeads * headSize * cols) {
    throw new RangeError(`interleavedToHalfRows: ${w.length} floats is not ${nHeads}×${headSize}×${cols}`);
  }
  const half = headSize / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHeads; h++) {
    for (let j = 0; j < 2; j++) {
      for (let i = 0; i < half; i++) {
        const dst = (h * headSize + j * half + i) * cols;
        const src = (h * headSize + 2 * i + j) * cols;
        out.set(w.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

export interface ConvertLlama2cOptions {
  /** The llama2.c checkpoint (.bin). */
  file: string;
  outDir: string;
  /** Replace a non-empty outDir (default false: refuse, so a typo cannot delete a folder). */
  overwrite?: boolean;
}

export interface ConvertLlama2cResult {
  outDir: string;
  header: Llama2cHeader;
  config: Record<string, unknown>;
  /** Written files, relative to outDir. */
  files: string[];
  tensors: number;
  parameters: number;
}

export async function convertLlama2c(opts: ConvertLlama2cOptions): Promise<ConvertLlama2cResult> {
  const file = resolve(opts.file);
  const outDir = resolve(opts.outDir);
  const fh = await openInput(file);
  try {
    const { size } = await fh.stat();
    const head = new Uint8Array(Math.min(size, LLAMA2C_HEADER_BYTES));
    await readExactly(fh, head, 0, file);
    const header = parseLlama2cHeader(head, file);
    const layout = llama2cLayout(header);
    if (size !== layout.fileBytes) {
      const h = header;
      throw new CheckpointError(
        'LLAMA2C_SIZE',
        `file is ${size} bytes but its header (dim ${h.dim}, hidden ${h.hiddenDim}, layers ${h.nLayers}, heads ${h.nHeads}/${h.nKvHeads}, ` +
          `vocab ${h.sharedClassifier ? '' : '-'}${h.vocabSize}, seq_len ${h.seqLen}) calls for ${layout.fileBytes} bytes` +
          (size < layout.fileBytes ? ' (truncated?)' : ' (trailing data?)'),
        { file, fix: 'the file is truncated or not a legacy llama2.c checkpoint; download or export it again' },
      );
    }
    const tensors = planLlama2cTensors(header, layout, (span) => readFloats(fh, span, file));
    const config = llama2cPhi3Config(header);
    // --force replaces output only: never the input file or a folder holding it.
    await checkOutputFolder(outDir, { flag: '--out', force: opts.overwrite, inputs: [file] });
    const files = ['config.json', 'generation_config.json', 'model.safetensors'];
    await writeDirAtomic(outDir, async (tmp) => {
      await writeFile(join(tmp, 'config.json'), JSON.stringify(config, null, 2) + '\n');
      await writeFile(join(tmp, 'generation_config.json'), JSON.stringify(generationConfig(), null, 2) + '\n');
      await writeSafetensors(join(tmp, 'model.safetensors'), tensors, { format: 'pt' });
    });
    const parameters = tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    return { outDir, header, config, files, tensors: tensors.length, parameters };
  } finally {
    await fh.close();
  }
}

function generationConfig(): Record<string, unknown> {
  return { _from_model_config: true, bos_token_id: 1, eos_token_id: 2, transformers_version: '4.46.0' };
}

/**
 * The output tensors in transformers' state-dict order, each produced on demand from `read` (one layer's slice of
 * the file at a time, never the whole model).
 */
export function planLlama2cTensors(
  h: Llama2cHeader,
  layout: Llama2cLayout,
  read: (span: Span) => Promise<Float32Array>,
): TensorToWrite[] {
  const headSize = h.dim / h.nHeads;
  const kvDim = headSize * h.nKvHeads;
  const layerSlice = (s: Span, l: number, per: number): Span => ({ offset: s.offset + l * per, count: per });
  const f32 = (name: string, shape: number[], produce: () => Promise<Float32Array>): TensorToWrite => ({
    name,
    dtype: 'F32',
    shape,
    data: async () => asBytes(await produce()),
  });
  const out: TensorToWrite[] = [f32('model.embed_tokens.weight', [h.vocabSize, h.dim], () => read(layout.tokenEmbedding))];
  for (let l = 0; l < h.nLayers; l++) {
    const p = `model.layers.${l}`;
    out.push(
      f32(`${p}.input_layernorm.weight`, [h.dim], () => read(layerSlice(layout.rmsAtt, l, h.dim))),
      f32(`${p}.self_attn.qkv_proj.weight`, [h.dim + 2 * kvDim, h.dim], async () => {
        const wq = interleavedToHalfRows(await read(layerSlice(layout.wq, l, h.dim * h.dim)), h.nHeads, headSize, h.dim);
        const wk = interleavedToHalfRows(await read(layerSlice(layout.wk, l, kvDim * h.dim)), h.nKvHeads, headSize, h.dim);
        const wv = await read(layerSlice(layout.wv, l, kvDim * h.dim));
        return concat([wq, wk, wv]);
      }),
      f32(`${p}.self_attn.o_proj.weight`, [h.dim, h.dim], () => read(layerSlice(layout.wo, l, h.dim * h.dim))),
      f32(`${p}.post_attention_layernorm.weight`, [h.dim], () => read(layerSlice(layout.rmsFfn, l, h.dim))),
      f32(`${p}.mlp.gate_up_proj.weight`, [2 * h.hiddenDim, h.dim], async () =>
        concat([
          await read(layerSlice(layout.w1, l, h.hiddenDim * h.dim)),
          await read(layerSlice(layout.w3, l, h.hiddenDim * h.dim)),
        ]),
      ),
      f32(`${p}.mlp.down_proj.weight`, [h.dim, h.hiddenDim], () => read(layerSlice(layout.w2, l, h.dim * h.hiddenDim))),
    );
  }
  out.push(f32('model.norm.weight', [h.dim], () => read(layout.rmsFinal)));
  if (layout.wcls) {
    const wcls = layout.wcls;
    out.push(f32('lm_head.weight', [h.vocabSize, h.dim], () => read(wcls)));
  }
  return out;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function asBytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

async function openInput(file: string): Promise<FileHandle> {
  try {
    const fh = await open(file, 'r');
    // open() succeeds on a folder; reading it then fails with EISDIR far from here.
    if (!(await fh.stat()).isFile()) {
      await fh.close();
      throw new CheckpointError('LLAMA2C_NOT_A_FILE', 'the llama2.c checkpoint path is not a file', { file, fix: 'give the .bin file itself, e.g. stories260K.bin' });
    }
    return fh;
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError('LLAMA2C_OPEN', `cannot open the llama2.c checkpoint (${code ?? String(e)})`, {
      file,
      fix: 'check the path',
      cause: e,
    });
  }
}

/** Reads one span of float32 values (the file is little-endian, like every machine Node runs on). */
async function readFloats(fh: FileHandle, span: Span, file: string): Promise<Float32Array> {
  const out = new Float32Array(span.count);
  await readExactly(fh, new Uint8Array(out.buffer), LLAMA2C_HEADER_BYTES + span.offset * 4, file);
  return out;
}

async function readExactly(fh: FileHandle, into: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < into.byteLength) {
    // Reads are capped well below 2 GiB: fs reads of larger lengths fail.
    const len = Math.min(into.byteLength - done, 1 << 30);
    const { bytesRead } = await fh.read(into, done, len, position + done);
    if (bytesRead === 0) {
      throw new CheckpointError('LLAMA2C_TRUNCATED', `unexpected end of file at byte ${position + done}`, { file });
    }
    done += bytesRead;
  }
}
