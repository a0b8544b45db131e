// End to end: `build <org/name>` against a local server speaking the hub's protocol: the files a build needs are
// downloaded once into the Python-layout cache, the resolved commit is recorded, and builds work offline afterwards.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthCheckpoint } from '../../src/arch/synth.js';
import { writeTinyTokenizer } from '../../src/checkpoint/tiny-tokenizer.js';
import type { BuildReport } from '../../src/stages/build-report.js';
import { startFakeHub, type FakeHub } from '../helpers/hub-server.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const REPO = 'acme/phi-3-tiny';
let work: string;
let hub: FakeHub;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'phi-forge-build-hub-'));
  const ckpt = join(work, 'ckpt');
  await synthCheckpoint({ preset: 'phi-3-mini-4k', scale: 'tiny', seed: 3, outDir: ckpt });
  const config = JSON.parse(await readFile(join(ckpt, 'config.json'), 'utf8')) as { vocab_size: number };
  await writeTinyTokenizer(ckpt, config.vocab_size);
  const files = await Promise.all((await readdir(ckpt)).map(async (path) => ({ path, content: await readFile(join(ckpt, path)) })));
  hub = await startFakeHub({ repos: [{ id: REPO, commits: [{ files: [...files, { path: 'README.md', content: '# tiny\n' }], refs: ['main'] }] }] });
});
afterAll(async () => {
  await hub?.close().catch(() => undefined);
  await rm(work, { recursive: true, force: true });
});

function cli(args: string[], env: Record<string, string>) {
  return execa('pnpm', ['pipeline', ...args], { cwd: ROOT, reject: false, env: { CI: 'true', HF_HUB_CACHE: join(work, 'hf-cache'), ...env } });
}

describe('build from a hub id', () => {
  it('downloads once, records the commit, then builds offline from the shared cache', async () => {
    const online = { HF_ENDPOINT: hub.endpoint };
    const r = await cli(['build', REPO, '--target', 'cpu', '--artifacts', join(work, 'a1'), '--out', join(work, 'out'), '--json'], online);
    expect(r.exitCode, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as BuildReport;
    const commit = hub.sha(REPO, 'main');
    expect(report.source.revision).toBe(commit);
    expect(report.source.origin).toBe(`hub:${REPO}@${commit}`);
    const manifest = JSON.parse(await readFile(join(report.targets[0].package!, 'manifest.json'), 'utf8'));
    expect(manifest.source.revision).toBe(commit);
    // every file the build needs fetched exactly once; README never
    // every file the build needs fetched exactly once (LFS weights: one redirect to the CDN, one blob GET); README never
    const resolved = hub.requests.filter((q) => q.server === 'hub' && q.method === 'GET' && /\/resolve\//.test(q.path));
    const perFile = new Map<string, number>();
    for (const q of resolved) perFile.set(q.path.split('/').pop()!, (perFile.get(q.path.split('/').pop()!) ?? 0) + 1);
    expect(perFile.get('model.safetensors')).toBe(1);
    expect(perFile.get('config.json')).toBe(1);
    expect(perFile.get('tokenizer.json')).toBe(1);
    expect(hub.requests.filter((q) => q.server === 'cdn' && q.method === 'GET')).toHaveLength(1);
    expect(perFile.has('README.md')).toBe(false);
    // Python-layout cache
    const cacheRepo = join(work, 'hf-cache', 'models--acme--phi-3-tiny');
    expect((await readFile(join(cacheRepo, 'refs', 'main'), 'utf8')).trim()).toBe(commit);
    expect(await readdir(join(cacheRepo, 'snapshots'))).toEqual([commit]);

    // offline, server gone: the cached build is reused, and a fresh stage cache builds from the hub cache alone
    await hub.close();
    const again = await cli(['build', REPO, '--target', 'cpu', '--artifacts', join(work, 'a1'), '--out', join(work, 'out'), '--json'], { HF_HUB_OFFLINE: '1' });
    expect(again.exitCode, again.stderr).toBe(0);
    expect((JSON.parse(again.stdout) as BuildReport).stagesRun).toBe(0);
    const fresh = await cli(['build', REPO, '--target', 'cpu', '--artifacts', join(work, 'a2'), '--out', join(work, 'out2'), '--json'], { HF_HUB_OFFLINE: '1' });
    expect(fresh.exitCode, fresh.stderr).toBe(0);
    const f = JSON.parse(fresh.stdout) as BuildReport;
    expect(f.targets[0].ok).toBe(true);
    expect(f.source.revision).toBe(commit);
  });
});
