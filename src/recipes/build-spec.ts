// What `build <spec>` means: a shipped recipe name, a recipe file, a checkpoint folder, a llama2.c .bin file or a
// hub id — each turned into a recipe, with the command line's --target and --precision applied on top.
import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { findRecipe, listRecipes, loadRecipeFile, parseRecipe } from './load.js';
import { defaultQuant, type Recipe, type RecipeTarget, type TargetId } from './schema.js';
import { RecipeError } from '../util/errors.js';
import { isActivationPrecision, type Builder, type Precision } from '../vocabulary.js';

export interface BuildSpec {
  recipe: Recipe & { name: string };
  /** The recipe file, when the spec named one. */
  file?: string;
  /** Resolves a path written in the recipe (relative to the recipe file, or the working folder). */
  resolvePath: (p: string) => string;
}

export interface SpecOverrides {
  targets?: TargetId[];
  builder?: Builder;
  precision?: Precision;
}

const HUB_ID = /^[\w.-]+\/[\w.-]+$/;

export async function resolveBuildSpec(spec: string, overrides: SpecOverrides = {}): Promise<BuildSpec> {
  const base = await resolveRecipe(spec);
  return { ...base, recipe: applyOverrides(base.recipe, overrides) };
}

async function resolveRecipe(spec: string): Promise<BuildSpec> {
  const file = await findRecipe(spec);
  if (file) {
    const { recipe } = await loadRecipeFile(file);
    return { recipe, file, resolvePath: (p) => resolve(dirname(file), p) };
  }
  const here = (p: string) => resolve(p);
  const st = await stat(spec).catch(() => undefined);
  // Named after the resolved folder or file (`ck/sub/..` is `ck`); parseRecipe makes it one safe path segment.
  const name = basename(resolve(spec)).replace(/\.bin$/, '');
  if (st?.isDirectory()) {
    return { recipe: parseRecipe({ source: { path: resolve(spec) }, targets: [{ target: 'cpu' }] }, spec, name), resolvePath: here };
  }
  if (st?.isFile() && spec.endsWith('.bin')) {
    return { recipe: parseRecipe({ source: { llama2c: resolve(spec) }, targets: [{ target: 'cpu' }] }, spec, name), resolvePath: here };
  }
  if (!st && HUB_ID.test(spec) && !spec.startsWith('.')) {
    return {
      recipe: parseRecipe({ source: { hub: spec }, targets: [{ target: 'cpu' }] }, spec, spec.split('/')[1]),
      resolvePath: here,
    };
  }
  const known = await listRecipes();
  throw new RecipeError('RECIPE_UNKNOWN', `"${spec}" is not a recipe, a checkpoint folder, a llama2.c .bin file or a hub id`, {
    fix: `use one of the shipped recipes (${known.join(', ')}), a recipe file, a folder with config.json, or an id like microsoft/Phi-4-mini-instruct`,
  });
}

function applyOverrides(recipe: Recipe & { name: string }, o: SpecOverrides): Recipe & { name: string } {
  let targets: RecipeTarget[] = recipe.targets;
  if (o.targets?.length) {
    targets = [...new Set(o.targets)].map((id) => recipe.targets.find((t) => t.target === id) ?? { target: id });
  }
  if (isActivationPrecision(o.precision)) {
    const precision = o.precision;
    targets = targets.map((t) => ({ ...t, precision, quant: { ...(t.quant ?? defaultQuant()), scheme: 'none' as const } }));
  } else if (o.precision) {
    const scheme = o.precision;
    targets = targets.map((t) => ({ ...t, quant: { ...(t.quant ?? defaultQuant()), scheme } }));
  }
  return { ...recipe, targets, builder: o.builder ?? recipe.builder };
}
