// A local fake of the Hugging Face hub for tests: node:http on 127.0.0.1 (random ports) serving a few in-memory
// repos through the endpoints @huggingface/hub and Python's huggingface_hub use, with the real hub's headers, a
// separate "CDN" origin for LFS blobs, Range support, gated repos, and injectable faults (cut, stall, corrupt).
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeFile {
  path: string;
  content: Uint8Array | string;
  /** Stored with Git LFS (served through a redirect to the CDN). Default: *.safetensors, *.model, *.bin. */
  lfs?: boolean;
}

export interface FakeCommitSpec {
  files: FakeFile[];
  /** Branch and tag names pointing at this commit. */
  refs?: string[];
}

export interface FakeRepoSpec {
  id: string;
  /** Gated: files need `Authorization: Bearer <one of the hub's tokens>`. */
  gated?: boolean;
  commits: FakeCommitSpec[];
}

export interface FakeHubOptions {
  repos: FakeRepoSpec[];
  /** Tokens that have been granted access to the gated repos. */
  tokens?: string[];
}

export interface RecordedRequest {
  server: 'hub' | 'cdn';
  method: string;
  /** Path without the query string. */
  path: string;
  range?: string;
  authorization?: string;
  status: number;
}

interface StoredFile {
  path: string;
  bytes: Buffer;
  lfs: boolean;
  /** Git blob id of what git stores (the file, or its LFS pointer). */
  oid: string;
  sha256: string;
  pointer?: Buffer;
}

interface StoredCommit {
  sha: string;
  files: Map<string, StoredFile>;
}

interface StoredRepo {
  id: string;
  gated: boolean;
  commits: StoredCommit[];
  refs: Map<string, string>;
}

export interface Stall {
  /** Resolves when the stalled response has sent its first bytes. */
  reached: Promise<void>;
}

export interface FakeHub {
  endpoint: string;
  cdnOrigin: string;
  requests: RecordedRequest[];
  /** The sha of a repo's commit by index, or of what a branch/tag points to. */
  sha(repo: string, commit: number | string): string;
  sha256(repo: string, path: string, commit?: number): string;
  /** Points a branch or tag at a commit (by index), as a push would. */
  setRef(repo: string, ref: string, commit: number): void;
  /** The next response carrying `path` sends `afterBytes` body bytes, then the connection is cut. */
  cutOnce(path: string, afterBytes: number): void;
  /** The next response carrying `path` sends `afterBytes` body bytes, then hangs until the client goes away. */
  stallOnce(path: string, afterBytes: number): Stall;
  /** The next `times` responses carrying `path` have one byte flipped (same length, same headers). */
  corrupt(path: string, times?: number): void;
  clearFaults(): void;
  close(): Promise<void>;
}

