// The vocabulary (src/vocabulary.ts) is the one list of option names and rules: the CLI's choices, the recipe schema,
// compare's scheme names and the quantizer accept exactly its names, its block sizes and its defaults.
import { describe, expect, it } from 'vitest';
import yargs from 'yargs';
import { parseCli } from '../../src/cli/main.js';
import { commands } from '../../src/cli/commands/index.js';
import { parseScheme } from '../../src/compare/schemes.js';
import { codecs } from '../../src/quant/formats/index.js';
import { validateMethod } from '../../src/quant/method.js';
import { defaultQuant, QuantSchema, RecipeSchema } from '../../src/recipes/schema.js';
import { TARGET_IDS } from '../../src/target/index.js';
import { UsageError } from '../../src/util/errors.js';
import {
  ACTIVATION_PRECISIONS,
  BUILDERS,
  EMBEDDINGS_MODES,
  HIGH_SCHEMES,
  isBlockSize,
  PRECISIONS,
  QUANT_ALGOS,
  QUANT_DEFAULTS,
  QUANT_SCHEMES,
  RECIPE_SCHEMES,
} from '../../src/vocabulary.js';

/** Parses a command line with the real command definitions, without running the command. */
function parseOnly(argv: string[]): Record<string, unknown> {
  const c = commands.find((x) => x.command.split(' ')[0] === argv[0])!;
  let parsed: Record<string, unknown> | undefined;
  c.register(yargs(argv).option('verbose', { type: 'boolean', default: false }), (a) => void (parsed = a))
    .strict()
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new UsageError(msg);
    })
    .parseSync();
  return parsed!;
}

/** The choices yargs lists when `flag` gets a value outside them (the parse fails before any handler runs). */
async function choicesOf(argv: string[], flag: string): Promise<string[]> {
  let err: unknown;
  try {
    await parseCli([...argv, `--${flag}`, 'bogus']).parseAsync();
  } catch (e) {
    err = e;
  }
  expect(err, argv.join(' ')).toBeInstanceOf(UsageError);
  expect((err as UsageError).exitCode).toBe(2);
  const line = (err as Error).message.split('\n').find((l) => l.includes(`Argument: ${flag},`))!;
  expect(line, (err as Error).message).toContain('Given: "bogus"');
  return [...line.slice(line.indexOf('Choices:')).matchAll(/"([^"]*)"/g)].map((m) => m[1]);
}

const recipeQuant = (q: Record<string, unknown>) => QuantSchema.safeParse(q);
const compareScheme = (name: string) => {
  try {
    return parseScheme(name);
  } catch (e) {
    if (e instanceof UsageError) return undefined;
    throw e;
  }
};

