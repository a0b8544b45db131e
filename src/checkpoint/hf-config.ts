// config.json of a Hugging Face checkpoint, read generically: valid JSON, an object, `architectures` a list of names.
// Its fields are parsed once, by the schema of the architecture family it names (src/arch/families/*/config.ts,
// found through the registry in src/arch/index.ts); this reader knows no family.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CheckpointError } from '../util/errors.js';

export const CONFIG_FILE = 'config.json';

/** config.json as read: what identifies its family, and the object itself for the family's schema. */
export interface HfConfigJson {
  /** The file it was read from (or a label such as `preset phi-2`), for error messages. */
  readonly file: string;
  /** `architectures[0]`, when config.json names one. */
  readonly architecture?: string;
  /** `model_type`, when config.json gives one (names the family when `architectures` is absent). */
  readonly modelType?: string;
  /** config.json exactly as read (deep-frozen): the family's schema parses it; messages tell set keys from defaults. */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** Checks what every config.json must be (an object; `architectures` a list of names). `file` names it in errors. */
export function parseHfConfig(json: unknown, file: string): HfConfigJson {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new CheckpointError('CONFIG_INVALID', 'config.json is not a JSON object', {
      file,
      fix: 'a Hugging Face config.json is an object like {"architectures": ["Phi3ForCausalLM"], ...}',
    });
  }
  const raw = json as Record<string, unknown>;
  const archs = raw.architectures;
  if (archs !== undefined && archs !== null && (!Array.isArray(archs) || !archs.every((a) => typeof a === 'string'))) {
    throw new CheckpointError('CONFIG_INVALID', `architectures must be a list of names, got ${JSON.stringify(archs)}`, {
      file,
      where: 'architectures',
      fix: 'set "architectures": ["Phi3ForCausalLM"] (or the model class it was saved from)',
    });
  }
  const first = Array.isArray(archs) && archs.length > 0 ? (archs[0] as string) : undefined;
  const modelType = typeof raw.model_type === 'string' ? raw.model_type : undefined;
  return { file, architecture: first, modelType, raw: deepFreeze(structuredClone(raw)) };
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as object)) deepFreeze(x);
  }
  return v;
}

/** Parses config.json text (a JSON syntax error is a CheckpointError naming the file). */
export function parseHfConfigText(text: string, file: string): HfConfigJson {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError('CONFIG_JSON', `not valid JSON (${(e as Error).message})`, {
      file,
      fix: 'fix the syntax error, or download config.json again',
    });
  }
  return parseHfConfig(json, file);
}

/** Reads `<dir>/config.json`. */
export async function readHfConfig(dir: string): Promise<HfConfigJson> {
  const file = join(dir, CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(
      code === 'ENOENT' ? 'CONFIG_MISSING' : 'CONFIG_UNREADABLE',
      code === 'ENOENT' ? 'no config.json in the checkpoint folder' : `cannot read config.json (${code ?? (e as Error).message})`,
      { file, fix: 'a Hugging Face checkpoint folder holds config.json next to its *.safetensors files', cause: e },
    );
  }
  return parseHfConfigText(text, file);
}
