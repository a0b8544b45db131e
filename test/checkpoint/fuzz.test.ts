// Mutation fuzzing (deterministic seeds): random byte flips, digit swaps and truncations of a valid safetensors file,
// config.json, generation_config.json and model.safetensors.index.json. Whatever the damage, the only thing that may
// come out is a parsed value or a CheckpointError — never a RangeError, TypeError or an unhandled rejection.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint/checkpoint.js';
import { readGenerationConfig } from '../../src/checkpoint/generation-config.js';
import { parseArchConfig } from '../../src/arch/index.js';
import { parseHfConfigText } from '../../src/checkpoint/hf-config.js';
import { knownConfig } from '../../src/checkpoint/known-configs.js';
import { SafetensorsFile, checkHeaderLength, parseSafetensorsHeader } from '../../src/checkpoint/safetensors.js';
import { ArchitectureError, CheckpointError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/random.js';
import {
  f32,
  i64,
  layoutSafetensors,
  makeTempDir,
  rampTensors,
  removeTempDir,
  tinyPhi3Config,
  u16,
  writeTinyCheckpoint,
} from '../helpers/checkpoint.js';

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('phi-forge-fuzz-');
});
afterAll(async () => {
  await removeTempDir(dir);
});

const DIGITS = '0123456789';
const JSON_CHARS = '{}[]":,-.0123456789eE tfnul';

/** One random mutation of `src` (focused on [lo, hi) half of the time, where the structure lives). */
function mutate(rng: Rng, src: Uint8Array, lo = 0, hi = src.byteLength): Uint8Array {
  const pick = (a: number, b: number) => a + Math.floor(rng.uniform() * (b - a));
  const at = () => (rng.uniform() < 0.5 ? pick(lo, hi) : pick(0, src.byteLength));
  const out = Uint8Array.from(src);
  switch (pick(0, 6)) {
    case 0: // flip random bits
      for (let k = pick(1, 4); k > 0; k--) out[at()] ^= 1 << pick(0, 8);
      return out;
    case 1: // random bytes
      for (let k = pick(1, 3); k > 0; k--) out[at()] = pick(0, 256);
      return out;
    case 2: // a digit becomes another digit (shapes, offsets, header length)
    case 3: {
      const digits = [...out.keys()].filter((i) => i >= 8 && DIGITS.includes(String.fromCharCode(out[i])));
      if (digits.length === 0) return out;
      for (let k = pick(1, 3); k > 0; k--) out[digits[pick(0, digits.length)]] = DIGITS.charCodeAt(pick(0, 10));
      return out;
    }
    case 4: // a JSON-significant character somewhere in the structure
      out[pick(lo, hi)] = JSON_CHARS.charCodeAt(pick(0, JSON_CHARS.length));
      return out;
    default: // truncation
      return out.slice(0, pick(0, src.byteLength));
  }
}

function tally(outcomes: Map<string, number>, e: unknown): void {
  if (!(e instanceof CheckpointError)) throw e;
  outcomes.set(e.code, (outcomes.get(e.code) ?? 0) + 1);
}

