// Gets the files a build needs from a hub model repo at one revision into the shared (Python-layout) cache:
// resolve the revision to a commit, download what the cache lacks (verified), and work from the cache alone when
// offline or when the hub cannot be reached. @huggingface/hub does the API calls (model info, paths info);
// what it lacks (HF_* variables, Range resume, digests, the cache layout) is ours.
import { HubError } from '../util/errors.js';
import { RepoCache } from './cache.js';
import { CHECKPOINT_FILES, SAFETENSORS_INDEX, SAFETENSORS_SINGLE, shardsOfIndex } from './checkpoint-files.js';
import { digestKind } from './digest.js';
import { downloadBlob, oncePerBlob } from './download-blob.js';
import { withFileLock } from '../util/file-lock.js';
import { hubCacheDir, hubEndpoint, hubOffline, hubToken } from './env.js';
import { describeCause, HubClient, HubNetworkError } from './http.js';
import { assertRepoFilePath, assertRepoId, assertRevision, isCommitHash } from './repo-id.js';
import { checkBlob, discardBlob, markBlobVerified } from './verified-blobs.js';

export interface HubProgress {
  /** The file being fetched (its path in the repo). */
  file: string;
  /** Bytes of `file` on disk so far (resumed bytes included) and its full size. */
  bytes: number;
  totalBytes: number;
  /** Files ready in the snapshot (cached or fetched) and files the checkpoint has. */
  filesDone: number;
  filesTotal: number;
}

export interface HubSourceOptions {
  /** `owner/name`, or `owner/name@revision`. */
  repo: string;
  /** Branch, tag or commit hash; default 'main'. */
  revision?: string;
  /** Default: HF_TOKEN, HUGGING_FACE_HUB_TOKEN, or the token file of `huggingface-cli login`. Sent only to the hub. */
  token?: string;
  /** Default: HF_ENDPOINT or https://huggingface.co. */
  endpoint?: string;
  /** Default: HF_HUB_CACHE, or HF_HOME/hub, or ~/.cache/huggingface/hub (see hubCacheDir). */
  cacheDir?: string;
  /** Use the cache only; default: HF_HUB_OFFLINE=1. */
  offline?: boolean;
  onProgress?: (p: HubProgress) => void;
  signal?: AbortSignal;
  /** Hash cached blobs against their names before use (default true; ~1 GB/s). */
  verifyCached?: boolean;
  /** Requests per file while a connection keeps failing without progress (default 5), first back-off in ms (500). */
  retry?: { attempts?: number; baseDelayMs?: number };
}

export interface HubCheckpoint {
  /** snapshots/<commit> in the cache: open files by their repo paths under it. */
  snapshotDir: string;
  /** The commit the revision resolved to (record it in stage.json and the manifest). */
  commit: string;
  /** Repo paths of the checkpoint's files in the snapshot: config, tokenizer files, then weights. */
  files: string[];
  /** Files fetched over the network by this call (empty on a cache hit). */
  downloaded: string[];
  /** Bytes received by this call. */
  bytesDownloaded: number;
}

interface Settings {
  repo: string;
  revision: string;
  cache: RepoCache;
  endpoint: string;
  token?: string;
  verifyCached: boolean;
}

/**
 * Makes the checkpoint files of `opts.repo` at `opts.revision` available in the hub cache and returns where.
 * Online: one model-info request resolves the revision; only missing files are fetched. A commit-hash revision
 * whose snapshot is complete needs no request at all. Offline (or with the hub unreachable): the cache's refs/
 * resolve the revision and a missing file is an error that names it.
 */
export async function fetchCheckpoint(opts: HubSourceOptions): Promise<HubCheckpoint> {
  const at = opts.repo.indexOf('@');
  const repo = at < 0 ? opts.repo : opts.repo.slice(0, at);
  const revision = opts.revision ?? (at < 0 ? 'main' : opts.repo.slice(at + 1));
  assertRepoId(repo);
  assertRevision(revision, repo);
  const token = opts.token ?? hubToken();
  const s: Settings = {
    repo,
    revision,
    cache: new RepoCache(opts.cacheDir ?? hubCacheDir(), repo),
    endpoint: opts.endpoint ?? hubEndpoint(),
    token,
    verifyCached: opts.verifyCached ?? true,
  };
  try {
    if (opts.offline ?? hubOffline()) return await fromCache(s, 'HF_HUB_OFFLINE=1 is set');
    return await online(s, opts);
  } catch (e) {
    throw redactToken(e, token);
  }
}

