// fetchCheckpoint against a local fake hub: fresh download, cache hits, resume, integrity, offline, revisions,
// gated repos, missing repos. Every test has its own temp cache; the fake hub runs on 127.0.0.1 only.
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readFile, readdir, readlink, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fetchCheckpoint, type HubProgress, type HubSourceOptions } from '../../src/hub/index.js';
import { isPhiForgeError } from '../../src/util/errors.js';
import { startFakeHub, type FakeHub } from '../helpers/hub-server.js';
import { BIN_ONLY, fakeRepos, GATED, GOOD_TOKEN, SHARD1, SHARD2, SHARDED, SINGLE } from './repos.js';

let hub: FakeHub;
let cacheDir: string;

beforeAll(async () => {
  hub = await startFakeHub({ repos: fakeRepos(), tokens: [GOOD_TOKEN] });
});
afterAll(async () => {
  await hub?.close();
});
beforeEach(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'phi-forge-hub-'));
  hub.requests.length = 0;
  hub.clearFaults();
});
afterEach(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});

/** Options that never read the machine's HF_* variables or token file. */
function opts(extra: Partial<HubSourceOptions> & { repo: string }): HubSourceOptions {
  return { endpoint: hub.endpoint, cacheDir, offline: false, token: '', retry: { baseDelayMs: 1 }, ...extra };
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const gitSha1 = (b: Uint8Array) => createHash('sha1').update(`blob ${b.byteLength}\0`).update(b).digest('hex');
const repoDir = (repo: string) => join(cacheDir, `models--${repo.replace('/', '--')}`);
const cdnGets = (file: string, repo = SHARDED, commit = 0) =>
  hub.requests.filter((r) => r.server === 'cdn' && r.method === 'GET' && r.path === `/blobs/${hub.sha256(repo, file, commit)}`);

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

const NEEDED = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'model.safetensors.index.json',
  SHARD1,
  SHARD2,
];

describe('fresh download', () => {
  it('fetches exactly the checkpoint files of the revision into a Python-layout snapshot', async () => {
    const events: HubProgress[] = [];
    const got = await fetchCheckpoint(opts({ repo: SHARDED, onProgress: (p) => events.push({ ...p }) }));
    const main = hub.sha(SHARDED, 'main');
    expect(got.commit).toBe(main);
    expect(got.snapshotDir).toBe(join(repoDir(SHARDED), 'snapshots', main));
    expect(got.files).toEqual(NEEDED);
    expect([...got.downloaded].sort()).toEqual([...NEEDED].sort());
    expect(got.bytesDownloaded).toBeGreaterThan(500_000);

    // Bytes equal the hub's, and nothing else was asked for (no README, .bin, onnx/).
    for (const f of NEEDED) {
      const bytes = await readFile(join(got.snapshotDir, f));
      const linked = await readlink(join(got.snapshotDir, f));
      expect(linked.endsWith(f.endsWith('.safetensors') ? sha256(bytes) : gitSha1(bytes))).toBe(true);
    }
    expect(await readFile(join(got.snapshotDir, SHARD2))).toHaveLength(200_000);
    const asked = hub.requests.map((r) => r.path).join('\n');
    expect(asked).not.toMatch(/README|pytorch_model|onnx/);
    expect(hub.requests.filter((r) => r.path.includes('/api/')).map((r) => r.path)).toEqual([
      `/api/models/${SHARDED}/revision/main`,
      `/api/models/${SHARDED}/paths-info/${main}`,
      `/api/models/${SHARDED}/paths-info/${main}`,
    ]);

    // Progress: per-file bytes grow to the file size; the file count ends complete.
    const last = events.at(-1)!;
    expect(last.filesDone).toBe(NEEDED.length);
    expect(last.filesTotal).toBe(NEEDED.length);
    const shardEvents = events.filter((e) => e.file === SHARD1);
    expect(shardEvents.every((e) => e.totalBytes === 300_000)).toBe(true);
    expect(shardEvents.map((e) => e.bytes)).toEqual([...shardEvents.map((e) => e.bytes)].sort((a, b) => a - b));
    expect(shardEvents.at(-1)!.bytes).toBe(300_000);
  });

  it('takes a single model.safetensors and the optional tokenizer files a repo has', async () => {
    const got = await fetchCheckpoint(opts({ repo: SINGLE }));
    expect(got.files).toEqual([
      'config.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'special_tokens_map.json',
      'tokenizer.model',
      'chat_template.jinja',
      'model.safetensors',
    ]);
    expect((await stat(join(got.snapshotDir, 'model.safetensors'))).size).toBe(150_000);
  });
});

