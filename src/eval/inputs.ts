// Turns what the user names (a tokens file, or a text/JSONL/parquet dataset tokenized with the model's own
// tokenizer.json) into the token sequences an evaluation scores.
import { EvalError } from '../util/errors.js';
import { readDatasetRows, readTokensFile, joinRows, type DatasetOptions } from './datasets.js';

export type EvalInput = { tokens: string } | ({ text: string; splitRows?: boolean } & DatasetOptions);

export interface LoadInputOptions {
  /** Folder holding tokenizer.json (the model package) — needed for text input only. */
  tokenizerDir: string;
  /** Keep at most this many tokens in total (sequences in order; the last one kept is cut). */
  maxTokens?: number;
}

export interface LoadedInput {
  sequences: Int32Array[];
  /** What was read, for reports: "tokens FILE" or "text FILE (N rows)". */
  description: string;
}

/**
 * Reads the evaluation input. Text is tokenized as transformers does with add_special_tokens (BOS first for
 * Phi-3): by default the dataset's rows joined with blank lines into one text (the wikitext convention), or with
 * `splitRows` each non-empty row as its own sequence.
 */
export async function loadEvalInput(input: EvalInput, opts: LoadInputOptions): Promise<LoadedInput> {
  let sequences: Int32Array[];
  let description: string;
  if ('tokens' in input) {
    sequences = await readTokensFile(input.tokens);
    description = `tokens ${input.tokens}`;
  } else {
    const rows = await readDatasetRows(input.text, input);
    const { loadTokenizer } = await import('../tokenizer/tokenizer.js');
    const tokenizer = await loadTokenizer(opts.tokenizerDir);
    const texts = input.splitRows ? rows.filter((r) => r.trim() !== '') : [joinRows(rows)];
    sequences = texts.map((t) => Int32Array.from(tokenizer.encode(t, { addSpecialTokens: true })));
    description = `text ${input.text} (${rows.length} row${rows.length === 1 ? '' : 's'}${input.splitRows ? ', one sequence each' : ', joined'})`;
  }
  if (opts.maxTokens !== undefined) sequences = limitTokens(sequences, opts.maxTokens);
  return { sequences, description };
}

/** The first `maxTokens` tokens of the sequences, in order. */
export function limitTokens(sequences: readonly Int32Array[], maxTokens: number): Int32Array[] {
  if (!Number.isInteger(maxTokens) || maxTokens < 2) {
    throw new EvalError('MAX_TOKENS', `--max-tokens must be an integer ≥ 2, got ${maxTokens}`);
  }
  const out: Int32Array[] = [];
  let left = maxTokens;
  for (const s of sequences) {
    if (left <= 0) break;
    out.push(s.length <= left ? s : s.subarray(0, left));
    left -= s.length;
  }
  return out;
}
