// Output paths given on the command line, checked before any work: never a system place (/proc, /sys, /dev), never a
// folder where a file is meant or a file where a folder is meant, and `--force` replaces output only — never an
// input, a folder holding an input, the filesystem root, the home folder or the working folder (or their parents).
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { UsageError } from './errors.js';
import { isWithin } from './safe-name.js';

/** Places that are not storage: writing there is refused (Node's recursive mkdir spins forever under /proc). */
const SYSTEM_PLACES = ['/proc', '/sys', '/dev'];

export interface OutputCheck {
  /** The flag the path came from, for messages: `--out`, `--report`, `--artifacts`. */
  flag: string;
  /** Paths the command reads: a folder output may not be or hold one of them; a file output may not be one. */
  inputs?: readonly string[];
}

export interface OutputFolderCheck extends OutputCheck {
  /** A non-empty folder may be replaced (it is still refused when it is or holds an input or a protected place). */
  force?: boolean;
}

/**
 * Checks a folder the command will fill (replacing it when `force`): absent or empty, or non-empty with `force` and
 * neither protected nor holding an input. Returns the absolute path.
 */
export async function checkOutputFolder(path: string, opts: OutputFolderCheck): Promise<string> {
  const { abs, real, exists } = await locate(path, opts.flag);
  if (!exists) return abs;
  const st = await stat(abs);
  if (!st.isDirectory()) {
    throw new UsageError(`${opts.flag} ${path} exists and is not a folder`, { code: 'OUT_NOT_DIR', file: abs, fix: `give ${opts.flag} a folder path` });
  }
  await refuseInputs(real, abs, opts);
  if ((await readdir(abs)).length === 0) return abs;
  if (!opts.force) {
    throw new UsageError(`${opts.flag} ${path} is not empty`, {
      code: 'OUT_NOT_EMPTY',
      file: abs,
      fix: `choose an empty or new ${opts.flag} folder, or pass --force to replace it`,
    });
  }
  await refuseProtected(real, abs, opts.flag);
  return abs;
}

/**
 * Checks a folder the command writes files into without replacing it (the stage cache, a report folder, the root
 * packages are published under): it must be a folder or creatable as one. Returns the absolute path.
 */
export async function checkWorkFolder(path: string, flag: string): Promise<string> {
  const { abs, exists } = await locate(path, flag);
  if (exists && !(await stat(abs)).isDirectory()) {
    throw new UsageError(`${flag} ${path} is a file, not a folder`, { code: 'OUT_NOT_DIR', file: abs, fix: `give ${flag} a folder path` });
  }
  return abs;
}

/** Checks a file the command writes (replacing an existing file): not a folder, in a folder. Returns the absolute path. */
export async function checkOutputFile(path: string, opts: OutputCheck): Promise<string> {
  const { abs, real, exists } = await locate(path, opts.flag);
  if (exists && (await stat(abs)).isDirectory()) {
    throw new UsageError(`${opts.flag} ${path} is a folder; a file path is needed`, {
      code: 'OUT_IS_DIR',
      file: abs,
      fix: `give ${opts.flag} a file path, e.g. ${join(path, 'model.onnx')}`,
    });
  }
  for (const input of opts.inputs ?? []) {
    if ((await realpath(input).catch(() => resolve(input))) === real) {
      throw new UsageError(`${opts.flag} ${path} is the input ${input}; writing there would destroy it`, {
        code: 'OUT_IS_INPUT',
        file: abs,
        fix: `give ${opts.flag} another file name`,
      });
    }
  }
  return abs;
}

interface Located {
  abs: string;
  /** The real path: the nearest existing ancestor with symlinks resolved, plus the rest. */
  real: string;
  exists: boolean;
}

async function locate(path: string, flag: string): Promise<Located> {
  const abs = resolve(path);
  let existing = abs;
  while (!(await lstat(existing).then(() => true, () => false))) existing = dirname(existing);
  const exists = existing === abs;
  let realBase: string;
  try {
    realBase = await realpath(existing);
  } catch (e) {
    // A dangling symlink: its target does not exist, so it cannot be written through safely.
    throw new UsageError(`${flag} ${path} cannot be resolved (${(e as NodeJS.ErrnoException).code})`, { code: 'OUT_UNRESOLVABLE', file: abs, fix: `give ${flag} another path` });
  }
  const real = join(realBase, relative(existing, abs));
  if (SYSTEM_PLACES.some((p) => isWithin(real, p))) {
    throw new UsageError(`${flag} ${path} is inside ${SYSTEM_PLACES.find((p) => isWithin(real, p))}, a system folder, not storage`, {
      code: 'OUT_SYSTEM_PLACE',
      file: abs,
      fix: `give ${flag} a path on a disk`,
    });
  }
  if (!exists && !(await stat(realBase)).isDirectory()) {
    throw new UsageError(`${flag} ${path}: ${existing} is a file, so nothing can be created under it`, {
      code: 'OUT_PARENT_NOT_DIR',
      file: abs,
      fix: `give ${flag} a path whose parent is a folder`,
    });
  }
  return { abs, real, exists };
}

/** Replacing these (or a folder that holds them) would delete what the user keeps: never, even with --force. */
async function refuseProtected(real: string, abs: string, flag: string): Promise<void> {
  const protectedPlaces = [sep, homedir(), process.cwd()];
  for (const p of protectedPlaces) {
    const rp = await realpath(p).catch(() => p);
    if (isWithin(rp, real)) {
      throw new UsageError(`${flag} ${abs} ${rp === real ? 'is' : 'holds'} ${p === sep ? 'the filesystem root' : p === homedir() ? 'the home folder' : 'the working folder'}; --force will not replace it`, {
        code: 'OUT_PROTECTED',
        file: abs,
        fix: `give ${flag} a new folder of its own, e.g. ${join(abs === sep ? '/tmp' : abs, 'out')}`,
      });
    }
  }
}

async function refuseInputs(real: string, abs: string, opts: OutputCheck): Promise<void> {
  for (const input of opts.inputs ?? []) {
    const rin = await realpath(input).catch(() => resolve(input));
    if (isWithin(rin, real)) {
      throw new UsageError(`${opts.flag} ${abs} ${rin === real ? 'is' : 'holds'} the input ${input}; writing there would destroy it`, {
        code: 'OUT_HOLDS_INPUT',
        file: abs,
        fix: `give ${opts.flag} a folder that does not contain the input`,
      });
    }
  }
}
