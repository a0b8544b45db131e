// runTool: runs one external command in its own process group, streams its output line by line (progress
// percentages parsed), tees stdout+stderr to a log file, kills the whole process tree on abort, and on failure
// throws with the log's tail.
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { execa } from 'execa';
import { ExternalToolError } from '../util/errors.js';

export interface RunToolOptions {
  /** Executable (absolute path, or a name looked up on the PATH of `env`). */
  file: string;
  args: readonly string[];
  /** Short name for messages, e.g. `onnxruntime-genai builder`. */
  label: string;
  /** The log file; appended to, so several commands of one build can share it. */
  logFile: string;
  /** Where error messages say the log is (when the caller keeps a copy elsewhere on failure). Default logFile. */
  logShownAs?: string;
  cwd?: string;
  /** The whole environment of the child (nothing is inherited beyond it). Default process.env. */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Each non-empty output line (stdout and stderr; `\r`-redrawn progress bars give one line per redraw). */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** A percentage (0–100) found in an output line, e.g. tqdm's `45%|████`. */
  onProgress?: (pct: number) => void;
  /** Lines kept for the error message. Default 20. */
  tailLines?: number;
  /** Between SIGTERM to the process group and SIGKILL on abort. Default 3000 ms. */
  killGraceMs?: number;
}

export interface RunToolResult {
  command: string[];
  logFile: string;
  /** The last output lines. */
  tail: string[];
}

/** The last `N%` in a line (0–100), or undefined. */
export function parsePercent(line: string): number | undefined {
  const all = [...line.matchAll(/(?<![\w.])(\d{1,3}(?:\.\d+)?)\s?%/g)];
  for (let i = all.length - 1; i >= 0; i--) {
    const v = Number(all[i][1]);
    if (v >= 0 && v <= 100) return v;
  }
  return undefined;
}

/** Splits a byte stream into lines on `\n`, `\r\n` and bare `\r` (progress-bar redraws). */
class LineSplitter {
  private readonly decoder = new TextDecoder();
  private rest = '';
  constructor(private readonly emit: (line: string) => void) {}
  push(chunk: Uint8Array): void {
    const text = this.rest + this.decoder.decode(chunk, { stream: true });
    const parts = text.split(/\r\n|\r|\n/);
    this.rest = parts.pop() ?? '';
    // A chunk ending in '\r' may be the first half of '\r\n': the empty line it would make is dropped below anyway.
    for (const p of parts) this.emit(p);
  }
  end(): void {
    const last = this.rest + this.decoder.decode();
    this.rest = '';
    if (last) this.emit(last);
  }
}

/** Runs the command to completion; rejects with ExternalToolError (non-zero exit, crash) or the abort reason. */
export async function runTool(opts: RunToolOptions): Promise<RunToolResult> {
  const command = [opts.file, ...opts.args];
  const tailMax = opts.tailLines ?? 20;
  const tail: string[] = [];
  opts.signal?.throwIfAborted();
  await mkdir(dirname(opts.logFile), { recursive: true });
  const log = createWriteStream(opts.logFile, { flags: 'a' });
  log.write(`$ ${command.map(quoteArg).join(' ')}\n# started ${new Date().toISOString()}${opts.cwd ? ` in ${opts.cwd}` : ''}\n`);

  const onLine = (stream: 'stdout' | 'stderr') => (raw: string) => {
    const line = raw.trimEnd();
    if (!line.trim()) return;
    tail.push(line);
    if (tail.length > tailMax) tail.shift();
    opts.onLine?.(line, stream);
    const pct = parsePercent(line);
    if (pct !== undefined) opts.onProgress?.(pct);
  };
  const splitters = { stdout: new LineSplitter(onLine('stdout')), stderr: new LineSplitter(onLine('stderr')) };

  // detached: the child leads a new process group, so one kill(-pid) reaches its children and grandchildren too
  // (Python tools fork workers; a plain kill of the child would leave them running).
  const child = execa(opts.file, [...opts.args], {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    extendEnv: false,
    detached: true,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    windowsHide: true,
  });
  const pid = child.pid;
  for (const stream of ['stdout', 'stderr'] as const) {
    child[stream]?.on('data', (chunk: Uint8Array) => {
      log.write(chunk);
      splitters[stream].push(chunk);
    });
  }

  let killTimer: NodeJS.Timeout | undefined;
  let aborted = false;
  const killGroup = (sig: NodeJS.Signals) => {
    if (pid === undefined) return;
    try {
      process.kill(-pid, sig);
    } catch {
      /* already gone */
    }
  };
  const onAbort = () => {
    aborted = true;
    log.write(`\n# aborted: sending SIGTERM to process group ${pid}\n`);
    killGroup('SIGTERM');
    killTimer = setTimeout(() => killGroup('SIGKILL'), opts.killGraceMs ?? 3000);
    killTimer.unref();
  };
  // If this process exits first (a second Ctrl-C calls process.exit), a detached group would outlive it.
  const onExit = () => killGroup('SIGKILL');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  process.on('exit', onExit);
  // Once the tool itself has exited, whatever it left in its group (a daemonised worker) goes too: such a process
  // would also hold the output pipes open and keep us waiting for their end.
  child.once('exit', () => killGroup('SIGKILL'));

  let result;
  try {
    result = await child;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    process.off('exit', onExit);
    if (killTimer) clearTimeout(killTimer);
    killGroup('SIGKILL');
    splitters.stdout.end();
    splitters.stderr.end();
  }
  const ended = `# ended ${new Date().toISOString()}: ${result.failed && result.exitCode === undefined ? (result.signal ?? 'not started') : `exit code ${result.exitCode}`}\n`;
  await closeLog(log, ended);

  if (aborted || opts.signal?.aborted) throw opts.signal?.reason ?? new ExternalToolError('EXTERNAL_TOOL_ABORTED', `${opts.label} was interrupted`);
  const notStarted = (result as { code?: string }).code === 'ENOENT' || (result.exitCode === undefined && !result.signal && result.failed);
  if (notStarted) {
    throw new ExternalToolError('EXTERNAL_TOOL_NOT_STARTED', `cannot start ${opts.label}: ${result.shortMessage ?? result.message}`, {
      file: opts.file,
      fix: 'check that the executable exists and is executable',
    });
  }
  if (result.exitCode !== 0) {
    const how = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
    const shown = tail.length ? tail : lastLogLines(await readFile(opts.logFile, 'utf8').catch(() => ''), tailMax);
    const shownLog = opts.logShownAs ?? opts.logFile;
    throw new ExternalToolError('EXTERNAL_TOOL_FAILED', `${opts.label} ${how}; last output:\n${shown.map((l) => `  | ${l}`).join('\n')}`, {
      file: shownLog,
      fix: `read the full log (${shownLog}); the command was: ${command.map(quoteArg).join(' ')}`,
    });
  }
  return { command, logFile: opts.logFile, tail };
}

function closeLog(log: WriteStream, last: string): Promise<void> {
  return new Promise((resolve) => {
    log.end(last, () => resolve());
    log.on('error', () => resolve());
  });
}

function lastLogLines(text: string, n: number): string[] {
  return text
    .split(/\r\n|\r|\n/)
    .filter((l) => l.trim() && !l.startsWith('# '))
    .slice(-n);
}

/** Shell-style quoting for logs and messages (commands are never run through a shell). */
export function quoteArg(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}