export function gitBlobSha1(bytes: Uint8Array): string {
  return createHash('sha1').update(`blob ${bytes.byteLength}\0`).update(bytes).digest('hex');
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Deterministic pseudo-random bytes (xorshift32) for fake weight files. */
export function pseudoRandomBytes(n: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

function storeFile(f: FakeFile): StoredFile {
  const bytes = Buffer.from(typeof f.content === 'string' ? Buffer.from(f.content, 'utf8') : f.content);
  const lfs = f.lfs ?? /\.(safetensors|model|bin)$/.test(f.path);
  const sha256 = sha256Hex(bytes);
  if (!lfs) return { path: f.path, bytes, lfs, oid: gitBlobSha1(bytes), sha256 };
  const pointer = Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${bytes.byteLength}\n`);
  return { path: f.path, bytes, lfs, oid: gitBlobSha1(pointer), sha256, pointer };
}

function commitSha(repo: string, index: number, files: Map<string, StoredFile>): string {
  const h = createHash('sha1').update(`${repo}\n${index}\n`);
  for (const f of [...files.values()].sort((a, b) => a.path.localeCompare(b.path))) h.update(`${f.path} ${f.oid}\n`);
  return h.digest('hex');
}

type Fault = { kind: 'cut' | 'stall'; after: number; onReached?: () => void } | { kind: 'corrupt'; times: number };

export async function startFakeHub(opts: FakeHubOptions): Promise<FakeHub> {
  const repos = new Map<string, StoredRepo>();
  for (const spec of opts.repos) {
    const repo: StoredRepo = { id: spec.id, gated: spec.gated ?? false, commits: [], refs: new Map() };
    spec.commits.forEach((c, i) => {
      const files = new Map(c.files.map((f) => [f.path, storeFile(f)]));
      const sha = commitSha(spec.id, i, files);
      repo.commits.push({ sha, files });
      for (const ref of c.refs ?? []) repo.refs.set(ref, sha);
    });
    repos.set(spec.id, repo);
  }
  const blobs = new Map<string, StoredFile>(); // sha256 → file, for the CDN
  for (const r of repos.values()) for (const c of r.commits) for (const f of c.files.values()) if (f.lfs) blobs.set(f.sha256, f);

  const tokens = new Set(opts.tokens ?? []);
  const requests: RecordedRequest[] = [];
  const faults = new Map<string, Fault[]>();
  const stalled = new Set<ServerResponse>();
  let cdnOrigin = '';

  const resolveCommit = (repo: StoredRepo, rev: string): StoredCommit | undefined => {
    const sha = repo.refs.get(rev) ?? rev;
    return repo.commits.find((c) => c.sha === sha);
  };

  function takeFault(path: string): Fault | undefined {
    const list = faults.get(path);
    const f = list?.[0];
    if (!f) return undefined;
    if (f.kind !== 'corrupt' || --f.times <= 0) list!.shift();
    return f;
  }

  /** Sends `file`'s bytes (or a Range of them) with the given headers, applying any fault set for it. */
  function sendBytes(req: IncomingMessage, res: ServerResponse, file: StoredFile, headers: Record<string, string>): number {
    const total = file.bytes.byteLength;
    let start = 0;
    let end = total - 1;
    let status = 200;
    const range = req.headers.range;
    if (range) {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range);
      const s = m ? Number(m[1]) : NaN;
      const e = m && m[2] !== '' ? Math.min(Number(m[2]), total - 1) : total - 1;
      if (!m || s >= total || s > e) {
        res.writeHead(416, { 'Content-Range': `bytes */${total}`, ...headers });
        res.end();
        return 416;
      }
      start = s;
      end = e;
      status = 206;
    }
    const fault = req.method === 'HEAD' ? undefined : takeFault(file.path);
    let bytes = file.bytes;
    if (fault?.kind === 'corrupt') {
      bytes = Buffer.from(bytes);
      bytes[bytes.byteLength >> 1] ^= 0xff;
    }
    const body = bytes.subarray(start, end + 1);
    res.writeHead(status, {
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(body.byteLength),
      'Accept-Ranges': 'bytes',
      ...(status === 206 ? { 'Content-Range': `bytes ${start}-${end}/${total}` } : {}),
      ...headers,
    });
    if (req.method === 'HEAD') {
      res.end();
      return status;
    }
    if (fault?.kind === 'cut' || fault?.kind === 'stall') {
      const part = body.subarray(0, Math.min(fault.after, body.byteLength));
      res.write(part, () => {
        if (fault.kind === 'cut') res.socket?.destroy();
        else {
          stalled.add(res);
          fault.onReached?.();
        }
      });
      return status;
    }
    res.end(body);
    return status;
  }

  function sendError(res: ServerResponse, status: number, code: string, message: string, extra: Record<string, string> = {}): number {
    const body = JSON.stringify({ error: message });
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': String(Buffer.byteLength(body)),
      'X-Error-Code': code,
      'X-Error-Message': message,
      ...extra,
    });
    res.end(body);
    return status;
  }

  function sendJson(res: ServerResponse, value: unknown, extra: Record<string, string> = {}): number {
    const body = JSON.stringify(value);
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)), ...extra });
    res.end(body);
    return 200;
  }

  function treeEntry(f: StoredFile) {
    return {
      type: 'file',
      oid: f.oid,
      size: f.bytes.byteLength,
      path: f.path,
      ...(f.lfs ? { lfs: { oid: f.sha256, size: f.bytes.byteLength, pointerSize: f.pointer!.byteLength } } : {}),
    };
  }

  function authorized(repo: StoredRepo, req: IncomingMessage): 'ok' | 'none' | 'denied' {
    if (!repo.gated) return 'ok';
    const auth = req.headers.authorization;
    if (!auth) return 'none';
    return tokens.has(auth.replace(/^Bearer\s+/i, '')) ? 'ok' : 'denied';
  }

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  async function handleHub(req: IncomingMessage, res: ServerResponse, path: string): Promise<number> {
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|paths-info|tree)\/([^/]+)(?:\/(.*))?$/.exec(path);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const repoId = decodeURIComponent((api ?? resolve)?.[1] ?? '');
    const repo = repos.get(repoId);
    if (!api && !resolve) return sendError(res, 404, 'NotFound', 'Not found');
    if (!repo) return sendError(res, 404, 'RepoNotFound', 'Repository not found');
    const rev = decodeURIComponent((api ? api[3] : resolve![2])!);
    const commit = resolveCommit(repo, rev);
    if (!commit) return sendError(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);

    if (api?.[2] === 'revision' && req.method === 'GET') {
      return sendJson(res, {
        _id: createHash('md5').update(repo.id).digest('hex').slice(0, 24),
        id: repo.id,
        sha: commit.sha,
        private: false,
        gated: repo.gated ? 'manual' : false,
        downloads: 0,
        likes: 0,
        lastModified: '2025-01-01T00:00:00.000Z',
        pipeline_tag: 'text-generation',
        siblings: [...commit.files.keys()].map((rfilename) => ({ rfilename })),
      });
    }
    if (api?.[2] === 'paths-info' && req.method === 'POST') {
      const body = JSON.parse(await readBody(req)) as { paths?: string[] };
      const found = (body.paths ?? []).map((p) => commit.files.get(p)).filter((f): f is StoredFile => !!f);
      return sendJson(res, found.map(treeEntry));
    }
    if (api?.[2] === 'tree' && req.method === 'GET') {
      const prefix = api[4] ? `${decodeURIComponent(api[4])}/` : '';
      return sendJson(res, [...commit.files.values()].filter((f) => f.path.startsWith(prefix)).map(treeEntry));
    }
    if (resolve && (req.method === 'GET' || req.method === 'HEAD')) {
      const access = authorized(repo, req);
      if (access === 'none') {
        return sendError(res, 401, 'GatedRepo', `Access to model ${repo.id} is restricted. You must have access to it and be authenticated to access it. Please log in.`);
      }
      if (access === 'denied') {
        return sendError(res, 403, 'GatedRepo', `Access to model ${repo.id} is restricted and you are not in the authorized list. Visit ${endpoint}/${repo.id} to ask for access.`);
      }
      const file = commit.files.get(decodeURIComponent(resolve[3]!));
      if (!file) return sendError(res, 404, 'EntryNotFound', 'Entry not found', { 'X-Repo-Commit': commit.sha });
      if (file.lfs) {
        const location = `${cdnOrigin}/blobs/${file.sha256}?X-Amz-Signature=${createHash('sha1').update(file.sha256).digest('hex').slice(0, 16)}`;
        res.writeHead(302, {
          Location: location,
          'Content-Type': 'text/plain; charset=utf-8',
          ETag: `"${file.oid}"`,
          'X-Linked-Etag': `"${file.sha256}"`,
          'X-Linked-Size': String(file.bytes.byteLength),
          'X-Repo-Commit': commit.sha,
        });
        res.end(req.method === 'HEAD' ? undefined : `Found. Redirecting to ${location}`);
        return 302;
      }
      return sendBytes(req, res, file, { ETag: `"${file.oid}"`, 'X-Repo-Commit': commit.sha });
    }
    return sendError(res, 405, 'MethodNotAllowed', 'Method not allowed');
  }

  function handleCdn(req: IncomingMessage, res: ServerResponse, path: string): number {
    const m = /^\/blobs\/([0-9a-f]{64})$/.exec(path);
    const file = m ? blobs.get(m[1]!) : undefined;
    if (!file || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('NoSuchKey');
      return 404;
    }
    return sendBytes(req, res, file, { ETag: `"${file.sha256}"` });
  }

  const listen = (server: Server) =>
    new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
  const record = (server: 'hub' | 'cdn', req: IncomingMessage, path: string, status: number) =>
    requests.push({
      server,
      method: req.method ?? 'GET',
      path,
      ...(req.headers.range ? { range: req.headers.range } : {}),
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      status,
    });
  const handler = (server: 'hub' | 'cdn') => (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const run = async () => (server === 'hub' ? handleHub(req, res, path) : handleCdn(req, res, path));
    run().then(
      (status) => record(server, req, path, status),
      (e: unknown) => {
        record(server, req, path, 500);
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(String(e));
      },
    );
  };

  const hubServer = createServer(handler('hub'));
  const cdnServer = createServer(handler('cdn'));
  const endpoint = `http://127.0.0.1:${await listen(hubServer)}`;
  cdnOrigin = `http://127.0.0.1:${await listen(cdnServer)}`;

  const repoOf = (id: string): StoredRepo => {
    const r = repos.get(id);
    if (!r) throw new Error(`fake hub has no repo ${id}`);
    return r;
  };
  const addFault = (path: string, f: Fault) => faults.set(path, [...(faults.get(path) ?? []), f]);

  return {
    endpoint,
    cdnOrigin,
    requests,
    sha(id, commit) {
      const r = repoOf(id);
      const sha = typeof commit === 'number' ? r.commits[commit]?.sha : r.refs.get(commit);
      if (!sha) throw new Error(`fake hub: ${id} has no commit ${commit}`);
      return sha;
    },
    sha256(id, path, commit = 0) {
      const f = repoOf(id).commits[commit]?.files.get(path);
      if (!f) throw new Error(`fake hub: ${id}@${commit} has no ${path}`);
      return f.sha256;
    },
    setRef(id, ref, commit) {
      const r = repoOf(id);
      r.refs.set(ref, r.commits[commit]!.sha);
    },
    cutOnce: (path, afterBytes) => addFault(path, { kind: 'cut', after: afterBytes }),
    stallOnce(path, afterBytes) {
      let onReached!: () => void;
      const reached = new Promise<void>((r) => (onReached = r));
      addFault(path, { kind: 'stall', after: afterBytes, onReached });
      return { reached };
    },
    corrupt: (path, times = Number.POSITIVE_INFINITY) => addFault(path, { kind: 'corrupt', times }),
    clearFaults: () => faults.clear(),
    async close() {
      for (const res of stalled) res.socket?.destroy();
      for (const s of [hubServer, cdnServer]) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
    },
  };
}