describe('cache layout', () => {
  it('is the one Python huggingface_hub writes: blobs by digest, relative symlinks, refs, .no_exist', async () => {
    const got = await fetchCheckpoint(opts({ repo: SHARDED }));
    const dir = repoDir(SHARDED);
    expect((await readdir(dir)).sort()).toEqual(['.no_exist', 'blobs', 'refs', 'snapshots']);
    expect(await readFile(join(dir, 'refs', 'main'), 'utf8')).toBe(got.commit); // no newline, like Python
    for (const f of NEEDED) {
      const link = join(got.snapshotDir, f);
      expect((await lstat(link)).isSymbolicLink()).toBe(true);
      const target = await readlink(link);
      expect(target).toMatch(/^\.\.\/\.\.\/blobs\/[0-9a-f]{40,64}$/);
    }
    const blobs = await readdir(join(dir, 'blobs'));
    expect(blobs).toHaveLength(NEEDED.length);
    expect(blobs.every((b) => /^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(b))).toBe(true);
    // Optional files the repo lacks are remembered as absent at this commit.
    expect((await readdir(join(dir, '.no_exist', got.commit))).sort()).toEqual(['added_tokens.json', 'chat_template.jinja', 'tokenizer.model']);

    // An independent reader of that layout (@huggingface/hub's port of Python's scan_cache_dir) agrees.
    const { scanCacheDir } = await import('@huggingface/hub');
    const scan = await scanCacheDir(cacheDir);
    expect(scan.warnings).toEqual([]);
    expect(scan.repos).toHaveLength(1);
    const [repo] = scan.repos;
    expect(repo!.id).toEqual({ type: 'model', name: SHARDED });
    expect(repo!.revisions.map((r) => [r.commitOid, r.refs, r.files.length])).toEqual([[got.commit, ['main'], NEEDED.length]]);
    let bytes = 0;
    for (const f of NEEDED) bytes += (await stat(join(got.snapshotDir, f))).size;
    expect(repo!.size).toBe(bytes);
  });

  it('uses a cache written by Python tools (hand-built here from the documented layout), offline', async () => {
    const dir = repoDir(SINGLE);
    const commit = hub.sha(SINGLE, 'main');
    const { mkdir, symlink } = await import('node:fs/promises');
    await mkdir(join(dir, 'refs'), { recursive: true });
    await writeFile(join(dir, 'refs', 'main'), commit);
    const files: Record<string, Buffer> = {
      'config.json': Buffer.from('{"architectures":["Phi3ForCausalLM"]}'),
      'tokenizer.json': Buffer.from('{}'),
      'tokenizer_config.json': Buffer.from('{}'),
      'model.safetensors': Buffer.from('weights'),
    };
    for (const [name, bytes] of Object.entries(files)) {
      const etag = name.endsWith('.safetensors') ? sha256(bytes) : gitSha1(bytes);
      await mkdir(join(dir, 'blobs'), { recursive: true });
      await writeFile(join(dir, 'blobs', etag), bytes);
      await mkdir(join(dir, 'snapshots', commit), { recursive: true });
      await symlink(`../../blobs/${etag}`, join(dir, 'snapshots', commit, name));
    }
    const got = await fetchCheckpoint(opts({ repo: SINGLE, offline: true }));
    expect(got.commit).toBe(commit);
    expect(got.files).toEqual(['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']);
    expect(await readFile(join(got.snapshotDir, 'model.safetensors'), 'utf8')).toBe('weights');
    expect(hub.requests).toEqual([]);
  });
});

