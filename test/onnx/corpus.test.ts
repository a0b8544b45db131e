// The ONNX backend-test corpus (Debian's libonnx-testdata, 1,072 models with stored inputs and outputs):
// decode → encode → decode gives an equal model for every one, and every model onnxruntime-node can run
// reproduces the stored outputs from the RE-ENCODED bytes, within the backend tests' tolerance; loadModel's checks
// (a model, not just bytes that decode) accept every one.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { decodeModel, decodeTensor, encodeModel } from '../../src/onnx/codec.js';
import { loadModel } from '../../src/onnx/model-file.js';
import { dataTypeName } from '../../src/onnx/dtype.js';
import type { Model } from '../../src/onnx/ir.js';
import type { Tensor } from '../../src/onnx/tensor.js';
import {
  CORPUS_DIR,
  compareOutput,
  corpusCases,
  dataSetFiles,
  irDiff,
  ortTypeOf,
  requireInCi,
  toOrtTensor,
  type CorpusCase,
} from '../helpers/onnx.js';

// onnx/backend/test/loader: rtol = 1e-3, atol = 1e-7 unless a model's data.json says otherwise (only "real" models do).
const RTOL = 1e-3;
const ATOL = 1e-7;

// Counts measured on this machine (onnxruntime-node 1.30, libonnx-testdata 1.12.0); the test asserts these floors.
const EXPECTED_MODELS = 1072;
const MIN_ORT_PASSED = 959;

type Outcome = { kind: 'passed' } | { kind: 'skipped'; reason: string } | { kind: 'failed'; detail: string };

const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { logSeverityLevel: 4, graphOptimizationLevel: 'basic' };

async function createSession(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, SESSION_OPTIONS);
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}

/** Groups onnxruntime's refusals into a few readable reasons. */
function refusal(e: unknown): string {
  const msg = firstLine(e);
  if (/NOT_IMPLEMENTED|Could not find an implementation/i.test(msg)) return 'onnxruntime has no kernel for an op/type in it';
  if (/is not a registered function\/op|No Op registered|Unrecognized attribute|opset .* not supported|Opset .* is under development/i.test(msg)) {
    return 'onnxruntime does not know an op, attribute or opset in it';
  }
  // Seen with onnxruntime-node 1.30: bfloat16 casts, RNN/GRU/LSTM with layout=1, StringNormalizer without its locale.
  return 'onnxruntime refuses the model (original bytes too)';
}