async function online(s: Settings, opts: HubSourceOptions): Promise<HubCheckpoint> {
  // Like Python: a commit hash already complete in the cache needs no request at all.
  if (isCommitHash(s.revision)) {
    const local = await inspectSnapshot(s, s.revision, 'online');
    if (local.missing.length === 0 && local.unknown.length === 0) return result(s, s.revision, local.files);
  }

  const client = new HubClient({
    endpoint: s.endpoint,
    token: s.token,
    repo: s.repo,
    revision: s.revision,
    signal: opts.signal,
    baseDelayMs: opts.retry?.baseDelayMs,
  });
  const { modelInfo, pathsInfo } = await import('@huggingface/hub');
  let info;
  try {
    info = await modelInfo({
      name: s.repo,
      revision: s.revision,
      hubUrl: client.endpoint,
      fetch: client.fetchFor('model info'),
      additionalFields: ['sha', 'filePaths'],
    });
  } catch (e) {
    if (!(e instanceof HubNetworkError)) throw e;
    try {
      return await fromCache(s, 'the hub cannot be reached');
    } catch (cacheError) {
      const bare = (cacheError as Error).message.split('\n')[0];
      const unreachable = `could not reach ${s.endpoint} (${describeCause(e.cause)})`;
      throw new HubNetworkError('HUB_NETWORK', `${unreachable}, and the cache cannot stand in: ${bare}`, {
        fix: 'connect to the network (or set HF_ENDPOINT to a reachable mirror) and run again',
        cause: e,
      });
    }
  }
  const commit = info.sha;
  if (typeof commit !== 'string' || !isCommitHash(commit)) {
    throw new HubError('HUB_BAD_RESPONSE', `the model info of ${s.repo} from ${s.endpoint} has no commit hash`, {
      fix: 'HF_ENDPOINT must point at a Hugging Face hub (or a complete mirror)',
    });
  }
  const siblings = new Set(info.filePaths ?? []);
  await s.cache.writeRef(s.revision, commit);

  // The plan: which files exist at this commit; optional files that do not are remembered in .no_exist/.
  const plan: string[] = [];
  for (const f of CHECKPOINT_FILES) {
    if (siblings.has(f.name)) plan.push(f.name);
    else if (f.required) throw notInRepo(s, commit, f.name, siblings);
    else if (!(await s.cache.isKnownMissing(commit, f.name))) await s.cache.markMissing(commit, f.name);
  }

  const fetcher = new Fetcher(s, client, commit, opts, (paths) =>
    pathsInfo({
      repo: { type: 'model', name: s.repo },
      paths,
      revision: commit,
      hubUrl: client.endpoint,
      fetch: client.fetchFor('file list'),
    }),
  );
  let weights: string[];
  if (siblings.has(SAFETENSORS_INDEX)) {
    await fetcher.ensure([SAFETENSORS_INDEX], 1 + plan.length);
    const shards = await shardsOfIndex(s.cache.pointerPath(commit, SAFETENSORS_INDEX), s.repo);
    for (const shard of shards) if (!siblings.has(shard)) throw notInRepo(s, commit, shard, siblings, SAFETENSORS_INDEX);
    weights = [SAFETENSORS_INDEX, ...shards];
  } else if (siblings.has(SAFETENSORS_SINGLE)) {
    weights = [SAFETENSORS_SINGLE];
  } else {
    throw noWeights(s, commit, [...siblings]);
  }
  const files = [...plan, ...weights];
  await fetcher.ensure(files.filter((f) => f !== SAFETENSORS_INDEX), files.length);
  return { ...result(s, commit, files), downloaded: fetcher.downloaded, bytesDownloaded: fetcher.bytes };
}

/** What the hub's paths-info lists for one path (the fields of @huggingface/hub's PathInfo we use). */
interface ListedPath {
  path: string;
  type: string;
  oid?: string;
  size: number;
  lfs?: { oid: string; size: number };
  xetHash?: string;
}

/** Downloads the files a snapshot lacks, in order, and links them into snapshots/<commit>/. */
class Fetcher {
  readonly downloaded: string[] = [];
  bytes = 0;
  private done = 0;