describe('cache hits', () => {
  it('a second build asks only which commit main is, and downloads nothing', async () => {
    const first = await fetchCheckpoint(opts({ repo: SHARDED }));
    hub.requests.length = 0;
    const again = await fetchCheckpoint(opts({ repo: SHARDED }));
    expect(again).toEqual({ ...first, downloaded: [], bytesDownloaded: 0 });
    expect(hub.requests.map((r) => r.path)).toEqual([`/api/models/${SHARDED}/revision/main`]);
  });

  it('a commit hash whose snapshot is complete makes no request at all', async () => {
    const first = await fetchCheckpoint(opts({ repo: SHARDED }));
    hub.requests.length = 0;
    const again = await fetchCheckpoint(opts({ repo: SHARDED, revision: first.commit }));
    expect(again.files).toEqual(first.files);
    expect(hub.requests).toEqual([]);
  });

  it('works with the hub gone: the branch resolves through refs/, no request succeeds or is needed', async () => {
    const own = await startFakeHub({ repos: fakeRepos() });
    const first = await fetchCheckpoint(opts({ repo: SHARDED, endpoint: own.endpoint }));
    await own.close();
    const again = await fetchCheckpoint(opts({ repo: SHARDED, endpoint: own.endpoint }));
    expect(again.commit).toBe(first.commit);
    expect(again.files).toEqual(first.files);
    expect(again.downloaded).toEqual([]);
    // ...but a repo never downloaded fails with a network error that says what is missing.
    const err = await rejection(fetchCheckpoint(opts({ repo: SINGLE, endpoint: own.endpoint })));
    expect(err.code).toBe('HUB_NETWORK');
    expect(err.message).toMatch(/ECONNREFUSED/);
    expect(err.message).toContain(SINGLE);
  });
});

describe('resumable downloads', () => {
  it('resumes a file whose connection was cut mid-body with a Range request for the rest', async () => {
    hub.cutOnce(SHARD1, 100_000);
    const got = await fetchCheckpoint(opts({ repo: SHARDED }));
    const gets = cdnGets(SHARD1);
    expect(gets).toHaveLength(2);
    expect(gets[0]!.range).toBeUndefined();
    expect(gets[1]!.range).toBe('bytes=100000-');
    expect(gets[1]!.status).toBe(206);
    expect(sha256(await readFile(join(got.snapshotDir, SHARD1)))).toBe(hub.sha256(SHARDED, SHARD1));
  });

  it('resumes in a later run from the .incomplete blob an aborted run left', async () => {
    const controller = new AbortController();
    hub.stallOnce(SHARD2, 120_000);
    const err = await rejection(
      fetchCheckpoint(
        opts({
          repo: SHARDED,
          signal: controller.signal,
          onProgress: (p) => {
            if (p.file === SHARD2 && p.bytes >= 120_000) controller.abort();
          },
        }),
      ),
    );
    expect(err.name).toBe('AbortError');
    const blob = join(repoDir(SHARDED), 'blobs', hub.sha256(SHARDED, SHARD2, 1));
    expect((await stat(`${blob}.incomplete`)).size).toBe(120_000);
    await expect(stat(blob)).rejects.toThrow();

    hub.requests.length = 0;
    const got = await fetchCheckpoint(opts({ repo: SHARDED }));
    const gets = cdnGets(SHARD2, SHARDED, 1);
    expect(gets.map((g) => g.range)).toEqual(['bytes=120000-']);
    expect(got.downloaded).toEqual([SHARD2]);
    expect(got.bytesDownloaded).toBe(80_000);
    expect(sha256(await readFile(blob))).toBe(hub.sha256(SHARDED, SHARD2, 1));
    await expect(stat(`${blob}.incomplete`)).rejects.toThrow();
  });

  it('re-fetches the whole file when a resumed partial file held wrong bytes', async () => {
    const blob = join(repoDir(SINGLE), 'blobs', hub.sha256(SINGLE, 'model.safetensors'));
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(repoDir(SINGLE), 'blobs'), { recursive: true });
    await writeFile(`${blob}.incomplete`, Buffer.alloc(50_000, 0xab)); // not the file's first bytes
    const got = await fetchCheckpoint(opts({ repo: SINGLE }));
    const gets = cdnGets('model.safetensors', SINGLE);
    expect(gets.map((g) => g.range)).toEqual(['bytes=50000-', undefined]);
    expect(sha256(await readFile(join(got.snapshotDir, 'model.safetensors')))).toBe(hub.sha256(SINGLE, 'model.safetensors'));
  });
});

