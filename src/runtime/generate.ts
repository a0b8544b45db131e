// Text or token-id prompt in, greedy continuation out: the work behind `pnpm pipeline generate`.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TextStreamer } from '../tokenizer/text-streamer.js';
import { loadTokenizer, type Tokenizer } from '../tokenizer/tokenizer.js';
import { CheckpointError, EvalError } from '../util/errors.js';
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
  /** A remark before generating, e.g. that maxNewTokens is more than the context leaves room for. */
  onNote?: (message: string) => void;
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
    checkRoom(session.layout.contextLength, promptTokens.length, opts.maxNewTokens, dir, opts.onNote);
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

/**
 * A prompt longer than the context cannot run: say so. More new tokens than the context leaves is clamped — greedy
 * decoding stops when the context is full (stop reason context_full) — with a note, so a large --max-new-tokens reads
 * as "until EOS or the context is full" rather than as an error.
 */
function checkRoom(context: number | undefined, promptLength: number, maxNewTokens: number, dir: string, onNote?: (m: string) => void): void {
  if (context === undefined) return;
  if (promptLength > context) {
    throw new EvalError('PROMPT_TOO_LONG', `the prompt has ${promptLength} tokens, more than the model's context length ${context}`, {
      where: dir,
      fix: `shorten the prompt to ${context} tokens or fewer`,
    });
  }
  // The last new token is never fed back, so it needs no position: the context holds the prompt and all but one.
  const room = context - promptLength + 1;
  if (maxNewTokens > room) {
    onNote?.(
      `asked for ${maxNewTokens} new tokens, but the context leaves room for at most ${room} ` +
        `(context length ${context}, prompt ${promptLength} tokens): generation stops there`,
    );
  }
}
