// Test helper: opens a page in headless Chromium (Debian's /usr/bin/chromium) and drives it over the DevTools
// protocol on a pipe (--remote-debugging-pipe: NUL-terminated JSON on file descriptors 3 and 4), so no npm package
// and no port is needed. Collects console errors, uncaught exceptions, log errors and non-local requests.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';

export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

/** The browser, or undefined on a developer machine without it; under CI=true a missing browser throws. */
export function chromiumPath(): string | undefined {
  if (existsSync(CHROMIUM)) return CHROMIUM;
  if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing (CI=true requires it: .ci/run installs Debian's chromium)`);
  return undefined;
}

export interface PageVisit {
  /** The value of `evaluate` (JSON-able), run in the page after its load event. */
  value: unknown;
  /** console.error calls, uncaught exceptions and error-level log entries (CSP violations, failed loads). */
  errors: string[];
  /** Requests to anything but file:, data: and about: URLs that the browser did not block itself. */
  networkRequests: string[];
  /** Requests the browser blocked before sending (Content-Security-Policy and the like), with the reason. */
  blockedRequests: string[];
  /** PNG of the viewport, when asked for. */
  screenshot?: Buffer;
}

type Message = { id?: number; method?: string; params?: Record<string, unknown>; result?: unknown; error?: { message: string }; sessionId?: string };

class Cdp {
  private next = 1;
  private buffer = '';
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners: ((m: Message) => void)[] = [];

  constructor(
    private readonly out: Writable,
    input: Readable,
  ) {
    input.setEncoding('utf8');
    input.on('data', (chunk: string) => {
      this.buffer += chunk;
      for (let end = this.buffer.indexOf('\0'); end >= 0; end = this.buffer.indexOf('\0')) {
        const msg = JSON.parse(this.buffer.slice(0, end)) as Message;
        this.buffer = this.buffer.slice(end + 1);
        if (msg.id !== undefined && this.pending.has(msg.id)) {
          const p = this.pending.get(msg.id)!;
          this.pending.delete(msg.id);
          if (msg.error) p.reject(new Error(`DevTools: ${msg.error.message}`));
          else p.resolve(msg.result);
        } else {
          for (const l of this.listeners) l(msg);
        }
      }
    });
  }

  send<T = Record<string, unknown>>(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<T> {
    const id = this.next++;
    const msg = JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) });
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.out.write(msg + '\0');
    });
  }

  on(l: (m: Message) => void): void {
    this.listeners.push(l);
  }

  failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}

/**
 * Loads `file` in a fresh headless Chromium profile, waits for the load event (and a short settle for late console
 * messages), then evaluates `evaluate` in the page.
 */
export async function visitPage(file: string, evaluate: string, opts: { screenshot?: boolean; timeoutMs?: number } = {}): Promise<PageVisit> {
  const bin = chromiumPath();
  if (!bin) throw new Error('chromium is not installed');
  const profile = await mkdtemp(join(tmpdir(), 'phi-forge-chromium-'));
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-dev-shm-usage',
    `--user-data-dir=${profile}`,
    '--remote-debugging-pipe',
    '--window-size=1280,1600',
    'about:blank',
  ];
  const child: ChildProcess = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  // A pipe closed by an exiting browser must not crash the test process; the exit handler reports it.
  for (const fd of [3, 4]) (child.stdio[fd] as Writable | Readable).on('error', () => undefined);
  const cdp = new Cdp(child.stdio[3] as Writable, child.stdio[4] as Readable);
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => {
      const e = new Error(`chromium exited (${code}) before the page was read:\n${stderr.slice(-2000)}`);
      cdp.failAll(e);
      reject(e);
    }),
  );
  exited.catch(() => undefined);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`chromium did not finish within ${timeoutMs} ms:\n${stderr.slice(-2000)}`)), timeoutMs);
  });

  const errors: string[] = [];
  const requests = new Map<string, string>();
  const blockedRequests: string[] = [];
  let loaded!: () => void;
  const load = new Promise<void>((r) => (loaded = r));
  cdp.on((m) => {
    const p = m.params ?? {};
    if (m.method === 'Page.loadEventFired') loaded();
    else if (m.method === 'Runtime.consoleAPICalled' && (p.type === 'error' || p.type === 'assert')) {
      errors.push(`console.${p.type}: ${JSON.stringify((p.args as { value?: unknown; description?: string }[]).map((a) => a.value ?? a.description))}`);
    } else if (m.method === 'Runtime.exceptionThrown') {
      const d = p.exceptionDetails as { text?: string; exception?: { description?: string } };
      errors.push(`exception: ${d.exception?.description ?? d.text}`);
    } else if (m.method === 'Log.entryAdded') {
      const e = p.entry as { level: string; text: string; url?: string };
      if (e.level === 'error') errors.push(`log: ${e.text}${e.url ? ` (${e.url})` : ''}`);
    } else if (m.method === 'Network.requestWillBeSent') {
      const url = (p.request as { url: string }).url;
      if (!/^(file|data|about):/.test(url)) requests.set(p.requestId as string, url);
    } else if (m.method === 'Network.loadingFailed' && p.blockedReason && requests.has(p.requestId as string)) {
      // Announced but never sent: the page's policy (or the browser) stopped it.
      blockedRequests.push(`${requests.get(p.requestId as string)} (${String(p.blockedReason)})`);
      requests.delete(p.requestId as string);
    }
  });

  try {
    const run = async (): Promise<PageVisit> => {
      const { targetId } = await cdp.send<{ targetId: string }>('Target.createTarget', { url: 'about:blank' });
      const { sessionId } = await cdp.send<{ sessionId: string }>('Target.attachToTarget', { targetId, flatten: true });
      for (const domain of ['Runtime', 'Log', 'Page', 'Network']) await cdp.send(`${domain}.enable`, {}, sessionId);
      await cdp.send('Page.navigate', { url: pathToFileURL(file).href }, sessionId);
      await load;
      // Console messages of the last scripts may arrive just after the load event.
      await sleep(300);
      const ev = await cdp.send<{ result: { value?: unknown }; exceptionDetails?: { text: string } }>(
        'Runtime.evaluate',
        { expression: evaluate, returnByValue: true },
        sessionId,
      );
      if (ev.exceptionDetails) throw new Error(`evaluate failed: ${ev.exceptionDetails.text}`);
      const shot = opts.screenshot ? Buffer.from((await cdp.send<{ data: string }>('Page.captureScreenshot', { format: 'png' }, sessionId)).data, 'base64') : undefined;
      return { value: ev.result.value, errors, networkRequests: [...requests.values()], blockedRequests, screenshot: shot };
    };
    return await Promise.race([run(), exited, timeout]);
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      await Promise.race([cdp.send('Browser.close').catch(() => undefined), gone, sleep(3000)]);
      await Promise.race([gone, sleep(5000)]);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await gone;
      }
    }
    await rm(profile, { recursive: true, force: true });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