describe('concurrent builds', () => {
  it('two fetches of one model in one process download each blob once', async () => {
    const [a, b] = await Promise.all([fetchCheckpoint(opts({ repo: SHARDED })), fetchCheckpoint(opts({ repo: SHARDED }))]);
    expect(a.files).toEqual(b.files);
    expect([...a.downloaded, ...b.downloaded].sort()).toEqual([...NEEDED].sort());
    expect(cdnGets(SHARD1)).toHaveLength(1);
    expect(cdnGets(SHARD2, SHARDED, 1)).toHaveLength(1);
    expect(sha256(await readFile(join(a.snapshotDir, SHARD2)))).toBe(hub.sha256(SHARDED, SHARD2, 1));
  });
});

describe('integrity', () => {
  it('never stores a blob whose bytes fail the sha256 check, and names the file', async () => {
    hub.corrupt(SHARD1);
    const err = await rejection(fetchCheckpoint(opts({ repo: SHARDED })));
    expect(isPhiForgeError(err)).toBe(true);
    expect(err.code).toBe('HUB_CHECKSUM');
    expect(err.message).toContain(SHARD1);
    expect(err.message).toContain(hub.sha256(SHARDED, SHARD1, 1));
    const blobs = await readdir(join(repoDir(SHARDED), 'blobs'));
    expect(blobs.filter((b) => b.startsWith(hub.sha256(SHARDED, SHARD1, 1)))).toEqual([]); // no blob, no .incomplete
    await expect(lstat(join(repoDir(SHARDED), 'snapshots', hub.sha(SHARDED, 'main'), SHARD1))).rejects.toThrow();
    expect(cdnGets(SHARD1)).toHaveLength(2); // fetched once more before giving up

    hub.clearFaults();
    const got = await fetchCheckpoint(opts({ repo: SHARDED }));
    expect(got.downloaded).toEqual([SHARD1, SHARD2]);
  });

  it('recovers from corruption that happens once (the file is fetched again)', async () => {
    hub.corrupt('config.json', 1); // a small git file: checked by its git blob sha1
    const got = await fetchCheckpoint(opts({ repo: SINGLE }));
    const gets = hub.requests.filter((r) => r.path.endsWith('/resolve/' + got.commit + '/config.json'));
    expect(gets).toHaveLength(2);
    expect(JSON.parse(await readFile(join(got.snapshotDir, 'config.json'), 'utf8'))).toEqual({ architectures: ['Phi3ForCausalLM'] });
  });

  it('checks cached blobs before use: a damaged one is fetched again online and refused offline', async () => {
    const first = await fetchCheckpoint(opts({ repo: SINGLE }));
    const blob = join(repoDir(SINGLE), 'blobs', hub.sha256(SINGLE, 'model.safetensors'));
    const bytes = await readFile(blob);
    bytes[10] ^= 1;
    await writeFile(blob, bytes); // same size, one bit flipped

    const offline = await rejection(fetchCheckpoint(opts({ repo: SINGLE, offline: true })));
    expect(offline.code).toBe('HUB_CORRUPT_CACHE');
    expect(offline.message).toContain('model.safetensors');

    hub.requests.length = 0;
    const again = await fetchCheckpoint(opts({ repo: SINGLE }));
    expect(again.downloaded).toEqual(['model.safetensors']);
    expect(sha256(await readFile(join(first.snapshotDir, 'model.safetensors')))).toBe(hub.sha256(SINGLE, 'model.safetensors'));

    await truncate(blob, 1000); // a truncated blob is just as unusable
    const third = await fetchCheckpoint(opts({ repo: SINGLE }));
    expect(third.downloaded).toEqual(['model.safetensors']);
  });
});

