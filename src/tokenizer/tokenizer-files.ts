// Reads a tokenizer folder (tokenizer.json, tokenizer_config.json, special_tokens_map.json, chat_template.jinja)
// into one typed object; every later step works from this, never from raw JSON.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { CheckpointError } from '../util/errors.js';

/** A special token as tokenizer_config.json spells it: a string or an AddedToken object. */
const tokenSpec = z.union([z.string(), z.object({ content: z.string() }).loose()]).nullish();

const namedTemplate = z.object({ name: z.string(), template: z.string() });

const tokenizerConfigSchema = z
  .object({
    tokenizer_class: z.string().nullish(),
    bos_token: tokenSpec,
    eos_token: tokenSpec,
    unk_token: tokenSpec,
    pad_token: tokenSpec,
    additional_special_tokens: z.array(z.union([z.string(), z.object({ content: z.string() }).loose()])).nullish(),
    add_bos_token: z.boolean().nullish(),
    add_eos_token: z.boolean().nullish(),
    clean_up_tokenization_spaces: z.boolean().nullish(),
    chat_template: z.union([z.string(), z.array(namedTemplate)]).nullish(),
  })
  .loose();

/** The parts of tokenizer.json we look at before handing it to @huggingface/tokenizers. */
const tokenizerJsonSchema = z
  .object({
    model: z.object({ type: z.string().optional() }).loose(),
    added_tokens: z.array(z.object({ id: z.number().int(), content: z.string() }).loose()).default([]),
    post_processor: z.unknown().optional(),
  })
  .loose();

export type TokenizerJson = z.infer<typeof tokenizerJsonSchema>;

export interface TokenizerFiles {
  dir: string;
  /** tokenizer.json as parsed (handed to @huggingface/tokenizers, possibly with a rebuilt post-processor). */
  tokenizerJson: TokenizerJson;
  tokenizerClass?: string;
  bosToken?: string;
  eosToken?: string;
  unkToken?: string;
  padToken?: string;
  additionalSpecialTokens: string[];
  /** add_bos_token / add_eos_token as the config states them (undefined when the config is silent). */
  addBosToken?: boolean;
  addEosToken?: boolean;
  cleanUpTokenizationSpaces?: boolean;
  /** Chat templates by name ('default' for a single template). */
  chatTemplates: Map<string, string>;
}

/** Reads the tokenizer files of `dir`; tokenizer.json is required, the rest optional. */
export async function readTokenizerFiles(dir: string): Promise<TokenizerFiles> {
  const tokenizerPath = join(dir, 'tokenizer.json');
  const rawTokenizer = await readJson(tokenizerPath, true);
  const tj = tokenizerJsonSchema.safeParse(rawTokenizer);
  if (!tj.success) {
    throw new CheckpointError('TOKENIZER_INVALID', `not a Hugging Face tokenizer.json: ${z.prettifyError(tj.error)}`, {
      file: tokenizerPath,
      fix: 'use the tokenizer.json saved by transformers/tokenizers for this model',
    });
  }
  const configPath = join(dir, 'tokenizer_config.json');
  const cfgResult = tokenizerConfigSchema.safeParse((await readJson(configPath, false)) ?? {});
  if (!cfgResult.success) {
    throw new CheckpointError('TOKENIZER_CONFIG_INVALID', z.prettifyError(cfgResult.error), {
      file: configPath,
      fix: 'fix or delete tokenizer_config.json (it is optional)',
    });
  }
  const cfg = cfgResult.data;
  // special_tokens_map.json fills in what tokenizer_config.json leaves out (older checkpoints keep them there).
  const mapResult = tokenizerConfigSchema.safeParse((await readJson(join(dir, 'special_tokens_map.json'), false)) ?? {});
  const map = mapResult.success ? mapResult.data : {};

  const chatTemplates = new Map<string, string>();
  const jinja = await readText(join(dir, 'chat_template.jinja'));
  if (jinja !== undefined) chatTemplates.set('default', jinja);
  else if (typeof cfg.chat_template === 'string') chatTemplates.set('default', cfg.chat_template);
  else if (Array.isArray(cfg.chat_template)) for (const t of cfg.chat_template) chatTemplates.set(t.name, t.template);
  else {
    const processorTemplate = (await readJson(join(dir, 'chat_template.json'), false)) as { chat_template?: unknown } | undefined;
    if (typeof processorTemplate?.chat_template === 'string') chatTemplates.set('default', processorTemplate.chat_template);
  }

  const additional = cfg.additional_special_tokens ?? map.additional_special_tokens ?? [];
  return {
    dir,
    tokenizerJson: tj.data,
    tokenizerClass: cfg.tokenizer_class ?? undefined,
    bosToken: tokenContent(cfg.bos_token) ?? tokenContent(map.bos_token),
    eosToken: tokenContent(cfg.eos_token) ?? tokenContent(map.eos_token),
    unkToken: tokenContent(cfg.unk_token) ?? tokenContent(map.unk_token),
    padToken: tokenContent(cfg.pad_token) ?? tokenContent(map.pad_token),
    additionalSpecialTokens: [...new Set(additional.map((t) => (typeof t === 'string' ? t : t.content)))],
    addBosToken: cfg.add_bos_token ?? undefined,
    addEosToken: cfg.add_eos_token ?? undefined,
    cleanUpTokenizationSpaces: cfg.clean_up_tokenization_spaces ?? undefined,
    chatTemplates,
  };
}

function tokenContent(t: z.infer<typeof tokenSpec>): string | undefined {
  if (t === null || t === undefined) return undefined;
  return typeof t === 'string' ? t : t.content;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

async function readJson(path: string, required: boolean): Promise<unknown> {
  const text = await readText(path);
  if (text === undefined) {
    if (!required) return undefined;
    throw new CheckpointError('TOKENIZER_MISSING', 'no tokenizer.json in this folder', {
      file: path,
      fix: 'copy the checkpoint\'s tokenizer.json (and tokenizer_config.json) into the folder, or pass token ids (--tokens)',
    });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new CheckpointError('TOKENIZER_JSON', `not valid JSON: ${(e as Error).message}`, {
      file: path,
      fix: 're-download the file (it may be truncated or a Git LFS pointer)',
      cause: e,
    });
  }
}
