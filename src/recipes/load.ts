// Loading recipes: by name from recipes/ or by path, JSON or YAML, validated with errors that name the file and the
// field path (`recipes/phi-4-mini.json: targets[1].quant.block_size: expected a power of two ≥ 16, got 48`).
import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, join, relative, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { RecipeError } from '../util/errors.js';
import { modelNameFrom } from './model-name.js';
import { RecipeSchema, type Recipe } from './schema.js';

/** The recipes shipped with the tool. */
export const RECIPES_DIR = resolve(new URL('../../recipes', import.meta.url).pathname);
const EXTENSIONS = ['.json', '.yaml', '.yml'];

export interface LoadedRecipe {
  recipe: Recipe & { name: string };
  /** Absolute path of the recipe file; relative paths in it are relative to its folder. */
  file: string;
}

/** Names of the shipped recipes. */
export async function listRecipes(dir = RECIPES_DIR): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => EXTENSIONS.includes(extname(n))).map((n) => basename(n, extname(n))).sort();
}

/** Finds a recipe by shipped name (`phi-4-mini-instruct`) or by file path; undefined when neither exists. */
export async function findRecipe(nameOrPath: string, dir = RECIPES_DIR): Promise<string | undefined> {
  if (EXTENSIONS.includes(extname(nameOrPath))) {
    const p = resolve(nameOrPath);
    return (await exists(p)) ? p : undefined;
  }
  for (const ext of EXTENSIONS) {
    const p = join(dir, nameOrPath + ext);
    if (await exists(p)) return p;
  }
  return undefined;
}

async function exists(p: string): Promise<boolean> {
  try {
    await readFile(p);
    return true;
  } catch {
    return false;
  }
}

export async function loadRecipeFile(file: string): Promise<LoadedRecipe> {
  const shown = displayPath(file);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new RecipeError('RECIPE_UNREADABLE', `cannot read recipe (${(e as Error).message})`, { file: shown, cause: e });
  }
  let raw: unknown;
  try {
    raw = extname(file) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new RecipeError('RECIPE_SYNTAX', `not valid ${extname(file) === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message}`, {
      file: shown,
      fix: 'fix the syntax error at the position given',
    });
  }
  return { recipe: parseRecipe(raw, shown, basename(file, extname(file))), file: resolve(file) };
}

/**
 * Validates a recipe value; `shown` is the file name used in error messages. Without a `name`, the model is named
 * after `defaultName` (a file or folder name) made into one safe path segment.
 */
export function parseRecipe(raw: unknown, shown: string, defaultName: string): Recipe & { name: string } {
  const r = RecipeSchema.safeParse(raw);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `${shown}: ${formatPath(i.path)}: ${issueMessage(i)}`);
    throw new RecipeError('RECIPE_INVALID', lines.join('\n'), { file: shown });
  }
  return { ...r.data, name: r.data.name ?? modelNameFrom(defaultName, shown) };
}

/** Loads a recipe by shipped name or path; an unknown name lists the known ones. */
export async function loadRecipe(nameOrPath: string, dir = RECIPES_DIR): Promise<LoadedRecipe> {
  const file = await findRecipe(nameOrPath, dir);
  if (!file) {
    const known = await listRecipes(dir);
    throw new RecipeError('RECIPE_UNKNOWN', `unknown recipe "${nameOrPath}"`, {
      fix: `use one of: ${known.join(', ')} — or a path to a .json/.yaml recipe file, a checkpoint folder, or a hub id`,
    });
  }
  return loadRecipeFile(file);
}

/** Resolves a path written in a recipe (relative to the recipe's folder). */
export function recipePath(loaded: LoadedRecipe, p: string): string {
  return isAbsolute(p) ? p : resolve(dirname(loaded.file), p);
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}

function issueMessage(i: z.core.$ZodIssue): string {
  switch (i.code) {
    case 'unrecognized_keys':
      return `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'invalid_union':
      return 'does not match any accepted form: ' + unionForms(i);
    default:
      return i.message;
  }
}

function unionForms(i: z.core.$ZodIssueInvalidUnion): string {
  // Say what the closest alternative wanted (the one with the fewest issues).
  const best = [...i.errors].sort((a, b) => a.length - b.length)[0];
  if (!best || best.length === 0) return i.message;
  return best.map((e) => `${e.path.length ? formatPath(e.path) + ': ' : ''}${issueMessage(e)}`).join('; ');
}

function displayPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith('..') ? rel : file;
}
