// Finding the Python interpreter (--python, PHI_FORGE_PYTHON, then python3/python on PATH) and asking it, in one
// `python -c` call, which packages it can import and at which versions.
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { execa } from 'execa';
import { ExternalToolError } from '../util/errors.js';

export type PythonSource = '--python' | 'PHI_FORGE_PYTHON' | 'PATH';

export interface LocatedPython {
  /** Absolute path of the interpreter as found (not symlink-resolved: a venv's python must stay the venv's). */
  path: string;
  source: PythonSource;
}

/** True when `path` is a regular file this process may execute. */
export async function isExecutableFile(path: string): Promise<boolean> {
  try {
    if (!(await stat(path)).isFile()) return false;
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first `name` on the PATH of `env` that is an executable file. */
export async function findOnPath(name: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = resolve(dir, name);
    if (await isExecutableFile(p)) return p;
  }
  return undefined;
}

/**
 * The interpreter to run: `explicit` (a path, or a command name looked up on PATH), else PHI_FORGE_PYTHON, else the
 * first python3 on PATH, else the first python. Each miss is one error that says where we looked and what to do.
 */
export async function locatePython(explicit?: string, env: NodeJS.ProcessEnv = process.env): Promise<LocatedPython> {
  const chosen = explicit !== undefined && explicit !== '' ? { value: explicit, source: '--python' as const } : env.PHI_FORGE_PYTHON ? { value: env.PHI_FORGE_PYTHON, source: 'PHI_FORGE_PYTHON' as const } : undefined;
  if (chosen) {
    const looksLikePath = chosen.value.includes('/') || chosen.value.includes('\\') || isAbsolute(chosen.value);
    const path = looksLikePath ? resolve(chosen.value) : await findOnPath(chosen.value, env);
    if (!path || !(await isExecutableFile(path))) {
      throw new ExternalToolError('EXTERNAL_PYTHON_NOT_EXECUTABLE', `${chosen.source} names "${chosen.value}", which is not an executable file${looksLikePath ? '' : ' on PATH'}`, {
        fix: `point ${chosen.source} at a Python interpreter, e.g. ${chosen.source === '--python' ? '--python ~/venvs/ort/bin/python' : 'export PHI_FORGE_PYTHON=~/venvs/ort/bin/python'}`,
      });
    }
    return { path, source: chosen.source };
  }
  for (const name of ['python3', 'python']) {
    const path = await findOnPath(name, env);
    if (path) return { path, source: 'PATH' };
  }
  throw new ExternalToolError('EXTERNAL_PYTHON_MISSING', 'no Python interpreter found: no --python, no PHI_FORGE_PYTHON, and neither python3 nor python on PATH', {
    fix: 'install Python 3.10 or newer (e.g. `apt-get install python3 python3-venv`, then `python3 -m venv ~/venvs/ort`) and pass --python ~/venvs/ort/bin/python or set PHI_FORGE_PYTHON',
  });
}

/** One package to look for: the module to import and the distribution names its version may be recorded under. */
export interface PackageQuery {
  module: string;
  distributions: readonly string[];
  /** `import` really imports the module (catches broken native libraries); `find` only locates it (fast, for torch). */
  how: 'import' | 'find';
}

export interface PackageStatus {
  /** Version string, or null when the package has no version metadata. Absent when the package is missing. */
  version?: string | null;
  /** Why it could not be imported, e.g. `ModuleNotFoundError: No module named 'olive'`. */
  error?: string;
}

export interface PythonProbe {
  python: LocatedPython;
  /** e.g. `3.11.7`. */
  pythonVersion: string;
  /** sys.executable as Python reports it. */
  executable: string;
  /** By module name. */
  packages: Record<string, PackageStatus>;
}

/** Marker the probe prints before its JSON; the fake interpreters in tests recognise the probe by it. */
export const PROBE_MARKER = 'PHI_FORGE_PROBE';

/**
 * The probe: argv[1] is a JSON list of [module, [distributions...], how]; prints one line `PHI_FORGE_PROBE=<json>`.
 * Written for Python 3.8+ so that an old interpreter still answers with its version instead of a syntax error.
 */
export const PROBE_SCRIPT = `
import sys, json, importlib, importlib.util
try:
    from importlib import metadata as _md
except Exception:
    _md = None
res = {"python": "%d.%d.%d" % tuple(sys.version_info[:3]), "executable": sys.executable, "packages": {}}
for mod, dists, how in json.loads(sys.argv[1]):
    entry = {}
    try:
        v = None
        if how == "import":
            m = importlib.import_module(mod)
            v = getattr(m, "__version__", None)
        elif importlib.util.find_spec(mod) is None:
            raise ModuleNotFoundError("No module named '%s'" % mod)
        if not isinstance(v, str) and _md is not None:
            for d in dists:
                try:
                    v = _md.version(d)
                    break
                except Exception:
                    pass
        entry["version"] = v if isinstance(v, str) else None
    except Exception as e:
        entry["error"] = "%s: %s" % (type(e).__name__, e)
    res["packages"][mod] = entry
print("${PROBE_MARKER}=" + json.dumps(res))
sys.stdout.flush()
`;

export interface ProbeOptions {
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Importing torch-based packages can take a while on a cold cache. Default 120 s. */
  timeoutMs?: number;
}

/** Runs the probe once with `python` and returns what it found; a crash or garbled answer is an error. */
export async function probePython(python: LocatedPython, queries: readonly PackageQuery[], opts: ProbeOptions = {}): Promise<PythonProbe> {
  const arg = JSON.stringify(queries.map((q) => [q.module, q.distributions, q.how]));
  let r;
  try {
    r = await execa(python.path, ['-c', PROBE_SCRIPT, arg], {
      env: { ...(opts.env ?? process.env), PYTHONIOENCODING: 'utf-8' },
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
      timeout: opts.timeoutMs ?? 120_000,
      cancelSignal: opts.signal,
      maxBuffer: 4 * 2 ** 20,
    });
  } catch (e) {
    throw new ExternalToolError('EXTERNAL_PROBE_FAILED', `cannot run ${python.path}: ${(e as Error).message}`, { cause: e, fix: 'check that the interpreter runs: `' + python.path + ' --version`' });
  }
  if (opts.signal?.aborted) throw opts.signal.reason;
  const line = String(r.stdout ?? '')
    .split(/\r?\n/)
    .find((l) => l.startsWith(PROBE_MARKER + '='));
  if (r.exitCode !== 0 || !line) {
    const why = r.timedOut ? 'timed out' : r.exitCode !== 0 ? `exited with code ${r.exitCode ?? r.signal}` : 'printed no answer';
    const tail = lastLines(String(r.stderr ?? '') || String(r.stdout ?? ''), 8);
    throw new ExternalToolError('EXTERNAL_PROBE_FAILED', `${python.path} (from ${python.source}) ${why} when asked for its packages${tail ? `:\n${indent(tail)}` : ''}`, {
      fix: `check that \`${python.path} -c "import sys; print(sys.version)"\` works, or choose another interpreter with --python`,
    });
  }
  let parsed: { python: string; executable: string; packages: Record<string, PackageStatus> };
  try {
    parsed = JSON.parse(line.slice(PROBE_MARKER.length + 1)) as typeof parsed;
  } catch (e) {
    throw new ExternalToolError('EXTERNAL_PROBE_FAILED', `${python.path} answered the package probe with malformed JSON`, { cause: e });
  }
  return { python, pythonVersion: parsed.python, executable: parsed.executable, packages: parsed.packages ?? {} };
}

function lastLines(text: string, n: number): string {
  return text.trimEnd().split(/\r?\n/).slice(-n).join('\n');
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  | ${l}`)
    .join('\n');
}

/** The executable `name` installed next to `python` (same venv / prefix bin folder), if any. */
export async function siblingExecutable(python: LocatedPython, name: string): Promise<string | undefined> {
  const p = join(python.path, '..', name);
  return (await isExecutableFile(p)) ? resolve(p) : undefined;
}
