// One evaluation: score token sequences with a model, optionally save its log-probs as a reference file, and
// optionally compare with a reference (a saved file, or the reference model run alongside) — the report
// `pnpm pipeline eval --json` prints and the build's validate stage gates on.
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { DecoderSession, type DecoderSessionOptions } from '../runtime/decoder-session.js';
import { EvalError } from '../util/errors.js';
import { ComparisonAccumulator, klFromLogits, perplexityOf, type ComparisonMetrics } from './metrics.js';
import { RowKernel } from './row-kernel.js';
import { chooseEncoding, ReferenceReader, ReferenceWriter, type ReferenceEncoding } from './reference-file.js';
import { countForwardedTokens, countScoredPositions, defaultChunkTokens, scoreBatches, toInt32Sequences, type ScoreBatch, type TokenSequences } from './scoring.js';
import { checkWindowOptions, type WindowOptions } from './windows.js';

/** Longest default window: the model's context length, but no more than this. */
export const DEFAULT_MAX_LENGTH_CAP = 4096;

export type ReferenceSpec = { file: string } | { modelDir: string } | { session: DecoderSession; name?: string };

export interface SaveReferenceSpec {
  file: string;
  encoding?: ReferenceEncoding | 'auto';
  topK?: number;
  /** Recorded in the file header (default: the evaluated model's path). */
  model?: string;
}

export interface EvaluateOptions {
  /** Window length (default: the reference file's, else the model's context length capped at 4096). */
  maxLength?: number;
  /** Window stride (default: the reference file's, else maxLength / 2). */
  stride?: number;
  chunkTokens?: number;
  reference?: ReferenceSpec;
  saveReference?: SaveReferenceSpec;
  signal?: AbortSignal;
  onProgress?: (scored: number, total: number) => void;
}

export interface EvalReport extends Partial<ComparisonMetrics> {
  model: string;
  sequences: number;
  tokens_scored: number;
  tokens_forwarded: number;
  /** Mean negative log-likelihood (nats) over every scored position. */
  mean_nll: number;
  ppl: number;
  max_length: number;
  stride: number;
  seconds: number;
  /** Scored tokens per second of the scoring loop (model runs included). */
  tokens_per_second: number;
  reference?: { kind: 'file' | 'model'; path: string; encoding?: ReferenceEncoding; top_k?: number };
  saved_reference?: { file: string; encoding: ReferenceEncoding; top_k: number; positions: number };
}

/** Resolves `--reference DIR|FILE`: a folder is a reference model, anything else a saved reference file. */
export async function referenceFromPath(path: string): Promise<ReferenceSpec> {
  try {
    if ((await stat(path)).isDirectory()) return { modelDir: path };
  } catch {
    // Let the reader report the missing file with its own message.
  }
  return { file: path };
}

/** Default windows: the reference file's, else context length (capped) and half of it as stride. */
export function resolveWindows(
  given: Partial<WindowOptions>,
  contextLength: number | undefined,
  fromReference?: WindowOptions,
): WindowOptions {
  const maxLength = given.maxLength ?? fromReference?.maxLength ?? Math.min(contextLength ?? DEFAULT_MAX_LENGTH_CAP, DEFAULT_MAX_LENGTH_CAP);
  const stride = given.stride ?? (given.maxLength === undefined ? fromReference?.stride : undefined) ?? Math.max(1, Math.floor(maxLength / 2));
  const w = { maxLength, stride };
  checkWindowOptions(w);
  return w;
}

/** Opens the model folder, evaluates, releases every session it opened. */
export async function evaluateModel(
  modelDir: string,
  sequences: TokenSequences,
  opts: EvaluateOptions = {},
  sessionOptions: DecoderSessionOptions = {},
): Promise<EvalReport> {
  const session = await DecoderSession.open(modelDir, sessionOptions);
  let refSession: DecoderSession | undefined;
  try {
    let reference = opts.reference;
    if (reference && 'modelDir' in reference) {
      refSession = await DecoderSession.open(reference.modelDir, sessionOptions);
      reference = { session: refSession, name: resolve(reference.modelDir) };
    }
    return await evaluate(session, sequences, { ...opts, reference });
  } finally {
    await session.release();
    await refSession?.release();
  }
}

