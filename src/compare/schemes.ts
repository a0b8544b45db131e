// Scheme names of `compare --schemes` (int4-rtn, int4-gptq-b64, int8-asym, ternary, fp32, ...) parsed into the
// recipe quantization each variant is built with.
//
//   name   = quantized | baseline
//   quantized = ("int4" | "int8" | "ternary") ["-" algo] ["-b" block] ["-asym"]     algo: rtn (default) hqq gptq awq
//   baseline  = "none" (the target's own activations) | "fp32" | "fp16"              (not quantized)
import { defaultQuant, type QuantOptions, type RecipeTarget } from '../recipes/schema.js';
import { UsageError } from '../util/errors.js';
import {
  ACTIVATION_PRECISIONS,
  BLOCK_SIZE_RULE,
  isActivationPrecision,
  isBlockSize,
  isOneOf,
  QUANT_ALGOS,
  QUANT_DEFAULTS,
  QUANT_SCHEMES,
  type ActivationPrecision,
  type QuantAlgo,
  type QuantScheme,
} from '../vocabulary.js';

export interface Scheme {
  /** As written on the command line (lower-cased): the row label and the package folder name. */
  name: string;
  /** Every part spelled out (`int8` → `int8-rtn-b32`): two names with one canonical form build the same thing. */
  canonical: string;
  /** The quantization; null for the unquantized baseline. */
  quant: { scheme: QuantScheme; algo: QuantAlgo; block_size: number; asym: boolean } | null;
  /** Activations a baseline name asks for (fp32, fp16); otherwise the target's default. */
  precision?: ActivationPrecision;
}

// Every scheme and algorithm name comes from the vocabulary, so a compare name means what a recipe's quant means.
const BASELINES = ['none', ...ACTIVATION_PRECISIONS] as const;

const GRAMMAR =
  `${QUANT_SCHEMES.join('|')}, optionally ${QUANT_ALGOS.map((a) => `-${a}`).join('|')}, -b<16..256>, -asym (e.g. int4-gptq-b64); ` +
  `or ${ACTIVATION_PRECISIONS.join(', ')}, none`;

export function parseScheme(raw: string): Scheme {
  const name = raw.trim().toLowerCase();
  const bad = (why: string) =>
    new UsageError(`scheme "${raw}": ${why}`, { code: 'COMPARE_SCHEME', where: '--schemes', fix: `write schemes as ${GRAMMAR}` });
  if (!/^[a-z0-9-]+$/.test(name)) throw bad('only letters, digits and "-" are allowed');
  const [head, ...rest] = name.split('-');
  if (isOneOf(BASELINES, head)) {
    if (rest.length) throw bad(`the unquantized baseline takes no suffixes (${rest.join('-')})`);
    const precision = isActivationPrecision(head) ? head : undefined;
    return { name, canonical: head, quant: null, precision };
  }
  if (!isOneOf(QUANT_SCHEMES, head)) throw bad(`unknown scheme ${head}`);
  const scheme = head;
  let algo: QuantAlgo | undefined;
  let block: number | undefined;
  let asym = false;
  for (const [i, part] of rest.entries()) {
    if (isOneOf(QUANT_ALGOS, part)) {
      // The algorithm comes first, right after the scheme, so each name has one spelling order.
      if (i !== 0) throw bad(`the algorithm (${part}) must follow the scheme directly`);
      algo = part;
    } else if (/^b\d+$/.test(part)) {
      if (block !== undefined) throw bad('the block size is given twice');
      block = Number(part.slice(1));
      if (!isBlockSize(block)) throw bad(`block size ${block} is not ${BLOCK_SIZE_RULE}`);
    } else if (part === 'asym') {
      if (asym) throw bad('-asym is given twice');
      // Ternary codes have a fixed zero point (2); the quantizer would ignore the flag, so refuse it here.
      if (scheme === 'ternary') throw bad('ternary has a fixed zero point, so -asym does not apply');
      asym = true;
    } else {
      throw bad(`unknown part "${part}"`);
    }
  }
  const quant = { scheme, algo: algo ?? QUANT_DEFAULTS.algo, block_size: block ?? QUANT_DEFAULTS.blockSize, asym };
  return { name, canonical: [scheme, quant.algo, `b${quant.block_size}`, ...(asym ? ['asym'] : [])].join('-'), quant };
}

/** Parses `a,b,c` lists (several --schemes flags are joined); refuses an empty list and duplicates. */
export function parseSchemeList(lists: string | readonly string[]): Scheme[] {
  const names = (typeof lists === 'string' ? [lists] : lists).flatMap((l) => l.split(',')).map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) {
    throw new UsageError('no schemes to compare', { code: 'COMPARE_NO_SCHEMES', fix: 'pass --schemes int4-rtn,int8,fp32 (for example)' });
  }
  const out: Scheme[] = [];
  for (const n of names) {
    const s = parseScheme(n);
    const twin = out.find((o) => o.canonical === s.canonical);
    if (twin) {
      throw new UsageError(`schemes "${twin.name}" and "${s.name}" are the same build`, {
        code: 'COMPARE_DUPLICATE_SCHEME',
        where: '--schemes',
        fix: 'list each scheme once',
      });
    }
    out.push(s);
  }
  return out;
}

/**
 * The recipe target one variant is built with: the recipe's entry for that target (its exclude patterns, overrides,
 * embeddings mode, accuracy level and calibration stay) with the scheme's quantization on top. Gates and the size
 * budget are left out so that every variant is packaged; compare reports them instead of enforcing them.
 */
export function variantTarget(base: RecipeTarget, s: Scheme): RecipeTarget {
  const q: QuantOptions = base.quant ?? defaultQuant();
  const t: RecipeTarget = { target: base.target };
  const precision = s.precision ?? base.precision;
  if (precision) t.precision = precision;
  t.quant = s.quant ? { ...q, ...s.quant } : { ...q, scheme: 'none' };
  return t;
}
