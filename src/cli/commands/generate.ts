// `pnpm pipeline generate <model-dir> (--prompt TEXT | --tokens 1,2,3)`: greedy decoding with the KV cache.
import { maxIntraOpThreads } from '../../ort/threads.js';
import { UsageError } from '../../util/errors.js';
import { defineCommand, printJson } from '../command.js';
import { checkWholeNumber } from '../number-flags.js';

export const generateCommand = defineCommand({
  command: 'generate <model>',
  describe: 'greedy-decode from a built model folder (text streamed as generated)',
  builder: (y) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: 'model folder (genai_config.json + model.onnx)' })
      .option('prompt', { type: 'string', describe: 'prompt text, tokenized with the folder\'s tokenizer.json' })
      .option('tokens', { type: 'string', describe: 'prompt as comma-separated token ids, e.g. 1,450,6575' })
      .option('max-new-tokens', {
        type: 'number',
        default: 128,
        // `--max-new-tokens` with no number would otherwise silently mean the default
        requiresArg: true,
        describe: 'most tokens to generate (more than the context leaves is clamped, with a note)',
      })
      .option('chat', { type: 'boolean', default: false, describe: 'wrap --prompt as a user turn of the chat template' })
      .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads, at most 4 per core (default: all cores)' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON document instead of streaming text' }),
  run: async (args) => {
    const prompt = parsePrompt(args.prompt, args.tokens, args.chat);
    const maxNewTokens = args.maxNewTokens;
    checkWholeNumber('--max-new-tokens', maxNewTokens, { min: 0 });
    checkWholeNumber('--threads', args.threads, { min: 1, max: maxIntraOpThreads() });
    const { generate, hasTokenizer } = await import('../../runtime/generate.js');
    // Streamed output: decoded text when the folder has a tokenizer, else the ids as they come.
    const streamText = !args.json && hasTokenizer(args.model as string);
    const streamIds = !args.json && !streamText;
    let count = 0;
    const r = await generate({
      modelDir: args.model as string,
      prompt,
      maxNewTokens,
      session: args.threads === undefined ? undefined : { intraOpNumThreads: args.threads },
      onText: streamText ? (piece) => write(piece) : undefined,
      onToken: streamIds ? (id) => write(`${count++ ? ' ' : ''}${id}`) : undefined,
      onNote: (note) => process.stderr.write(`note: ${note}\n`),
    });
    const timings = {
      prefill_ms: round2(r.prefillMs),
      decode_ms: round2(r.decodeMs),
      tokens_per_s: r.tokensPerSecond === null ? null : round2(r.tokensPerSecond),
    };
    if (args.json) {
      printJson({
        prompt_tokens: r.promptTokens,
        tokens: r.tokens,
        ...(r.text !== undefined ? { text: r.text } : {}),
        stop_reason: r.stopReason,
        timings,
      });
      return;
    }
    await write('\n');
    process.stderr.write(
      `${r.tokens.length} tokens (${r.stopReason.replace(/_/g, ' ')}), prompt ${r.promptTokens.length} tokens; ` +
        `prefill ${timings.prefill_ms} ms, decode ${timings.decode_ms} ms` +
        (timings.tokens_per_s === null ? '' : `, ${timings.tokens_per_s} tokens/s`) +
        '\n',
    );
  },
});

function parsePrompt(
  prompt: string | undefined,
  tokens: string | undefined,
  chat: boolean,
): { kind: 'text'; text: string; chat: boolean } | { kind: 'tokens'; ids: number[] } {
  if ((prompt === undefined) === (tokens === undefined)) {
    throw new UsageError('give exactly one of --prompt TEXT or --tokens 1,2,3');
  }
  if (prompt !== undefined) return { kind: 'text', text: prompt, chat };
  if (chat) throw new UsageError('--chat applies the chat template to --prompt text; it cannot be used with --tokens');
  const parts = tokens!.split(',').map((s) => s.trim());
  const ids = parts.map(Number);
  const bad = parts.findIndex((s, i) => s === '' || !Number.isInteger(ids[i]) || ids[i] < 0);
  if (bad >= 0 || ids.length === 0) {
    throw new UsageError(`--tokens must be comma-separated token ids (whole numbers ≥ 0); item ${bad + 1} is '${parts[bad] ?? ''}'`);
  }
  return { kind: 'tokens', ids };
}

/** Writes to stdout, waiting when the pipe is full (long generations into a slow reader). */
function write(s: string): Promise<void> | undefined {
  if (process.stdout.write(s)) return undefined;
  return new Promise((resolve) => process.stdout.once('drain', () => resolve()));
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
