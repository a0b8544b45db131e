// Hub settings read from the environment with the same names and precedence as Python's huggingface_hub
// (constants.py), so a machine set up for Python tools behaves the same here: cache dir, endpoint, offline, token.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export type Env = Readonly<Record<string, string | undefined>>;

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

/** An environment variable, with empty strings treated as unset. */
function get(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

/** Python's os.path.expanduser for the forms that matter here: `~` and `~/...`. */
function expandUser(p: string, env: Env): string {
  if (p !== '~' && !p.startsWith('~/')) return p;
  return join(get(env, 'HOME') ?? homedir(), p.slice(1));
}

/** Python's os.path.expandvars: `$NAME` and `${NAME}` are replaced when set and left as they are when not. */
function expandVars(p: string, env: Env): string {
  return p.replace(/\$(\w+)|\$\{([^}]+)\}/g, (m, a: string | undefined, b: string | undefined) => env[a ?? b ?? ''] ?? m);
}

function expand(p: string, env: Env): string {
  return expandVars(expandUser(p, env), env);
}

/** HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
export function hfHome(env: Env = process.env): string {
  const explicit = get(env, 'HF_HOME');
  if (explicit) return expand(explicit, env);
  const xdg = get(env, 'XDG_CACHE_HOME');
  return join(xdg ? expand(xdg, env) : join(get(env, 'HOME') ?? homedir(), '.cache'), 'huggingface');
}

/**
 * The hub cache folder Python tools use: HF_HUB_CACHE, else the legacy HUGGINGFACE_HUB_CACHE, else HF_HOME/hub
 * (HF_HOME itself defaulting to $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface). `~` and `$VARS` expand.
 */
export function hubCacheDir(env: Env = process.env): string {
  const explicit = get(env, 'HF_HUB_CACHE') ?? get(env, 'HUGGINGFACE_HUB_CACHE');
  return explicit ? expand(explicit, env) : join(hfHome(env), 'hub');
}

/** HF_ENDPOINT (trailing slashes removed) or https://huggingface.co. */
export function hubEndpoint(env: Env = process.env): string {
  return (get(env, 'HF_ENDPOINT') ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

/** Python's `_is_true`: 1, ON, YES, TRUE in any case. */
function isTrue(v: string | undefined): boolean {
  return v !== undefined && ['1', 'ON', 'YES', 'TRUE'].includes(v.trim().toUpperCase());
}

/** HF_HUB_OFFLINE (or the older TRANSFORMERS_OFFLINE) set to 1/ON/YES/TRUE. */
export function hubOffline(env: Env = process.env): boolean {
  return isTrue(get(env, 'HF_HUB_OFFLINE') ?? get(env, 'TRANSFORMERS_OFFLINE'));
}

/**
 * The token Python tools would use: HF_TOKEN, else the legacy HUGGING_FACE_HUB_TOKEN, else the file written by
 * `huggingface-cli login` / `hf auth login` (HF_TOKEN_PATH, default HF_HOME/token). Undefined when none is set.
 */
export function hubToken(env: Env = process.env): string | undefined {
  const fromEnv = get(env, 'HF_TOKEN') ?? get(env, 'HUGGING_FACE_HUB_TOKEN');
  if (fromEnv) return fromEnv.trim() || undefined;
  const path = get(env, 'HF_TOKEN_PATH');
  try {
    const text = readFileSync(path ? expand(path, env) : join(hfHome(env), 'token'), 'utf8');
    return text.trim() || undefined;
  } catch {
    return undefined; // no login on this machine: anonymous access
  }
}
