// The one HTTP path to the hub: a fetch for @huggingface/hub and our own downloads that adds the token only for the
// hub's own origin, follows redirects itself (so the token never reaches a CDN), retries transient failures and
// turns error responses into HubErrors that say what to do (and never contain the token).
import { HubError, type ErrorContext } from '../util/errors.js';

export interface HubClientOptions {
  endpoint: string;
  token?: string;
  repo: string;
  /** The revision asked for (named in revision errors). */
  revision?: string;
  signal?: AbortSignal;
  /** Attempts per request for network failures and 5xx/429 answers (default 3). */
  attempts?: number;
  /** First back-off delay in ms (doubles each retry). */
  baseDelayMs?: number;
}

/** An HTTP answer the hub gave with an error status. */
export class HubHttpError extends HubError {
  constructor(
    code: string,
    readonly status: number,
    message: string,
    ctx: ErrorContext = {},
  ) {
    super(code, message, ctx);
  }
}

/** The hub could not be reached (DNS, refused, reset, timeout, cut mid-body). */
export class HubNetworkError extends HubError {}

const USER_AGENT = 'phi-forge (@huggingface/hub 2.17; node)';
const MAX_REDIRECTS = 10;

export class HubClient {
  readonly endpoint: string;
  private readonly origin: string;

  constructor(private readonly opts: HubClientOptions) {
    this.endpoint = opts.endpoint.replace(/\/+$/, '');
    this.origin = new URL(this.endpoint).origin;
  }

  /** The resolve URL of a file at a revision, encoded as Python's hf_hub_url does. */
  resolveUrl(revision: string, file: string): string {
    const path = file.split('/').map(encodeURIComponent).join('/');
    return `${this.endpoint}/${this.opts.repo}/resolve/${encodeURIComponent(revision)}/${path}`;
  }

  /** A `fetch` to hand to @huggingface/hub; `what` names the request in error messages. */
  fetchFor(what: string): typeof fetch {
    return (input, init) => this.request(requestUrl(input), init ?? {}, what);
  }