  constructor(
    private readonly s: Settings,
    private readonly client: HubClient,
    private readonly commit: string,
    private readonly opts: HubSourceOptions,
    private readonly listPaths: (paths: string[]) => Promise<ListedPath[]>,
  ) {}

  async ensure(files: string[], filesTotal: number): Promise<void> {
    const { cache } = this.s;
    const missing: string[] = [];
    for (const file of files) {
      assertRepoFilePath(file, this.s.repo, 'file list');
      if (await this.usable(file)) this.progress(file, 0, 0, filesTotal, true);
      else missing.push(file);
    }
    if (missing.length === 0) return;

    const listed = new Map((await this.listPaths(missing)).map((p) => [p.path, p]));
    for (const file of missing) {
      const entry = listed.get(file);
      if (!entry || entry.type === 'directory') throw notInRepo(this.s, this.commit, file, new Set(listed.keys()));
      // Python names blobs by the LFS sha256, else by the git blob id (Xet-only entries: by their Xet hash).
      const etag = entry.lfs?.oid ?? entry.xetHash ?? entry.oid;
      const size = entry.lfs?.size ?? entry.size;
      if (!etag) throw new HubError('HUB_BAD_RESPONSE', `the hub lists ${file} of ${this.s.repo} without an id`);
      const kind = entry.lfs || !entry.xetHash ? digestKind(etag) : undefined;
      const blob = cache.blobPath(etag);
      // One download per blob at a time, in this process and across processes (two builds of one model, or a CI
      // matrix on one runner, share the .incomplete file); whoever comes second finds the blob done.
      await oncePerBlob(blob, () => withFileLock(cache.lockPath(etag), async () => {
        const check = await checkBlob(blob, etag, size);
        if (check === 'ok' || check === 'unverifiable') return;
        if (check === 'corrupt') await discardBlob(blob);
        this.progress(file, 0, size, filesTotal, false);
        const got = await downloadBlob({
          cache,
          client: this.client,
          file,
          commit: this.commit,
          etag,
          kind,
          size,
          attempts: this.opts.retry?.attempts ?? 5,
          baseDelayMs: this.opts.retry?.baseDelayMs ?? 500,
          signal: this.opts.signal,
          onBytes: (bytes) => this.progress(file, bytes, size, filesTotal, false),
        });
        if (kind) await markBlobVerified(blob);
        this.downloaded.push(file);
        this.bytes += got.received;
      }, { signal: this.opts.signal }));
      await cache.linkSnapshot(this.commit, file, etag);
      this.progress(file, size, size, filesTotal, true);
    }
  }

  /** True when the snapshot already has `file` and its blob passes the check (a bad blob is removed). */
  private async usable(file: string): Promise<boolean> {
    const entry = await this.s.cache.snapshotEntry(this.commit, file);
    if (!entry) return false;
    if (!entry.blob || !this.s.verifyCached) return true;
    const check = await checkBlob(this.s.cache.blobPath(entry.blob), entry.blob);
    if (check === 'corrupt') await discardBlob(this.s.cache.blobPath(entry.blob));
    return check === 'ok' || check === 'unverifiable';
  }

  private progress(file: string, bytes: number, totalBytes: number, filesTotal: number, finished: boolean): void {
    if (finished) this.done++;
    this.opts.onProgress?.({ file, bytes, totalBytes, filesDone: this.done, filesTotal });
  }
}

interface SnapshotState {
  files: string[];
  /** Required files (or weights) the snapshot lacks. */
  missing: string[];
  /** Optional files neither in the snapshot nor known to be absent from the repo. */
  unknown: string[];
}

/**
 * What snapshots/<commit> holds for a checkpoint. Cached blobs are checked against their names: online a bad one
 * counts as missing (it is fetched again), offline it is an error.
 */