async function runOnce(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<ort.Tensor[]> {
  const out = await session.run(feeds);
  return session.outputNames.map((n) => out[n]);
}

async function mismatch(outputs: ort.Tensor[], expected: Tensor[]): Promise<string | undefined> {
  if (outputs.length < expected.length) return `${outputs.length} outputs, ${expected.length} expected`;
  for (let i = 0; i < expected.length; i++) {
    const why = await compareOutput(outputs[i], expected[i], RTOL, ATOL);
    if (why) return `output ${i}: ${why}`;
  }
  return undefined;
}

/** Runs one case through onnxruntime with the re-encoded bytes; blames the codec only when the original bytes do better. */
async function checkWithOrt(c: CorpusCase, model: Model, original: Uint8Array, reencoded: Uint8Array): Promise<Outcome> {
  const g = model.graph;
  const inputs = g.inputs.filter((v) => !g.initializer(v.name));
  if ([...inputs, ...g.outputs].some((v) => v.type && v.type.kind !== 'tensor')) {
    return { kind: 'skipped', reason: 'sequence/optional/map inputs or outputs (their .pb files are not TensorProtos)' };
  }
  if (!c.dataSets.length) return { kind: 'skipped', reason: 'no test data set' };

  let session: ort.InferenceSession;
  try {
    session = await createSession(reencoded);
  } catch (e) {
    try {
      const s = await createSession(original);
      await s.release();
    } catch (e2) {
      return { kind: 'skipped', reason: refusal(e2) };
    }
    return { kind: 'failed', detail: `re-encoded model does not load, the original does: ${firstLine(e)}` };
  }
  try {
    for (const ds of c.dataSets) {
      const feeds: Record<string, ort.Tensor> = {};
      const files = dataSetFiles(ds, 'input');
      for (let i = 0; i < files.length; i++) {
        const t = decodeTensor(await readFile(files[i]), { path: files[i] });
        if (!ortTypeOf(t.dataType)) return { kind: 'skipped', reason: `${dataTypeName(t.dataType)} inputs cannot be fed from onnxruntime-node` };
        feeds[inputs[i].name] = await toOrtTensor(t);
      }
      const expected = await Promise.all(dataSetFiles(ds, 'output').map(async (f) => decodeTensor(await readFile(f), { path: f })));
      if (expected.some((t) => !ortTypeOf(t.dataType))) return { kind: 'skipped', reason: 'outputs of a type onnxruntime-node cannot return' };
      let outputs: ort.Tensor[];
      try {
        outputs = await runOnce(session, feeds);
      } catch (e) {
        const orig = await createSession(original);
        try {
          await runOnce(orig, feeds);
        } catch {
          return { kind: 'skipped', reason: 'onnxruntime fails to run it (original bytes too)' };
        } finally {
          await orig.release();
        }
        return { kind: 'failed', detail: `re-encoded model fails to run, the original runs: ${firstLine(e)}` };
      }
      const why = await mismatch(outputs, expected);
      if (why) {
        const orig = await createSession(original);
        try {
          const origWhy = await mismatch(await runOnce(orig, feeds), expected);
          if (origWhy) return { kind: 'skipped', reason: 'onnxruntime differs from the stored outputs (original bytes too)' };
        } finally {
          await orig.release();
        }
        return { kind: 'failed', detail: `re-encoded model: ${why}; the original matches` };
      }
    }
    return { kind: 'passed' };
  } finally {
    await session.release();
  }
}

describe('ONNX backend-test corpus', () => {
  it('decode → encode → decode is the identity, and re-encoded models reproduce the stored outputs', async () => {
    requireInCi(existsSync(CORPUS_DIR), `${CORPUS_DIR} (Debian package libonnx-testdata)`);
    const cases = corpusCases();
    if (!cases.length) {
      console.log(`corpus: ${CORPUS_DIR} not installed, nothing to check`);
      return;
    }
    let roundTripped = 0;
    let byteIdentical = 0;
    const roundTripFailures: string[] = [];
    const ortFailures: string[] = [];
    const skipped = new Map<string, number>();
    let ortPassed = 0;
    for (const c of cases) {
      const original = new Uint8Array(await readFile(c.model));
      const model = decodeModel(original, { path: c.model });
      const reencoded = encodeModel(model);
      const diff = irDiff(model, decodeModel(reencoded, { path: c.model }), 3);
      if (diff.length || model.unknownFields.length) roundTripFailures.push(`${c.kind}/${c.name}: ${diff.join('; ')}${model.unknownFields.length ? ' unknown fields' : ''}`);
      else roundTripped++;
      if (Buffer.compare(original, reencoded) === 0) byteIdentical++;

      const r = await checkWithOrt(c, model, original, reencoded);
      if (r.kind === 'passed') ortPassed++;
      else if (r.kind === 'skipped') skipped.set(r.reason, (skipped.get(r.reason) ?? 0) + 1);
      else ortFailures.push(`${c.kind}/${c.name}: ${r.detail}`);
    }
    const skippedTotal = [...skipped.values()].reduce((a, b) => a + b, 0);
    console.log(
      [
        `corpus: ${cases.length} models`,
        `  round trip: ${roundTripped} equal (${byteIdentical} byte-identical re-encodings), ${roundTripFailures.length} failed`,
        `  onnxruntime on re-encoded bytes: ${ortPassed} passed, ${ortFailures.length} failed, ${skippedTotal} skipped`,
        ...[...skipped].sort((a, b) => b[1] - a[1]).map(([reason, n]) => `    ${n} skipped: ${reason}`),
        ...ortFailures.map((f) => `  FAILED ${f}`),
        ...roundTripFailures.map((f) => `  ROUND TRIP FAILED ${f}`),
      ].join('\n'),
    );
    expect(roundTripFailures).toEqual([]);
    expect(ortFailures).toEqual([]);
    expect(cases.length).toBe(EXPECTED_MODELS);
    expect(roundTripped).toBe(EXPECTED_MODELS);
    expect(ortPassed).toBeGreaterThanOrEqual(MIN_ORT_PASSED);
  }, 600_000);

  it('every model loads through loadModel (its checks that a file is a model refuse none of them)', async () => {
    requireInCi(existsSync(CORPUS_DIR), `${CORPUS_DIR} (Debian package libonnx-testdata)`);
    const refused: string[] = [];
    for (const c of corpusCases()) await loadModel(c.model).catch((e: unknown) => refused.push(`${c.kind}/${c.name}: ${firstLine(e)}`));
    expect(refused).toEqual([]);
  });
});
