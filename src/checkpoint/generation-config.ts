// generation_config.json of a Hugging Face checkpoint (optional): token ids and sampling defaults, typed and validated.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { CheckpointError } from '../util/errors.js';

export const GENERATION_CONFIG_FILE = 'generation_config.json';

const tokenId = z.number().int().nonnegative();

/** The fields genai_config.json's `search` section and the runtime draw on; other keys are kept as they are. */
const GenerationConfigSchema = z.looseObject({
  bos_token_id: tokenId.nullish(),
  eos_token_id: z.union([tokenId, z.array(tokenId)]).nullish(),
  pad_token_id: tokenId.nullish(),
  do_sample: z.boolean().optional(),
  temperature: z.number().nonnegative().nullish(),
  top_k: z.number().int().nonnegative().nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  num_beams: z.number().int().positive().optional(),
  max_length: z.number().int().positive().nullish(),
  max_new_tokens: z.number().int().positive().nullish(),
  repetition_penalty: z.number().positive().nullish(),
  transformers_version: z.string().optional(),
});

export type GenerationConfig = z.output<typeof GenerationConfigSchema>;

export function parseGenerationConfig(json: unknown, file: string): GenerationConfig {
  const r = GenerationConfigSchema.safeParse(json);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`);
    throw new CheckpointError('GENERATION_CONFIG_INVALID', `invalid generation_config.json:\n  ${lines.join('\n  ')}`, {
      file,
      where: r.error.issues[0].path.map(String).join('.') || undefined,
      fix: 'fix the listed fields, or delete generation_config.json (it is optional)',
    });
  }
  return r.data;
}

/** Reads `<dir>/generation_config.json`; undefined when the folder has none. */
export async function readGenerationConfig(dir: string): Promise<GenerationConfig | undefined> {
  const file = join(dir, GENERATION_CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CheckpointError('GENERATION_CONFIG_UNREADABLE', `cannot read generation_config.json (${(e as Error).message})`, {
      file,
      fix: 'check the file permissions, or delete generation_config.json (it is optional)',
      cause: e,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError('GENERATION_CONFIG_JSON', `not valid JSON (${(e as Error).message})`, {
      file,
      fix: 'fix the syntax error, or delete generation_config.json (it is optional)',
    });
  }
  return parseGenerationConfig(json, file);
}

/** End-of-sequence ids as a list (generation_config first, then config.json's), empty when neither names one. */
export function eosTokenIds(...sources: (number | number[] | null | undefined)[]): number[] {
  for (const s of sources) {
    if (s === null || s === undefined) continue;
    return Array.isArray(s) ? [...s] : [s];
  }
  return [];
}
