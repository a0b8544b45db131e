// Downloads one file into the cache's blobs/ folder: resumable (blobs/<etag>.incomplete grows, and a new request
// asks with Range for the rest), hashed while it streams, and moved into blobs/<etag> only once its digest matches.
//
// The body is fetched with plain fetch rather than @huggingface/hub's downloadFile: that returns a Blob whose
// stream() turns errors into strings and takes no AbortSignal or Range offset, and it asks for the Xet protocol
// (application/vnd.xet-fileinfo+json); we need a byte stream we can resume from any offset and hash as it arrives.
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { HubError } from '../util/errors.js';
import type { RepoCache } from './cache.js';
import { ContentDigest, digestFile, type DigestKind } from './digest.js';
import { describeCause, HubHttpError, HubNetworkError, sleep, type HubClient } from './http.js';

export interface BlobRequest {
  cache: RepoCache;
  client: HubClient;
  /** The file's path in the repo (for the URL and for messages). */
  file: string;
  commit: string;
  /** The blob name: the file's sha256 (LFS) or git sha1, as Python's cache names it. */
  etag: string;
  /** How to check the bytes against `etag`; undefined when the name is not a digest we can compute. */
  kind: DigestKind | undefined;
  size: number;
  /** Called as bytes land (total bytes of this file on disk so far, resumed bytes included). */
  onBytes?: (bytes: number) => void;
  /** Requests after a connection failure (each resumes where the last stopped). */
  attempts: number;
  baseDelayMs: number;
  signal?: AbortSignal;
}

const inFlight = new Map<string, Promise<unknown>>();

/** Runs `task` for one blob path at a time in this process (later callers wait, then run and see the blob). */
export async function oncePerBlob<T>(blobPath: string, task: () => Promise<T>): Promise<T> {
  while (inFlight.has(blobPath)) await inFlight.get(blobPath)!.catch(() => undefined);
  const running = task();
  inFlight.set(blobPath, running);
  try {
    return await running;
  } finally {
    inFlight.delete(blobPath);
  }
}

export interface BlobResult {
  /** Bytes received over the network by this call. */
  received: number;
  /** Bytes taken over from an .incomplete file left by an earlier run. */
  resumedFrom: number;
}

/** Fetches `req.file` into blobs/<etag>, verified. The .incomplete file is kept on network failure and abort. */
export async function downloadBlob(req: BlobRequest): Promise<BlobResult> {
  const { cache, file, size } = req;
  const partial = cache.incompletePath(req.etag);
  await mkdir(dirname(partial), { recursive: true });

  const state: PartialState = { have: await fileSize(partial), digest: newDigest(req), received: 0 };
  if (state.have > size) {
    await rm(partial, { force: true });
    state.have = 0;
  }
  const resumedFrom = state.have;
  if (state.have > 0) await digestFile(partial, state.digest, state.have);

  let networkFailures = 0;
  let restartsLeft = 1; // after a digest mismatch (or a refused range), fetch the whole file once more
  const restart = async () => {
    await rm(partial, { force: true });
    state.have = 0;
    state.digest = newDigest(req);
  };
  for (;;) {
    if (state.have < size) {
      const before = state.have;
      try {
        await fetchRest(req, partial, state);
        if (state.have < size) {
          throw new HubNetworkError('HUB_NETWORK', `the body of ${file} ended after ${state.have} of ${size} bytes`);
        }
      } catch (e) {
        if (req.signal?.aborted) throw req.signal.reason;
        if (e instanceof HubHttpError && e.status === 416 && restartsLeft-- > 0) {
          await restart(); // the server cannot serve the rest of what we hold: our partial file is not its file
          continue;
        }
        if (!isTransient(e)) throw e;
        // Failures count only while no byte arrives: a connection that keeps cutting but makes progress goes on.
        networkFailures = state.have > before ? 1 : networkFailures + 1;
        if (networkFailures >= req.attempts) {
          const what = `download of ${file} from ${req.client.endpoint} failed after ${req.attempts} attempts`;
          throw new HubNetworkError('HUB_NETWORK', `${what}: ${describeCause(e)}`, {
            where: cache.repo,
            fix: `run the same command again: it resumes from the ${state.have} bytes already in ${partial}`,
            cause: e,
          });
        }
        await sleep(req.baseDelayMs * 2 ** (networkFailures - 1), req.signal);
        continue;
      }
    }
    if (state.have > size) {
      await rm(partial, { force: true });
      throw new HubError('HUB_SIZE', `${file} from ${cache.repo} is larger than the ${size} bytes the hub listed`, {
        where: `commit ${req.commit}`,
        fix: 'run again; if it repeats the mirror at HF_ENDPOINT serves a different file than it lists',
      });
    }
    const actual = state.digest.hex();
    if (req.kind === undefined || actual === req.etag) {
      await rename(partial, cache.blobPath(req.etag));
      return { received: state.received, resumedFrom };
    }
    // Never keep bytes that fail the check: the partial file goes, and the whole file is fetched once more.
    if (restartsLeft-- > 0) {
      await restart();
      continue;
    }
    await rm(partial, { force: true });
    const expected = `expected ${req.kind} ${req.etag}, got ${actual}`;
    throw new HubError('HUB_CHECKSUM', `${file} from ${cache.repo} failed its integrity check: ${expected}`, {
      where: `commit ${req.commit}`,
      fix:
        'the bytes were altered on the way (proxy, mirror or disk) and were deleted: run again, ' +
        'and if it repeats check HF_ENDPOINT and proxy settings',
    });
  }
}

