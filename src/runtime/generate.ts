// Text or token-id prompt in, greedy continuation out: the work behind `pnpm pipeline generate`.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TextStreamer } from '../tokenizer/text-streamer.js';
import { loadTokenizer, type Tokenizer } from '../tokenizer/tokenizer.js';
import { CheckpointError } from '../util/errors.js';
import { DecoderSession, type DecoderSessionOptions } from './decoder-session.js';
import { greedyGenerate, type StopReason } from './greedy.js';

export type GeneratePrompt =
  | { kind: 'text'; text: string; /** Wrap the text as one user turn of the chat template. */ chat?: boolean }
  | { kind: 'tokens'; ids: readonly number[] };

export interface GenerateOptions {
  modelDir: string;
  prompt: GeneratePrompt;
  maxNewTokens: number;
  session?: DecoderSessionOptions;
  /** Each new token id, as soon as it is chosen. */
  onToken?: (id: number) => void | Promise<void>;
  /** Each new piece of decoded text (only when the model folder has a tokenizer). */
  onText?: (piece: string) => void | Promise<void>;
}

export interface GenerateResult {
  promptTokens: number[];
  tokens: number[];
  /** Decoded new text (special tokens skipped), when the folder has a tokenizer. */
  text?: string;
  stopReason: StopReason;
  prefillMs: number;
  decodeMs: number;
  /** Decode-phase speed: tokens after the first per second of decode time (null with fewer than two tokens). */
  tokensPerSecond: number | null;
}

/** Whether a model folder carries a tokenizer (text prompts and text output need one). */
export function hasTokenizer(modelDir: string): boolean {
  return existsSync(join(resolve(modelDir), 'tokenizer.json'));
}

export async function generate(opts: GenerateOptions): Promise<GenerateResult> {
  const dir = resolve(opts.modelDir);
  const withTokenizer = hasTokenizer(dir);
  if (opts.prompt.kind === 'text' && !withTokenizer) {
    throw new CheckpointError('TOKENIZER_MISSING', `a text prompt needs the model's tokenizer, and ${dir} has no tokenizer.json`, {
      file: join(dir, 'tokenizer.json'),
      fix: `copy tokenizer.json and tokenizer_config.json from the checkpoint into ${dir}, or pass token ids with --tokens 1,2,3`,
    });
  }
  const tokenizer: Tokenizer | undefined = withTokenizer ? await loadTokenizer(dir) : undefined;
  const promptTokens = promptIds(opts.prompt, tokenizer);

  const session = await DecoderSession.open(dir, opts.session);
  try {
    const eos = session.layout.eosTokenIds.length
      ? session.layout.eosTokenIds
      : tokenizer?.eosTokenId !== undefined
        ? [tokenizer.eosTokenId]
        : [];
    const streamer = tokenizer ? new TextStreamer(tokenizer) : undefined;
    const r = await greedyGenerate(session, promptTokens, {
      maxNewTokens: opts.maxNewTokens,
      eosTokenIds: eos,
      onToken: async (id) => {
        await opts.onToken?.(id);
        if (streamer && opts.onText) {
          const piece = streamer.push(id);
          if (piece) await opts.onText(piece);
        }
      },
    });
    if (streamer && opts.onText) {
      const rest = streamer.flush();
      if (rest) await opts.onText(rest);
    }
    const steps = r.tokens.length - 1;
    return {
      promptTokens,
      tokens: r.tokens,
      text: tokenizer ? tokenizer.decode(r.tokens, { skipSpecialTokens: true }) : undefined,
      stopReason: r.stopReason,
      prefillMs: r.prefillMs,
      decodeMs: r.decodeMs,
      tokensPerSecond: steps > 0 && r.decodeMs > 0 ? (steps * 1000) / r.decodeMs : null,
    };
  } finally {
    await session.release();
  }
}

function promptIds(prompt: GeneratePrompt, tokenizer: Tokenizer | undefined): number[] {
  if (prompt.kind === 'tokens') return [...prompt.ids];
  const t = tokenizer!;
  if (prompt.chat) return t.encodeChat([{ role: 'user', content: prompt.text }], { addGenerationPrompt: true });
  return t.encode(prompt.text, { addSpecialTokens: true });
}