describe('vocabulary', () => {
  it('CLI choices are the vocabulary lists: a value outside them fails listing exactly them', async () => {
    expect(await choicesOf(['build', 'x'], 'precision')).toEqual([...PRECISIONS]);
    expect(await choicesOf(['build', 'x'], 'builder')).toEqual([...BUILDERS]);
    expect(await choicesOf(['build', 'x'], 'target')).toEqual([...TARGET_IDS]);
    expect(await choicesOf(['compare', 'x', '--schemes', 'int4'], 'target')).toEqual([...TARGET_IDS]);
    expect(await choicesOf(['convert', 'x', '--out', 'y'], 'precision')).toEqual([...ACTIVATION_PRECISIONS]);
    expect(await choicesOf(['convert', 'x', '--out', 'y'], 'target')).toEqual([...TARGET_IDS]);
    const q = ['quantize', 'm.onnx', '--out', 'o.onnx'];
    expect(await choicesOf([...q, '--algo', 'rtn'], 'scheme')).toEqual([...QUANT_SCHEMES]);
    expect(await choicesOf([...q, '--scheme', 'int4'], 'algo')).toEqual([...QUANT_ALGOS]);
    expect(await choicesOf([...q, '--scheme', 'int4'], 'embeddings')).toEqual([...EMBEDDINGS_MODES]);
    expect(await choicesOf([...q, '--scheme', 'int4'], 'high-scheme')).toEqual([...HIGH_SCHEMES]);
  });

  it('recipes, compare --schemes and quantize --scheme/--algo accept exactly the same scheme and algorithm names', () => {
    const schemes = [...QUANT_SCHEMES, 'int2', 'int3', 'fp8', 'nf4', 'q4'];
    const algos = [...QUANT_ALGOS, 'smoothquant', 'gptq2', 'k_quant'];
    for (const scheme of schemes) {
      for (const algo of algos) {
        const inRecipe = recipeQuant({ scheme, algo });
        const inCompare = compareScheme(`${scheme}-${algo}`);
        let inQuantize = true;
        try {
          parseOnly(['quantize', 'm.onnx', '--out', 'o.onnx', '--scheme', scheme, '--algo', algo]);
        } catch {
          inQuantize = false;
        }
        const known = (QUANT_SCHEMES as readonly string[]).includes(scheme) && (QUANT_ALGOS as readonly string[]).includes(algo);
        expect([inRecipe.success, inCompare !== undefined, inQuantize], `${scheme}-${algo}`).toEqual([known, known, known]);
        // Accepted, the two spell the same quantization.
        if (inRecipe.success) expect(inCompare!.quant).toEqual({ scheme, algo, block_size: inRecipe.data.block_size, asym: inRecipe.data.asym });
      }
    }
    // `none` is the recipe's "not quantized"; compare spells it the same, the quantizer has no such format.
    expect(RECIPE_SCHEMES).toEqual(['none', ...QUANT_SCHEMES]);
    expect(compareScheme('none')?.quant).toBeNull();
    // Every scheme of the vocabulary has a codec, and the quantizer has no other.
    expect(Object.keys(codecs).sort()).toEqual([...QUANT_SCHEMES].sort());
  });

  it('one block-size rule: recipes, compare names and the quantizer accept the same sizes', () => {
    for (let n = 0; n <= 520; n++) {
      const want = isBlockSize(n);
      expect(recipeQuant({ scheme: 'int4', block_size: n }).success, `recipe block_size ${n}`).toBe(want);
      expect(compareScheme(`int4-b${n}`) !== undefined, `compare int4-b${n}`).toBe(want);
      let quantizerOk = true;
      try {
        validateMethod({ blockSize: n }, 'test');
      } catch {
        quantizerOk = false;
      }
      expect(quantizerOk, `quantizer block size ${n}`).toBe(want);
    }
    expect(recipeQuant({ scheme: 'int4', block_size: 32.5 }).success).toBe(false);
  });

  it('one default quantization: recipe targets without quant, compare names without suffixes and the quantize command', () => {
    expect(defaultQuant()).toEqual(QuantSchema.parse({ scheme: QUANT_DEFAULTS.scheme }));
    expect(defaultQuant()).toMatchObject({
      scheme: QUANT_DEFAULTS.scheme,
      algo: QUANT_DEFAULTS.algo,
      block_size: QUANT_DEFAULTS.blockSize,
      asym: QUANT_DEFAULTS.asym,
      embeddings: QUANT_DEFAULTS.embeddings,
      high_scheme: QUANT_DEFAULTS.highScheme,
      ternary_granularity: QUANT_DEFAULTS.ternaryGranularity,
    });
    // A recipe target's quant needs only its scheme; the rest is the same default.
    const recipe = RecipeSchema.parse({ source: { path: 'x' }, targets: [{ target: 'cpu', quant: { scheme: 'int4' } }] });
    expect(recipe.targets[0].quant).toEqual(defaultQuant());
    expect(parseScheme(QUANT_DEFAULTS.scheme).quant).toEqual({
      scheme: QUANT_DEFAULTS.scheme,
      algo: QUANT_DEFAULTS.algo,
      block_size: QUANT_DEFAULTS.blockSize,
      asym: QUANT_DEFAULTS.asym,
    });
    expect(parseOnly(['quantize', 'm.onnx', '--out', 'o.onnx', '--scheme', 'int4'])).toMatchObject({
      algo: QUANT_DEFAULTS.algo,
      blockSize: QUANT_DEFAULTS.blockSize,
      asym: QUANT_DEFAULTS.asym,
      accuracyLevel: QUANT_DEFAULTS.accuracyLevel,
      embeddings: QUANT_DEFAULTS.embeddings,
      highScheme: QUANT_DEFAULTS.highScheme,
    });
  });

  it('build --precision and --builder reach the build request as parsed, for every name of the vocabulary', () => {
    for (const p of PRECISIONS) expect(parseOnly(['build', 'x', '--precision', p]).precision).toBe(p);
    for (const b of BUILDERS) expect(parseOnly(['build', 'x', '--builder', b]).builder).toBe(b);
    expect(parseOnly(['build', 'x', '--target', 'cpu', '--target', 'mobile']).target).toEqual(['cpu', 'mobile']);
  });
});