/** The partial file as the digest has seen it: `have` bytes on disk, all of them hashed. */
interface PartialState {
  have: number;
  digest: ContentDigest;
  received: number;
}

function newDigest(req: BlobRequest): ContentDigest {
  return new ContentDigest(req.kind ?? 'sha256', req.size);
}

/** One request for bytes [have, size) appended to `partial`; `state` follows every byte written, even on failure. */
async function fetchRest(req: BlobRequest, partial: string, state: PartialState): Promise<void> {
  const headers: Record<string, string> = { 'accept-encoding': 'identity' };
  if (state.have > 0) headers.range = `bytes=${state.have}-`;
  const res = await req.client.request(req.client.resolveUrl(req.commit, req.file), { headers }, req.file);

  if (state.have > 0 && res.status !== 206) {
    // The server ignored the Range and sends the whole file: the partial file starts again from byte 0.
    state.have = 0;
    state.digest = newDigest(req);
  } else if (state.have > 0) {
    const start = Number(/^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1]);
    if (start !== state.have) {
      await res.body?.cancel();
      const msg = `${req.file}: asked for bytes from ${state.have}, the server sent from ${start}`;
      throw new HubHttpError('HUB_HTTP', res.status, msg);
    }
  }

  const fh = await open(partial, state.have === 0 ? 'w' : 'a');
  try {
    const reader = res.body?.getReader();
    for (;;) {
      let chunk: { done: boolean; value?: Uint8Array } | undefined;
      try {
        chunk = await reader?.read();
      } catch (e) {
        throw req.client.networkError(e, req.file); // connection cut mid-body
      }
      if (!chunk || chunk.done || !chunk.value) break;
      const bytes = chunk.value;
      if (state.have + bytes.byteLength > req.size) {
        await reader?.cancel().catch(() => undefined);
        state.have += bytes.byteLength; // not written: the caller sees the excess and reports it
        return;
      }
      await fh.write(bytes);
      state.digest.update(bytes);
      state.have += bytes.byteLength;
      state.received += bytes.byteLength;
      req.onBytes?.(state.have);
    }
    if (state.have === req.size) await fh.sync();
  } finally {
    await fh.close();
  }
}

function isTransient(e: unknown): boolean {
  return e instanceof HubNetworkError || (e instanceof HubHttpError && (e.status >= 500 || e.status === 429));
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}