async function inspectSnapshot(s: Settings, commit: string, mode: 'online' | 'offline'): Promise<SnapshotState> {
  const state: SnapshotState = { files: [], missing: [], unknown: [] };
  const present = async (file: string): Promise<boolean> => {
    const entry = await s.cache.snapshotEntry(commit, file);
    if (!entry) return false;
    if (entry.blob && s.verifyCached) {
      const blob = s.cache.blobPath(entry.blob);
      if ((await checkBlob(blob, entry.blob)) === 'corrupt') {
        if (mode === 'online') return false;
        throw new HubError('HUB_CORRUPT_CACHE', `the cached ${file} of ${s.repo} does not match its digest ${entry.blob}`, {
          file: blob,
          fix: 'run once without HF_HUB_OFFLINE to fetch it again (a bad blob is replaced), or delete the blob',
        });
      }
    }
    return true;
  };
  for (const f of CHECKPOINT_FILES) {
    if (await present(f.name)) state.files.push(f.name);
    else if (await s.cache.isKnownMissing(commit, f.name)) continue;
    else if (f.required) state.missing.push(f.name);
    else state.unknown.push(f.name);
  }
  if (await present(SAFETENSORS_INDEX)) {
    state.files.push(SAFETENSORS_INDEX);
    for (const shard of await shardsOfIndex(s.cache.pointerPath(commit, SAFETENSORS_INDEX), s.repo)) {
      if (await present(shard)) state.files.push(shard);
      else state.missing.push(shard);
    }
  } else if (await present(SAFETENSORS_SINGLE)) {
    state.files.push(SAFETENSORS_SINGLE);
  } else {
    state.missing.push(`${SAFETENSORS_SINGLE} (or ${SAFETENSORS_INDEX} and its shards)`);
  }
  return state;
}

/** The checkpoint from the cache alone: the revision through refs/ (or as a commit hash), every required file. */
async function fromCache(s: Settings, why: string): Promise<HubCheckpoint> {
  const commit = isCommitHash(s.revision) ? s.revision : await s.cache.readRef(s.revision);
  if (!commit) {
    throw new HubError('HUB_NOT_CACHED', `${s.repo} at '${s.revision}' was never downloaded to ${s.cache.cacheDir} and ${why}`, {
      where: s.repo,
      fix:
        'run once with network access (HF_HUB_OFFLINE unset) to download it, ' +
        `or give a commit hash already in ${s.cache.repoDir}/snapshots`,
    });
  }
  const state = await inspectSnapshot(s, commit, 'offline');
  if (state.missing.length > 0) {
    const lacks = `the cache lacks ${state.missing.join(', ')} of ${s.repo} at commit ${commit}`;
    throw new HubError('HUB_NOT_CACHED', `${lacks}, and ${why}`, {
      file: s.cache.snapshotDir(commit),
      fix: 'run once with network access (HF_HUB_OFFLINE unset) to download the missing files',
    });
  }
  return result(s, commit, state.files);
}

function result(s: Settings, commit: string, files: string[]): HubCheckpoint {
  return { snapshotDir: s.cache.snapshotDir(commit), commit, files, downloaded: [], bytesDownloaded: 0 };
}

function notInRepo(s: Settings, commit: string, file: string, listed: Set<string>, namedBy?: string): HubError {
  const by = namedBy ? ` (named by ${namedBy})` : '';
  return new HubError('HUB_FILE_NOT_FOUND', `${file}${by} is not in ${s.repo} at commit ${commit}`, {
    fix: `a build needs it; the repo has ${[...listed].slice(0, 12).join(', ') || 'no files'}${listed.size > 12 ? ', ...' : ''}`,
  });
}

function noWeights(s: Settings, commit: string, listed: string[]): HubError {
  const other = listed.filter((f) => /\.(bin|pt|pth|gguf|onnx|h5|msgpack)$/.test(f));
  const names = `${SAFETENSORS_SINGLE} or ${SAFETENSORS_INDEX}`;
  return new HubError('HUB_NO_WEIGHTS', `${s.repo} at commit ${commit} has no safetensors weights (${names})`, {
    fix: other.length
      ? `it has only ${other.slice(0, 4).join(', ')}: convert them to safetensors first, or pick a repo that ships safetensors`
      : 'pick a repository that holds a transformers checkpoint in safetensors form',
  });
}

/** Removes the token from an error's message, stack and causes: it must never reach logs or files. */
function redactToken(e: unknown, token: string | undefined): unknown {
  if (!token) return e;
  const seen = new Set<unknown>();
  for (let c: unknown = e; c instanceof Error && !seen.has(c); c = c.cause) {
    seen.add(c);
    if (c.message.includes(token)) c.message = c.message.split(token).join('***');
    if (c.stack?.includes(token)) c.stack = c.stack.split(token).join('***');
  }
  return e;
}
