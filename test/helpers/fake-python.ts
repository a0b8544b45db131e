// Test helper: installs the fake python3/python/olive executables (test/helpers/fake-python/) into a temp bin
// folder, builds the environment that points at them (PATH = that folder only, so no real Python is found), and
// reads back what they recorded.
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = fileURLToPath(new URL('./fake-python/', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export type FakeToolName = 'python3' | 'python' | 'olive';

export interface FakeRecord {
  name: FakeToolName;
  argv: string[];
  cwd: string;
  env: Record<string, string | null>;
  /** Set for the package probe. */
  probe?: boolean;
  /** `olive run`: the config file's content. */
  config?: Record<string, unknown>;
}

export interface FakeTools {
  /** Temp root (bin/, record file, scratch) removed by cleanup(). */
  root: string;
  binDir: string;
  recordFile: string;
  /** Environment for the code under test: PATH is binDir only; `extra` adds FAKE_* switches. */
  env(extra?: Record<string, string>): NodeJS.ProcessEnv;
  /** Absolute path of an installed fake. */
  path(name: FakeToolName): string;
  records(): Promise<FakeRecord[]>;
  cleanup(): Promise<void>;
}

/** Copies the fakes (with the executable bit set here, whatever git kept) into a new temp bin folder. */
export async function installFakeTools(names: readonly FakeToolName[] = ['python3', 'python', 'olive']): Promise<FakeTools> {
  const root = await mkdtemp(join(tmpdir(), 'phi-forge-fake-tools-'));
  const binDir = join(root, 'bin');
  await mkdir(binDir);
  for (const n of names) {
    await copyFile(join(here, n), join(binDir, n));
    await chmod(join(binDir, n), 0o755);
  }
  const recordFile = join(root, 'calls.jsonl');
  return {
    root,
    binDir,
    recordFile,
    env: (extra = {}) => ({
      PATH: binDir,
      HOME: root,
      FAKE_TOOL_NODE: process.execPath,
      FAKE_TOOL_TSX: pathToFileURL(join(repoRoot, 'node_modules/tsx/dist/loader.mjs')).href,
      FAKE_TOOL_SCRIPT: join(here, 'fake-tool.ts'),
      FAKE_TOOL_RECORD: recordFile,
      ...extra,
    }),
    path: (n) => join(binDir, n),
    records: async () =>
      (await readFile(recordFile, 'utf8').catch(() => ''))
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as FakeRecord),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

/** An empty folder to use as PATH: nothing at all can be found on it. */
export async function emptyBinDir(tools: FakeTools): Promise<string> {
  const d = join(tools.root, 'empty-bin');
  await mkdir(d, { recursive: true });
  return d;
}

/** True while `pid` runs (a zombie waiting for its parent to reap it counts as gone). */
export async function isRunning(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Field 3 (after the parenthesised command name) is the state; Z = zombie, X = dead.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/** Polls until every pid is gone or `limitMs` passes (a bound on waiting, not a timing assertion). */
export async function waitGone(pids: readonly number[], limitMs = 15_000): Promise<number[]> {
  const until = Date.now() + limitMs;
  for (;;) {
    const alive: number[] = [];
    for (const p of pids) if (await isRunning(p)) alive.push(p);
    if (!alive.length || Date.now() > until) return alive;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A tiny Phi-4-mini-architecture checkpoint (tied embeddings, partial rotary) with the embedded tokenizer's files. */
export async function tinyPhi4MiniCheckpoint(): Promise<{ dir: string; config: Record<string, unknown> }> {
  const { tinyCheckpoint } = await import('./build.js');
  const { writeTinyTokenizer } = await import('../../src/checkpoint/tiny-tokenizer.js');
  const ckpt = await tinyCheckpoint('phi-4-mini');
  await writeTinyTokenizer(ckpt.dir);
  return ckpt;
}
