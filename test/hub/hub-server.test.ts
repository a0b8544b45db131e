// The fake hub answers like the real one where clients look: checked with @huggingface/hub's own functions and
// with the headers Python's get_hf_file_metadata reads (X-Repo-Commit, X-Linked-Etag, X-Linked-Size, Location).
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeHub, type FakeHub } from '../helpers/hub-server.js';
import { fakeRepos, GATED, GOOD_TOKEN, SHARD1, SHARDED } from './repos.js';

let hub: FakeHub;
beforeAll(async () => {
  hub = await startFakeHub({ repos: fakeRepos(), tokens: [GOOD_TOKEN] });
});
afterAll(async () => {
  await hub?.close();
});

describe('fake hub', () => {
  it('serves @huggingface/hub: modelInfo, listFiles, pathsInfo and fileDownloadInfo', async () => {
    const { fileDownloadInfo, listFiles, modelInfo, pathsInfo } = await import('@huggingface/hub');
    const info = await modelInfo({ name: SHARDED, revision: 'v1.0', hubUrl: hub.endpoint, additionalFields: ['sha', 'filePaths'] });
    expect(info.sha).toBe(hub.sha(SHARDED, 0));
    expect(info.filePaths).toContain(SHARD1);

    const listed = [];
    for await (const f of listFiles({ repo: SHARDED, hubUrl: hub.endpoint, recursive: true })) listed.push(f);
    const shard = listed.find((f) => f.path === SHARD1)!;
    expect(shard.lfs?.oid).toBe(hub.sha256(SHARDED, SHARD1));
    expect(shard.size).toBe(300_000);

    const [config] = await pathsInfo({ repo: SHARDED, paths: ['config.json', 'missing.txt'], hubUrl: hub.endpoint });
    expect(config!.path).toBe('config.json');
    expect(config!.lfs).toBeUndefined();

    const dl = await fileDownloadInfo({ repo: SHARDED, path: SHARD1, hubUrl: hub.endpoint });
    expect(dl!.size).toBe(300_000);
    expect(dl!.etag).toBe(`"${hub.sha256(SHARDED, SHARD1)}"`);
    expect(await fileDownloadInfo({ repo: SHARDED, path: 'nope.json', hubUrl: hub.endpoint })).toBeNull();
  });

  it('answers resolve HEAD requests with the headers Python reads', async () => {
    const main = hub.sha(SHARDED, 'main');
    const lfs = await fetch(`${hub.endpoint}/${SHARDED}/resolve/main/${SHARD1}`, { method: 'HEAD', redirect: 'manual' });
    expect(lfs.status).toBe(302);
    expect(lfs.headers.get('x-repo-commit')).toBe(main);
    expect(lfs.headers.get('x-linked-etag')).toBe(`"${hub.sha256(SHARDED, SHARD1)}"`);
    expect(lfs.headers.get('x-linked-size')).toBe('300000');
    expect(lfs.headers.get('location')).toMatch(new RegExp(`^${hub.cdnOrigin}/blobs/${hub.sha256(SHARDED, SHARD1)}\\?`));

    const small = await fetch(`${hub.endpoint}/${SHARDED}/resolve/${main}/config.json`);
    const bytes = new Uint8Array(await small.arrayBuffer());
    const gitOid = createHash('sha1').update(`blob ${bytes.byteLength}\0`).update(bytes).digest('hex');
    expect(small.headers.get('etag')).toBe(`"${gitOid}"`);
    expect(small.headers.get('x-repo-commit')).toBe(main);

    const ranged = await fetch(`${hub.endpoint}/${SHARDED}/resolve/main/config.json`, { headers: { range: 'bytes=5-9' } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 5-9/${bytes.byteLength}`);
    expect(new Uint8Array(await ranged.arrayBuffer())).toEqual(bytes.subarray(5, 10));
  });

  it('gives the hub error codes: EntryNotFound (with the commit), RevisionNotFound, RepoNotFound, GatedRepo', async () => {
    const missing = await fetch(`${hub.endpoint}/${SHARDED}/resolve/main/nope.json`);
    expect([missing.status, missing.headers.get('x-error-code'), missing.headers.get('x-repo-commit')]).toEqual([404, 'EntryNotFound', hub.sha(SHARDED, 'main')]);
    const rev = await fetch(`${hub.endpoint}/${SHARDED}/resolve/nope/config.json`);
    expect([rev.status, rev.headers.get('x-error-code')]).toEqual([404, 'RevisionNotFound']);
    const repo = await fetch(`${hub.endpoint}/acme/none/resolve/main/config.json`);
    expect([repo.status, repo.headers.get('x-error-code')]).toEqual([404, 'RepoNotFound']);
    const gated = await fetch(`${hub.endpoint}/${GATED}/resolve/main/config.json`);
    expect([gated.status, gated.headers.get('x-error-code')]).toEqual([401, 'GatedRepo']);
    const wrong = await fetch(`${hub.endpoint}/${GATED}/resolve/main/config.json`, { headers: { authorization: 'Bearer hf_nope' } });
    expect(wrong.status).toBe(403);
    const ok = await fetch(`${hub.endpoint}/${GATED}/resolve/main/config.json`, { headers: { authorization: `Bearer ${GOOD_TOKEN}` } });
    expect(ok.status).toBe(200);
    await Promise.all([missing, rev, repo, gated, wrong, ok].map((r) => r.body?.cancel()));
  });
});