describe('offline mode', () => {
  it('fails without a request when nothing is cached, saying HF_HUB_OFFLINE=1 is set', async () => {
    const err = await rejection(fetchCheckpoint(opts({ repo: SHARDED, offline: true })));
    expect(err.code).toBe('HUB_NOT_CACHED');
    expect(err.message).toContain('HF_HUB_OFFLINE=1');
    expect(hub.requests).toEqual([]);
  });

  it('reads HF_HUB_OFFLINE from the environment and serves the cached snapshot', async () => {
    const online = await fetchCheckpoint(opts({ repo: SHARDED }));
    hub.requests.length = 0;
    const saved = process.env.HF_HUB_OFFLINE;
    process.env.HF_HUB_OFFLINE = '1';
    try {
      const got = await fetchCheckpoint({ ...opts({ repo: SHARDED }), offline: undefined });
      expect(got).toEqual({ ...online, downloaded: [], bytesDownloaded: 0 });
    } finally {
      if (saved === undefined) delete process.env.HF_HUB_OFFLINE;
      else process.env.HF_HUB_OFFLINE = saved;
    }
    expect(hub.requests).toEqual([]);
  });

  it('names the missing file when the snapshot is incomplete', async () => {
    const online = await fetchCheckpoint(opts({ repo: SHARDED }));
    await unlink(join(online.snapshotDir, SHARD2));
    hub.requests.length = 0;
    const err = await rejection(fetchCheckpoint(opts({ repo: SHARDED, offline: true })));
    expect(err.code).toBe('HUB_NOT_CACHED');
    expect(err.message).toContain(SHARD2);
    expect(err.message).toContain('HF_HUB_OFFLINE=1');
    expect(hub.requests.filter((r) => r.path.includes(SHARD2))).toEqual([]);
  });
});

describe('revision pinning', () => {
  it('resolves branch, tag and commit, writes refs like Python and records the commit', async () => {
    const v1 = hub.sha(SHARDED, 0);
    const main = hub.sha(SHARDED, 1);
    expect((await fetchCheckpoint(opts({ repo: SHARDED, revision: 'v1.0' }))).commit).toBe(v1);
    expect((await fetchCheckpoint(opts({ repo: `${SHARDED}@main` }))).commit).toBe(main);
    expect((await fetchCheckpoint(opts({ repo: SHARDED, revision: v1 }))).commit).toBe(v1);
    const refs = join(repoDir(SHARDED), 'refs');
    expect((await readdir(refs)).sort()).toEqual(['main', 'v1.0']); // no ref file for a commit hash
    expect(await readFile(join(refs, 'v1.0'), 'utf8')).toBe(v1);
    expect(await readFile(join(refs, 'main'), 'utf8')).toBe(main);
    expect((await readdir(join(repoDir(SHARDED), 'snapshots'))).sort()).toEqual([v1, main].sort());
  });

  it('follows a moved branch, fetching only the changed files, and keeps pinned snapshots', async () => {
    hub.setRef(SHARDED, 'main', 0);
    try {
      const old = await fetchCheckpoint(opts({ repo: SHARDED }));
      expect(old.commit).toBe(hub.sha(SHARDED, 0));
      hub.setRef(SHARDED, 'main', 1);
      hub.requests.length = 0;
      const moved = await fetchCheckpoint(opts({ repo: SHARDED }));
      expect(moved.commit).toBe(hub.sha(SHARDED, 1));
      expect(moved.downloaded).toEqual(['config.json', SHARD2]); // shard 1 and the rest are the same blobs
      expect(cdnGets(SHARD1)).toEqual([]);
      expect(await readFile(join(repoDir(SHARDED), 'refs', 'main'), 'utf8')).toBe(moved.commit);
      const pinned = await fetchCheckpoint(opts({ repo: SHARDED, revision: old.commit }));
      expect(sha256(await readFile(join(pinned.snapshotDir, SHARD2)))).toBe(hub.sha256(SHARDED, SHARD2, 0));
    } finally {
      hub.setRef(SHARDED, 'main', 1);
    }
  });

  it('says when a revision does not exist', async () => {
    const err = await rejection(fetchCheckpoint(opts({ repo: SHARDED, revision: 'no-such-branch' })));
    expect(err.code).toBe('HUB_REVISION_NOT_FOUND');
    expect(err.message).toContain('no-such-branch');
  });
});

