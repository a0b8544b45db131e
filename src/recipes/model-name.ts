// Model names: they become path segments (artifacts/<model>/..., <out>/<model>-<target>), so a name is always one
// safe segment — letters, digits, '.', '_', '-', starting with a letter or digit (so never '.', '..' or hidden).
import { RecipeError } from '../util/errors.js';

export const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
export const MODEL_NAME_RULE = 'letters, digits, ".", "_" and "-", starting with a letter or digit';

/** True when `name` can be used as a model name (one safe path segment). */
export function isModelName(name: string): boolean {
  return MODEL_NAME_PATTERN.test(name) && name.length <= 128;
}

/**
 * The model name derived from a file or folder name (`stories260K.bin` → `stories260k`): lower case, other characters
 * as '-', leading dots and dashes dropped. A name that leaves nothing (`...bin`) is an error naming the source.
 */
export function modelNameFrom(base: string, source: string): string {
  const name = base.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[.-]+/, '').slice(0, 128);
  if (!isModelName(name)) {
    throw new RecipeError('MODEL_NAME_INVALID', `no model name can be made from "${base}"`, {
      file: source,
      fix: `rename it, or build it through a recipe file with a "name" of ${MODEL_NAME_RULE}`,
    });
  }
  return name;
}

/** Refuses a name that is not one safe path segment (a last guard where names become folders). */
export function assertModelName(name: string, where: string): void {
  if (!isModelName(name)) {
    throw new RecipeError('MODEL_NAME_INVALID', `model name "${name}" is not allowed: use ${MODEL_NAME_RULE}`, { where });
  }
}