describe('mutation fuzz', () => {
  const valid = layoutSafetensors(
    [
      { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [4, 3], bytes: u16([0x3f80, 0xc040, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) },
      { name: 'model.norm.weight', dtype: 'F32', shape: [3], bytes: f32([1, 0.5, -2]) },
      { name: 'h', dtype: 'F16', shape: [2], bytes: u16([0x3c00, 0x7c00]) },
      { name: 'ids', dtype: 'I64', shape: [2], bytes: i64([7, -1]) },
      { name: 'empty', dtype: 'F32', shape: [0], bytes: new Uint8Array(0) },
    ],
    { format: 'pt' },
  );
  const headerEnd = 8 + Number(new DataView(valid.buffer).getBigUint64(0, true));

  it('safetensors files: 2000 mutated files through open + every read give only CheckpointErrors', async () => {
    const rng = new Rng(20240611);
    const outcomes = new Map<string, number>();
    const p = join(dir, 'fuzz.safetensors');
    for (let i = 0; i < 2000; i++) {
      await writeFile(p, mutate(rng, valid, 0, headerEnd));
      let f: SafetensorsFile | undefined;
      try {
        f = await SafetensorsFile.open(p);
        for (const e of f.entries.values()) {
          const raw = await f.readRaw(e.name);
          if (raw.byteLength !== e.end - e.begin) throw new Error(`short read of ${e.name}`);
          if (['F32', 'F16', 'BF16', 'F64'].includes(e.dtype)) await f.readFloat32(e.name);
        }
        outcomes.set('ok', (outcomes.get('ok') ?? 0) + 1);
      } catch (e) {
        tally(outcomes, e);
      } finally {
        await f?.close();
      }
    }
    // The fuzzer reaches many distinct failure modes and still lets some files through (data-region flips).
    expect(outcomes.get('ok') ?? 0).toBeGreaterThan(50);
    expect(outcomes.size).toBeGreaterThanOrEqual(8);
  });

  it('safetensors headers in memory: 20000 more mutations give only CheckpointErrors', () => {
    const rng = new Rng(7);
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 20000; i++) {
      const m = mutate(rng, valid, 0, headerEnd);
      try {
        const n = checkHeaderLength(m, m.byteLength, 'mem');
        parseSafetensorsHeader(m.subarray(8, 8 + n), m.byteLength, 'mem');
        outcomes.set('ok', (outcomes.get('ok') ?? 0) + 1);
      } catch (e) {
        tally(outcomes, e);
      }
    }
    expect(outcomes.size).toBeGreaterThanOrEqual(8);
  });

  it('config.json text: 5000 mutations of real configs, read and parsed by their family, give only CheckpointErrors (or ARCH_UNSUPPORTED)', () => {
    const rng = new Rng(99);
    const outcomes = new Map<string, number>();
    const sources = [knownConfig('phi-3.5-mini'), knownConfig('phi-4-mini'), knownConfig('phi-2'), tinyPhi3Config()].map((c) =>
      new TextEncoder().encode(JSON.stringify(c, null, 2)),
    );
    for (let i = 0; i < 5000; i++) {
      const src = sources[i % sources.length];
      const text = new TextDecoder().decode(mutate(rng, src));
      try {
        parseArchConfig(parseHfConfigText(text, 'config.json'));
        outcomes.set('ok', (outcomes.get('ok') ?? 0) + 1);
      } catch (e) {
        // A mangled architecture name has no family: the registry's typed refusal, not a crash.
        if (e instanceof ArchitectureError && e.code === 'ARCH_UNSUPPORTED') outcomes.set(e.code, (outcomes.get(e.code) ?? 0) + 1);
        else tally(outcomes, e);
      }
    }
    expect(outcomes.get('ok') ?? 0).toBeGreaterThan(100);
    expect(outcomes.get('CONFIG_INVALID') ?? 0).toBeGreaterThan(100);
    expect(outcomes.get('CONFIG_JSON') ?? 0).toBeGreaterThan(100);
  });

  it('index.json and generation_config.json: 600 mutated folders through Checkpoint.open give only CheckpointErrors', async () => {
    const ck = join(dir, 'ckpt');
    await mkdir(ck);
    const specs = [
      { name: 'model.embed_tokens.weight', shape: [8, 4] },
      { name: 'model.norm.weight', shape: [4] },
      { name: 'lm_head.weight', shape: [8, 4] },
    ];
    await writeTinyCheckpoint(ck, { tensors: rampTensors(specs), maxShardBytes: 128 });
    const indexPath = join(ck, 'model.safetensors.index.json');
    const index = new Uint8Array(await readFile(indexPath));
    const gen = new TextEncoder().encode(JSON.stringify({ bos_token_id: 1, eos_token_id: [2, 32007], do_sample: false }));
    const rng = new Rng(5);
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 600; i++) {
      await writeFile(indexPath, mutate(rng, index));
      await writeFile(join(ck, 'generation_config.json'), i % 3 === 0 ? mutate(rng, gen) : gen);
      try {
        const c = await Checkpoint.open(ck);
        for (const n of c.tensorNames()) await c.readFloat32(n);
        await c.close();
        await readGenerationConfig(ck);
        outcomes.set('ok', (outcomes.get('ok') ?? 0) + 1);
      } catch (e) {
        tally(outcomes, e);
      }
    }
    expect(outcomes.get('ok') ?? 0).toBeGreaterThan(20);
    expect(outcomes.size).toBeGreaterThanOrEqual(4);
  });
});
