// Mutation fuzzing: thousands of seeded byte flips, bit flips, truncations, insertions and splices of valid models
// (ours and corpus ones) through decodeModel / encodeModel / loadModel / decodeTensor. Whatever the bytes, the only
// error that may come out is an OnnxError (never a RangeError or TypeError from protobufjs or our mapping).
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeModel, decodeTensor, encodeModel, encodeTensor } from '../../src/onnx/codec.js';
import { buildDemoModel } from '../../src/onnx/inspect.js';
import { loadModel, saveModel } from '../../src/onnx/model-file.js';
import { OnnxError } from '../../src/util/errors.js';
import { CORPUS_DIR, requireInCi, sampleModels, seededRandom } from '../helpers/onnx.js';

const CORPUS_MODELS = ['node/test_if', 'node/test_loop11', 'node/test_scan9_sum', 'pytorch-operator/test_operator_conv', 'simple/test_sequence_model1'];

type Mutation = (b: Uint8Array, rand: () => number) => Uint8Array;
const at = (n: number, rand: () => number) => Math.floor(rand() * n);

const MUTATIONS: [string, Mutation][] = [
  ['byte flips', (b, rand) => {
    const out = Uint8Array.from(b); // a copy (Buffer.slice would be a view)
    const k = 1 + at(4, rand);
    for (let i = 0; i < k; i++) out[at(out.length, rand)] = at(256, rand);
    return out;
  }],
  ['bit flip', (b, rand) => {
    const out = Uint8Array.from(b); // a copy (Buffer.slice would be a view)
    out[at(out.length, rand)] ^= 1 << at(8, rand);
    return out;
  }],
  ['truncation', (b, rand) => Uint8Array.from(b.subarray(0, at(b.length, rand)))],
  ['insertion', (b, rand) => {
    const pos = at(b.length + 1, rand);
    const extra = Uint8Array.from({ length: 1 + at(8, rand) }, () => at(256, rand));
    return Buffer.concat([b.subarray(0, pos), extra, b.subarray(pos)]);
  }],
  ['splice of its own bytes', (b, rand) => {
    const from = at(b.length, rand);
    const len = at(Math.min(64, b.length - from) + 1, rand);
    const pos = at(b.length + 1, rand);
    return Buffer.concat([b.subarray(0, pos), b.subarray(from, from + len), b.subarray(pos)]);
  }],
  ['varint set to a huge length', (b, rand) => {
    const out = Buffer.concat([b, new Uint8Array(4)]);
    const pos = at(b.length, rand);
    out.set([0xff, 0xff, 0xff, 0xff, 0x0f], Math.min(pos, out.length - 5));
    return out;
  }],
];

/** What came out of one mutated input: ok, a typed error, or something else (a bug). */
function classify(e: unknown): 'onnx-error' | string {
  if (e instanceof OnnxError) return 'onnx-error';
  return `${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`;
}

let dir: string;
const seeds: [string, Uint8Array][] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phi-forge-fuzz-'));
  for (const [name, m] of sampleModels()) seeds.push([`ours: ${name}`, encodeModel(m)]);
  requireInCi(existsSync(CORPUS_DIR), CORPUS_DIR);
  for (const rel of CORPUS_MODELS) {
    const f = join(CORPUS_DIR, rel, 'model.onnx');
    if (existsSync(f)) seeds.push([rel, new Uint8Array(await readFile(f))]);
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('mutation fuzzing', () => {
  it('decodeModel and re-encoding: 4,000 mutated models, only OnnxError', () => {
    const rand = seededRandom(20240611);
    const bad: string[] = [];
    const outcomes = { decoded: 0, rejected: 0, reencoded: 0 };
    for (let i = 0; i < 4000; i++) {
      const [seedName, seed] = seeds[i % seeds.length];
      const [mutName, mutate] = MUTATIONS[at(MUTATIONS.length, rand)];
      const bytes = mutate(seed, rand);
      try {
        const m = decodeModel(bytes);
        outcomes.decoded++;
        // What decodes must also encode (dropping fields the mutation made unknown) and decode again.
        decodeModel(encodeModel(m, { dropUnknownFields: true }));
        outcomes.reencoded++;
      } catch (e) {
        const c = classify(e);
        if (c === 'onnx-error') outcomes.rejected++;
        else if (bad.length < 10) bad.push(`#${i} ${seedName} / ${mutName}: ${c}`);
      }
    }
    console.log(`fuzz decode: ${JSON.stringify(outcomes)} over ${seeds.length} seed models`);
    expect(bad).toEqual([]);
    // The fuzzer must reach both sides: many mutations still decode, many are rejected.
    expect(outcomes.decoded).toBeGreaterThan(500);
    expect(outcomes.rejected).toBeGreaterThan(500);
  });

  it('decodeTensor: 1,000 mutated TensorProtos, only OnnxError', () => {
    const rand = seededRandom(7);
    const encoded = sampleModels()[1][1].graph.initializers.map((t) => encodeTensor(t));
    const bad: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const [, mutate] = MUTATIONS[at(MUTATIONS.length, rand)];
      try {
        decodeTensor(mutate(encoded[i % encoded.length], rand), { dropUnknownFields: i % 2 === 0 });
      } catch (e) {
        const c = classify(e);
        if (c !== 'onnx-error' && bad.length < 10) bad.push(`#${i}: ${c}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('loadModel on a model with external data: 300 mutated .onnx files, reading every tensor, only OnnxError', async () => {
    const rand = seededRandom(99);
    const base = join(dir, 'demo');
    await saveModel(buildDemoModel(), join(base, 'demo.onnx'));
    const good = new Uint8Array(await readFile(join(base, 'demo.onnx')));
    const bad: string[] = [];
    let loaded = 0;
    for (let i = 0; i < 300; i++) {
      const [mutName, mutate] = MUTATIONS[at(MUTATIONS.length, rand)];
      const file = join(base, 'mutated.onnx');
      await writeFile(file, mutate(good, rand));
      try {
        const m = await loadModel(file);
        for (const t of m.allTensors()) if (t.source.kind !== 'strings') await t.bytes();
        loaded++;
      } catch (e) {
        const c = classify(e);
        if (c !== 'onnx-error' && bad.length < 10) bad.push(`#${i} ${mutName}: ${c}`);
      }
    }
    console.log(`fuzz loadModel: ${loaded} of 300 mutated files loaded and read`);
    expect(bad).toEqual([]);
  });
});