  /**
   * Sends one request, following redirects by hand; resolves to a 2xx response or rejects with a HubHttpError,
   * a HubNetworkError or the signal's abort reason.
   */
  async request(url: string, init: RequestInit, what: string): Promise<Response> {
    const attempts = this.opts.attempts ?? 3;
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        res = await this.followRedirects(url, init, what);
      } catch (e) {
        // A refused connection or a stale keep-alive socket: try again a few times before giving up.
        if (!(e instanceof HubNetworkError) || attempt >= attempts) throw e;
        await sleep((this.opts.baseDelayMs ?? 500) * 2 ** (attempt - 1), this.opts.signal);
        continue;
      }
      if (res.ok) return res;
      const retriable = res.status >= 500 || res.status === 429;
      if (!retriable || attempt >= attempts) throw await this.httpError(res, what);
      await res.body?.cancel();
      await sleep((this.opts.baseDelayMs ?? 500) * 2 ** (attempt - 1), this.opts.signal);
    }
  }

  private async followRedirects(url: string, init: RequestInit, what: string): Promise<Response> {
    let method = (init.method ?? 'GET').toUpperCase();
    let body = init.body;
    for (let hop = 0; ; hop++) {
      const headers = new Headers(init.headers);
      headers.delete('authorization');
      headers.set('user-agent', USER_AGENT);
      // Signed CDN URLs must not see the token; only the hub's own origin gets it.
      if (this.opts.token && new URL(url).origin === this.origin) {
        headers.set('authorization', `Bearer ${this.opts.token}`);
      }
      let res: Response;
      try {
        res = await fetch(url, { ...init, method, body, headers, redirect: 'manual', signal: this.opts.signal });
      } catch (e) {
        throw this.networkError(e, what);
      }
      const location = res.headers.get('location');
      if (res.status < 300 || res.status > 399 || !location) return res;
      await res.body?.cancel();
      if (hop >= MAX_REDIRECTS) {
        throw new HubHttpError('HUB_HTTP', res.status, `too many redirects fetching ${what} of ${this.opts.repo}`);
      }
      url = new URL(location, url).href;
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
        method = 'GET';
        body = undefined;
      }
    }
  }

  /** A network-level failure as a HubNetworkError (or the abort reason when the caller aborted). */
  networkError(e: unknown, what: string): unknown {
    if (this.opts.signal?.aborted) return this.opts.signal.reason;
    if (e instanceof HubError) return e;
    return new HubNetworkError('HUB_NETWORK', `could not reach ${this.endpoint} for ${what}: ${describeCause(e)}`, {
      where: this.opts.repo,
      fix: 'check the network connection (or HF_ENDPOINT); to use only the local cache set HF_HUB_OFFLINE=1',
      cause: e,
    });
  }

  /** The error a hub error answer means, using the hub's X-Error-Code header as Python's hf_raise_for_status does. */
  async httpError(res: Response, what: string): Promise<HubHttpError> {
    const repo = this.opts.repo;
    const code = res.headers.get('x-error-code') ?? '';
    const detail = (res.headers.get('x-error-message') ?? (await errorText(res))).slice(0, 300);
    const tail = detail ? ` (hub said: ${detail})` : '';
    const page = `${this.endpoint}/${repo}`;
    if (code === 'GatedRepo' || ((res.status === 401 || res.status === 403) && /gated|restricted/i.test(detail))) {
      const why = this.opts.token ? 'the token given has no access to it' : 'no token was given';
      return new HubHttpError('HUB_GATED', res.status, `${repo} is a gated model and ${why}`, {
        where: what,
        fix:
          `accept the model's conditions on ${page} while logged in, ` +
          'then set HF_TOKEN (or pass --token) to a read token of that account',
      });
    }
    if (code === 'RepoNotFound' || (res.status === 404 && !code && what === 'model info')) {
      return new HubHttpError('HUB_REPO_NOT_FOUND', res.status, `repository ${repo} was not found on ${this.endpoint}${tail}`, {
        fix: 'check the id (owner/name, e.g. microsoft/Phi-4-mini-instruct); a private repo also needs HF_TOKEN or --token',
      });
    }
    if (code === 'RevisionNotFound') {
      const rev = this.opts.revision ?? '?';
      return new HubHttpError('HUB_REVISION_NOT_FOUND', res.status, `${repo} has no revision '${rev}'${tail}`, {
        where: what,
        fix: 'use a branch, a tag or a full 40-character commit hash that exists in the repo',
      });
    }
    if (code === 'EntryNotFound' || res.status === 404) {
      return new HubHttpError('HUB_FILE_NOT_FOUND', res.status, `${what} was not found in ${repo}${tail}`, {
        fix: `check the file list on ${page}/tree/main`,
      });
    }
    if (res.status === 401 || res.status === 403) {
      return new HubHttpError('HUB_UNAUTHORIZED', res.status, `${repo} refused access (HTTP ${res.status})${tail}`, {
        where: what,
        fix: this.opts.token ? 'the token given is invalid or lacks read access: make a new one' : 'set HF_TOKEN or pass --token',
      });
    }
    const answer = `${this.endpoint} answered HTTP ${res.status} for ${what} of ${repo}${tail}`;
    return new HubHttpError('HUB_HTTP', res.status, answer, {
      fix: res.status >= 500 || res.status === 429 ? 'the hub is busy or down: try again later' : undefined,
    });
  }
}

function requestUrl(input: string | URL | Request): string {
  return typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
}

/** The short reason behind a fetch failure (`fetch failed` hides it in `cause`). */
export function describeCause(e: unknown): string {
  const parts: string[] = [];
  for (let c: unknown = e; c && parts.length < 3; c = (c as { cause?: unknown }).cause) {
    const err = c as { code?: string; message?: string };
    const text = err.code ?? err.message;
    if (text && !parts.includes(text) && text !== 'fetch failed') parts.push(text);
  }
  return parts.join(': ') || 'network error';
}

async function errorText(res: Response): Promise<string> {
  try {
    const text = (await res.text()).trim();
    if (res.headers.get('content-type')?.includes('json')) {
      const json = JSON.parse(text) as { error?: unknown; message?: unknown };
      const msg = json.error ?? json.message;
      return typeof msg === 'string' ? msg : '';
    }
    return text.length < 300 && !text.includes('<') ? text : '';
  } catch {
    return '';
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
