// `pnpm pipeline eval <model-dir> (--tokens FILE.json | --text FILE)`: teacher-forced perplexity, optionally saving
// a reference file or comparing with one (KL divergence, top-1 agreement, perplexity change).
import { maxIntraOpThreads } from '../../ort/threads.js';
import { UsageError } from '../../util/errors.js';
import { defineCommand, printJson } from '../command.js';
import { checkWholeNumber } from '../number-flags.js';

export const evalCommand = defineCommand({
  command: 'eval <model>',
  describe: 'score text with a built model: perplexity, and KL / top-1 / Δppl against a reference',
  builder: (y) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: 'model folder (genai_config.json + model.onnx)' })
      .option('tokens', { type: 'string', describe: 'token ids: {"tokens": [...]} or [[...], ...]' })
      .option('text', { type: 'string', describe: 'text dataset: plain text, .jsonl or .parquet (tokenized with the folder\'s tokenizer.json)' })
      .option('column', { type: 'string', default: 'text', describe: 'JSONL field / parquet column holding the text' })
      .option('split-rows', { type: 'boolean', default: false, describe: 'score each dataset row as its own sequence (default: join rows with blank lines)' })
      .option('max-tokens', { type: 'number', describe: 'score only the first N tokens of the input' })
      .option('reference', { type: 'string', describe: 'reference to compare with: a file from --save-reference, or the unquantized model folder' })
      .option('save-reference', { type: 'string', describe: 'write this model\'s log-probs to FILE, for later --reference' })
      .option('reference-encoding', {
        choices: ['auto', 'full-u16', 'top-k'] as const,
        default: 'auto' as const,
        describe: 'for --save-reference: whole distributions (uint16 log-probs) or the top-k; auto picks full below 1 GiB',
      })
      .option('top-k', { type: 'number', describe: 'for --save-reference with top-k encoding (default 64)' })
      .option('max-length', { type: 'number', describe: 'window length (default: the reference\'s, else the context length up to 4096)' })
      .option('stride', { type: 'number', describe: 'window stride, < max-length (default: the reference\'s, else half the window)' })
      .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads, at most 4 per core (default: all cores)' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON document' }),
  run: async (args) => {
    if ((args.tokens === undefined) === (args.text === undefined)) {
      throw new UsageError('give exactly one of --tokens FILE.json or --text FILE');
    }
    checkWholeNumber('--max-tokens', args.maxTokens, { min: 2 });
    checkWholeNumber('--max-length', args.maxLength, { min: 2 });
    checkWholeNumber('--stride', args.stride, { min: 1 });
    checkWholeNumber('--top-k', args.topK, { min: 1 });
    checkWholeNumber('--threads', args.threads, { min: 1, max: maxIntraOpThreads() });
    const modelDir = args.model as string;
    if (args.saveReference !== undefined) {
      // Checked before any scoring: a folder, a system place or one of the model's own files is refused.
      const [{ checkOutputFile }, { readdir }, { join }] = await Promise.all([import('../../util/output-path.js'), import('node:fs/promises'), import('node:path')]);
      const modelFiles = (await readdir(modelDir).catch(() => [] as string[])).map((f) => join(modelDir, f));
      await checkOutputFile(args.saveReference, { flag: '--save-reference', inputs: modelFiles });
    }
    const [{ loadEvalInput }, { evaluateModel, referenceFromPath }, { withAbortOnSigint }] = await Promise.all([
      import('../../eval/inputs.js'),
      import('../../eval/evaluate.js'),
      import('../abort.js'),
    ]);
    const input = await loadEvalInput(
      args.tokens !== undefined ? { tokens: args.tokens } : { text: args.text!, column: args.column, splitRows: args.splitRows },
      { tokenizerDir: modelDir, maxTokens: args.maxTokens },
    );
    const progress = !args.json && process.stderr.isTTY ? progressLine() : undefined;
    const report = await withAbortOnSigint(async (signal) =>
      evaluateModel(
        modelDir,
        input.sequences,
        {
          maxLength: args.maxLength,
          stride: args.stride,
          reference: args.reference === undefined ? undefined : await referenceFromPath(args.reference),
          saveReference:
            args.saveReference === undefined ? undefined : { file: args.saveReference, encoding: args.referenceEncoding, topK: args.topK },
          signal,
          onProgress: progress?.update,
        },
        args.threads === undefined ? {} : { intraOpNumThreads: args.threads },
      ).finally(() => progress?.done()),
    );
    if (args.json) {
      printJson({ input: input.description, ...report });
      return;
    }
    const lines = [
      `model        ${report.model}`,
      `input        ${input.description}`,
      `scored       ${report.tokens_scored} tokens in ${report.sequences} sequence${report.sequences === 1 ? '' : 's'} ` +
        `(windows of ${report.max_length}, stride ${report.stride}; ${report.tokens_per_second.toFixed(0)} tokens/s)`,
      `mean NLL     ${report.mean_nll.toFixed(4)} nats`,
      `perplexity   ${report.ppl.toFixed(4)}`,
    ];
    if (report.reference) {
      const r = report;
      lines.push(
        `reference    ${r.reference!.kind} ${r.reference!.path}${r.reference!.encoding ? ` (${r.reference!.encoding}${r.reference!.encoding === 'top-k' ? ` ${r.reference!.top_k}` : ''})` : ''}`,
        `ppl_ref      ${r.ppl_ref!.toFixed(4)}   Δppl ${r.ppl_delta_pct! >= 0 ? '+' : ''}${r.ppl_delta_pct!.toFixed(3)}%`,
        `KL           mean ${r.kl_mean!.toFixed(6)}   median ${r.kl_median!.toFixed(6)}   p99 ${r.kl_p99!.toFixed(6)}   max ${r.kl_max!.toFixed(6)}`,
        `same top     ${r.same_top_pct!.toFixed(2)}%`,
      );
    }
    if (report.saved_reference) {
      const s = report.saved_reference;
      lines.push(`saved        ${s.file} (${s.positions} positions, ${s.encoding}${s.encoding === 'top-k' ? ` ${s.top_k}` : ''})`);
    }
    process.stdout.write(lines.join('\n') + '\n');
  },
});

/** A single self-rewriting progress line on stderr (TTY only). */
function progressLine(): { update: (scored: number, total: number) => void; done: () => void } {
  let last = 0;
  return {
    update: (scored, total) => {
      const now = Date.now();
      if (now - last < 200 && scored < total) return;
      last = now;
      process.stderr.write(`\rscoring ${scored}/${total} tokens (${((100 * scored) / total).toFixed(1)}%)`);
    },
    done: () => process.stderr.write('\r\x1b[K'),
  };
}
