// A Checkpoint seen as a WeightSource: dtype and shape from the safetensors headers, rows read by file offset.
import type { Checkpoint } from '../checkpoint/checkpoint.js';
import { SAFETENSORS_DTYPE_SIZE, SAFETENSORS_TO_ONNX } from '../checkpoint/safetensors.js';
import type { SourceTensorInfo, WeightSource } from '../graph/weights.js';

export function checkpointSource(ckpt: Checkpoint): WeightSource {
  const rowBytesOf = (name: string): number => {
    const e = ckpt.entry(name);
    let rowElems = 1;
    for (const d of e.shape.slice(1)) rowElems *= d;
    return rowElems * SAFETENSORS_DTYPE_SIZE[e.dtype];
  };
  return {
    info(name: string): SourceTensorInfo | undefined {
      if (!ckpt.has(name)) return undefined;
      const e = ckpt.entry(name);
      return { dataType: SAFETENSORS_TO_ONNX[e.dtype], dims: e.shape };
    },
    readRows(name: string, start: number, end: number): Promise<Uint8Array> {
      const rowBytes = rowBytesOf(name);
      return ckpt.readRange(name, start * rowBytes, (end - start) * rowBytes);
    },
    readRowsInto(name: string, start: number, into: Uint8Array): Promise<void> {
      return ckpt.readRangeInto(name, start * rowBytesOf(name), into);
    },
  };
}
