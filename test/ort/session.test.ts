// The one place sessions are opened: a model onnxruntime refuses is an OnnxError naming the file, and thread counts
// far beyond the machine are refused before onnxruntime starts them.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openOrtSession } from '../../src/ort/session.js';
import { maxIntraOpThreads } from '../../src/ort/threads.js';
import { OnnxError } from '../../src/util/errors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phi-forge-ort-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('openOrtSession', () => {
  it('a file onnxruntime cannot load is an OnnxError naming it, with a fix', async () => {
    const bad = join(dir, 'bad.onnx');
    await writeFile(bad, 'not a model');
    const e = await openOrtSession(bad).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OnnxError);
    expect((e as OnnxError).code).toBe('ORT_LOAD_FAILED');
    expect((e as OnnxError).file).toBe(bad);
    expect((e as OnnxError).message).toMatch(/fix:/);
  });

  it('refuses more intra-op threads than the machine allows, before creating anything', async () => {
    const e = await openOrtSession(join(dir, 'never-read.onnx'), { intraOpNumThreads: maxIntraOpThreads().value + 1 }).catch((x: unknown) => x);
    expect((e as { code?: string }).code).toBe('SESSION_THREADS');
  });
});