/** Evaluates with an open session (the caller releases it). */
export async function evaluate(session: DecoderSession, sequences: TokenSequences, opts: EvaluateOptions = {}): Promise<EvalReport> {
  const seqs = toInt32Sequences(sequences);
  const positions = countScoredPositions(seqs);
  if (positions === 0) {
    throw new EvalError('NOTHING_TO_SCORE', 'no sequence has two or more tokens, so there is nothing to score', {
      fix: 'pass longer sequences (the first token of each sequence is context only)',
    });
  }
  const modelName = session.layout.modelPath;
  let reader: ReferenceReader | undefined;
  let writer: ReferenceWriter | undefined;
  let refBatches: AsyncIterator<ScoreBatch, void> | undefined;
  let kernel: RowKernel | undefined;
  try {
    let refSession: DecoderSession | undefined;
    let refName: string | undefined;
    if (opts.reference && 'file' in opts.reference) reader = await ReferenceReader.open(opts.reference.file);
    else if (opts.reference && 'session' in opts.reference) {
      refSession = opts.reference.session;
      refName = opts.reference.name ?? refSession.layout.modelPath;
    }
    const windows = resolveWindows(
      { maxLength: opts.maxLength, stride: opts.stride },
      session.layout.contextLength,
      reader ? { maxLength: reader.header.max_length, stride: reader.header.stride } : undefined,
    );
    const vocab = session.layout.vocabSize;
    if (reader) {
      reader.check({ sequences: seqs, nVocab: vocab ?? reader.header.n_vocab, ...windows });
    }
    if (refSession && vocab !== undefined && refSession.layout.vocabSize !== undefined && refSession.layout.vocabSize !== vocab) {
      throw new EvalError('REFERENCE_VOCAB_MISMATCH', `the reference model has ${refSession.layout.vocabSize} vocabulary entries, the model ${vocab}`, {
        where: refName,
        fix: 'compare a quantized package with its own unquantized model',
      });
    }
    const chunkTokens = opts.chunkTokens ?? defaultChunkTokens(vocab, windows.maxLength);
    kernel = await RowKernel.create();
    const scoreOpts = { ...windows, chunkTokens, signal: opts.signal, kernel };

    const compare = reader || refSession ? new ComparisonAccumulator(positions) : undefined;
    refBatches = refSession ? scoreBatches(refSession, seqs, scoreOpts)[Symbol.asyncIterator]() : undefined;
    let sumNll = 0;
    let scored = 0;
    const t0 = performance.now();
    for await (const b of scoreBatches(session, seqs, { ...scoreOpts, onProgress: opts.onProgress })) {
      for (let r = 0; r < b.rows; r++) sumNll += b.nll[r];
      scored += b.rows;
      if (opts.saveReference) {
        if (!writer) {
          const enc = chooseEncoding(b.vocab, positions, { encoding: opts.saveReference.encoding, topK: opts.saveReference.topK });
          writer = await ReferenceWriter.create(opts.saveReference.file, {
            model: opts.saveReference.model ?? modelName,
            sequences: seqs,
            positions,
            nVocab: b.vocab,
            encoding: enc.encoding,
            topK: enc.topK,
            ...windows,
          });
        }
        await writer.append(b.logits, b.rowOffset, b.rows, b.lse, b.argmax, b.nll);
      }
      if (reader && compare) await compareWithFile(reader, b, compare);
      if (refBatches && compare) {
        const next = await refBatches.next();
        if (next.done) throw new EvalError('REFERENCE_OUT_OF_STEP', 'the reference model ran out of batches', { where: refName });
        compareWithModel(next.value, b, compare, refName);
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    await writer?.close();
    const savedHeader = writer?.header;
    writer = undefined;

    const { meanNll, ppl } = perplexityOf(sumNll, scored);
    const report: EvalReport = {
      model: modelName,
      sequences: seqs.length,
      tokens_scored: scored,
      tokens_forwarded: countForwardedTokens(seqs, windows),
      mean_nll: meanNll,
      ppl,
      max_length: windows.maxLength,
      stride: windows.stride,
      seconds,
      tokens_per_second: scored / seconds,
    };
    if (compare) {
      Object.assign(report, compare.summary());
      report.reference = reader
        ? { kind: 'file', path: reader.path, encoding: reader.header.encoding, top_k: reader.header.top_k }
        : { kind: 'model', path: refName ?? '' };
    }
    if (savedHeader && opts.saveReference) {
      report.saved_reference = {
        file: opts.saveReference.file,
        encoding: savedHeader.encoding,
        top_k: savedHeader.top_k,
        positions: savedHeader.positions,
      };
    }
    return report;
  } finally {
    await refBatches?.return?.();
    await writer?.abort();
    await reader?.close();
    await kernel?.release();
  }
}

async function compareWithFile(reader: ReferenceReader, b: ScoreBatch, acc: ComparisonAccumulator): Promise<void> {
  if (b.vocab !== reader.header.n_vocab) {
    throw new EvalError('REFERENCE_VOCAB_MISMATCH', `the reference has ${reader.header.n_vocab} vocabulary entries, the model ${b.vocab}`, {
      file: reader.path,
      fix: 'compare a quantized package with the reference saved from its own unquantized model',
    });
  }
  const block = await reader.read(b.rows);
  for (let r = 0; r < b.rows; r++) {
    const kl = block.kl(r, b.logits, b.rowOffset + r, b.vocab);
    acc.add(kl, block.top1(r) === b.argmax[r], b.nll[r], block.nll(r));
  }
}

function compareWithModel(ref: ScoreBatch, b: ScoreBatch, acc: ComparisonAccumulator, refName: string | undefined): void {
  if (ref.sequence !== b.sequence || ref.firstTarget !== b.firstTarget || ref.rows !== b.rows) {
    throw new EvalError('REFERENCE_OUT_OF_STEP', 'the reference model scored different positions', { where: refName });
  }
  if (ref.vocab !== b.vocab) {
    throw new EvalError('REFERENCE_VOCAB_MISMATCH', `the reference model has ${ref.vocab} logits per position, the model ${b.vocab}`, {
      where: refName,
      fix: 'compare a quantized package with its own unquantized model',
    });
  }
  for (let r = 0; r < b.rows; r++) {
    const kl = klFromLogits(ref.logits, ref.rowOffset + r, b.logits, b.rowOffset + r, b.vocab);
    acc.add(kl, ref.argmax[r] === b.argmax[r], b.nll[r], ref.nll[r]);
  }
}