describe('gated repos and tokens', () => {
  it('refuses without a token, with a wrong one, and works with the right one, never leaking it', async () => {
    const noToken = await rejection(fetchCheckpoint(opts({ repo: GATED })));
    expect(noToken.code).toBe('HUB_GATED');
    expect(noToken.message).toMatch(/no token was given/);
    expect(noToken.message).toContain('HF_TOKEN');

    const wrong = 'hf_wrongTokenZyxwvutsrqponmlkjihgfe';
    const denied = await rejection(fetchCheckpoint(opts({ repo: GATED, token: wrong })));
    expect(denied.code).toBe('HUB_GATED');
    expect(denied.message).toMatch(/no access/);

    const events: string[] = [];
    const got = await fetchCheckpoint(opts({ repo: GATED, token: GOOD_TOKEN, onProgress: (p) => events.push(JSON.stringify(p)) }));
    expect(got.files).toContain('model.safetensors');

    // The token went to the hub only, never to the CDN, and is in no message, event or file written.
    expect(hub.requests.some((r) => r.server === 'hub' && r.authorization === `Bearer ${GOOD_TOKEN}`)).toBe(true);
    expect(hub.requests.filter((r) => r.server === 'cdn' && r.authorization)).toEqual([]);
    for (const text of [noToken.message, noToken.stack, denied.message, denied.stack, JSON.stringify(got), ...events]) {
      expect(text).not.toContain(GOOD_TOKEN);
      expect(text).not.toContain(wrong);
    }
    for (const file of await listTree(cacheDir)) {
      const content = await readFile(file).catch(() => Buffer.alloc(0));
      expect(content.includes(GOOD_TOKEN)).toBe(false);
      expect(content.includes(wrong)).toBe(false);
      expect(file).not.toContain(GOOD_TOKEN);
    }
  });

  it('reads the token from HF_TOKEN', async () => {
    const saved = process.env.HF_TOKEN;
    process.env.HF_TOKEN = GOOD_TOKEN;
    try {
      const { token: _unset, ...rest } = opts({ repo: GATED });
      const got = await fetchCheckpoint(rest);
      expect(got.files).toContain('model.safetensors');
    } finally {
      if (saved === undefined) delete process.env.HF_TOKEN;
      else process.env.HF_TOKEN = saved;
    }
  });
});

describe('missing things', () => {
  it('a repo that does not exist gives a clear 404 error', async () => {
    const err = await rejection(fetchCheckpoint(opts({ repo: 'acme/does-not-exist' })));
    expect(err.code).toBe('HUB_REPO_NOT_FOUND');
    expect(err.message).toContain('acme/does-not-exist');
    expect(err.message).toContain('not found');
  });

  it('a repo with only PyTorch weights says so', async () => {
    const err = await rejection(fetchCheckpoint(opts({ repo: BIN_ONLY })));
    expect(err.code).toBe('HUB_NO_WEIGHTS');
    expect(err.message).toContain('pytorch_model.bin');
  });

  it('rejects ids that are not owner/name', async () => {
    const err = await rejection(fetchCheckpoint(opts({ repo: '../etc/passwd' })));
    expect(err.code).toBe('USAGE');
    expect(hub.requests).toEqual([]);
  });
});

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listTree(p)));
    else {
      out.push(p);
      if (e.isSymbolicLink()) out.push(await readlink(p));
    }
  }
  return out;
}
