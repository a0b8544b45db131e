// The key/value cache of one sequence: per layer the `present` tensors of the last run, fed back as `past`.
import type { Tensor as OrtTensor } from 'onnxruntime-node';
import { float16BitsToFloat32 } from '../onnx/tensor.js';
import { EvalError } from '../util/errors.js';

export class KvCache {
  /** Positions held (the past sequence length of the next run). */
  length = 0;
  /** Per layer, the key/value tensors [batch, kv_heads, length, head_size]; undefined while empty. */
  readonly keys: (OrtTensor | undefined)[];
  readonly values: (OrtTensor | undefined)[];
  /** The session this cache belongs to (a cache only fits the model that filled it). */
  readonly owner: object;

  constructor(owner: object, numLayers: number) {
    this.owner = owner;
    this.keys = new Array<OrtTensor | undefined>(numLayers).fill(undefined);
    this.values = new Array<OrtTensor | undefined>(numLayers).fill(undefined);
  }

  get numLayers(): number {
    return this.keys.length;
  }

  /**
   * An independent copy sharing the tensors: onnxruntime never writes into the past tensors we feed (each run
   * returns new `present` tensors), so both caches can be extended separately, e.g. to score several
   * continuations of one prefix.
   */
  fork(): KvCache {
    const c = new KvCache(this.owner, this.numLayers);
    c.length = this.length;
    for (let i = 0; i < this.numLayers; i++) {
      c.keys[i] = this.keys[i];
      c.values[i] = this.values[i];
    }
    return c;
  }

  /** Stores one run's presents (called by DecoderSession.forward). */
  update(keys: readonly OrtTensor[], values: readonly OrtTensor[], length: number): void {
    for (let i = 0; i < this.numLayers; i++) {
      this.keys[i] = keys[i];
      this.values[i] = values[i];
    }
    this.length = length;
  }

  /** One layer's keys or values as float32 (fp16 converted), laid out [batch, kv_heads, length, head_size]. */
  layerFloat32(layer: number, which: 'key' | 'value'): Float32Array {
    if (layer < 0 || layer >= this.numLayers) {
      throw new EvalError('KV_LAYER_RANGE', `layer ${layer} is out of range 0..${this.numLayers - 1}`);
    }
    const t = (which === 'key' ? this.keys : this.values)[layer];
    if (!t) return new Float32Array(0);
    if (t.type === 'float16') return float16BitsToFloat32(t.data as Uint16Array);
    return t.data as Float32Array;
  }

  /** Bytes the cache holds. */
  get byteLength(): number {
    let n = 0;
    for (const t of [...this.keys, ...this.values]) if (t) n += (t.data as ArrayBufferView).byteLength;
    return n;
  }
}
