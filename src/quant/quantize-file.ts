// Quantizing a model file into another, the way the CLI and the pipeline do it: quantized tensors are spilled to a
// scratch file beside the output as they are made (tensor-sink.ts), so memory holds the weights in flight and never
// the quantized model; saving copies them into the output's data file; the scratch file is removed in every case.
import { mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { loadModel, saveModel, type SaveProgress, type SaveResult } from '../onnx/model-file.js';
import { tempSibling, tempSiblingPid } from '../util/atomic-fs.js';
import { isRunning } from '../util/file-lock.js';
import { quantizeModel, type QuantizeOptions, type QuantizeResult } from './quantize-model.js';
import { SpillFile } from './streaming/tensor-sink.js';

export interface QuantizeFileOptions extends Omit<QuantizeOptions, 'sink'> {
  onSaveProgress?: (p: SaveProgress) => void;
}

export interface QuantizeFileResult extends Omit<QuantizeResult, 'model'> {
  saved: SaveResult;
  /** Bytes that went through the scratch file (the quantized tensors). */
  spilledBytes: number;
}

export async function quantizeModelFile(input: string, output: string, o: QuantizeFileOptions): Promise<QuantizeFileResult> {
  const model = await loadModel(input);
  const out = resolve(output);
  await mkdir(dirname(out), { recursive: true });
  await removeStaleSpills(out);
  // A temporary sibling name: leftovers of a killed run are recognised and cleaned like other temporaries.
  const spill = await SpillFile.create(tempSibling(spillPath(out)));
  try {
    const { model: quantized, ...r } = await quantizeModel(model, { ...o, sink: spill });
    const saved = await saveModel(quantized, out, { onProgress: o.onSaveProgress, signal: o.signal });
    return { ...r, saved, spilledBytes: spill.bytes };
  } finally {
    await spill.remove();
  }
}

/** What the scratch file is a temporary sibling of (its real name adds the pid and a random part). */
function spillPath(out: string): string {
  return `${out}.quantized`;
}

/**
 * Scratch files of earlier runs for the same output whose process is gone (killed outright: no cleanup ran). They
 * can be gigabytes; a run still going (another process) keeps its own.
 */
async function removeStaleSpills(out: string): Promise<void> {
  for (const name of await readdir(dirname(out))) {
    const pid = tempSiblingPid(spillPath(out), name);
    if (pid !== undefined && !isRunning(pid)) await rm(join(dirname(out), name), { force: true });
  }
}
