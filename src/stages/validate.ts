// The validation stages. `reference` runs once per unquantized model: it fixes the token sequences (a tokens file,
// a dataset tokenized with the model's tokenizer, or sequences sampled from the model itself) and stores the
// reference log-probabilities. `validate` scores one (quantized) model against that file. Gates are checked by the
// pipeline, not here, so changing a gate re-checks without re-running the evaluation.
import type { ValidationMetrics } from '../eval/metrics.js';
import { writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Recipe } from '../recipes/schema.js';
import type { StageDefinition, StageOutcome } from './runner.js';
import type { ConvertResult } from './convert.js';

const TOKENS_FILE = 'tokens.json';
const REFERENCE_FILE = 'reference.logp';

export interface ReferenceResult {
  /** Where the sequences came from, for reports. */
  data: string;
  sequences: number;
  tokens_scored: number;
  ppl: number;
  mean_nll: number;
  max_length: number;
  stride: number;
}

export type { ValidationMetrics };

export interface ValidateResult {
  metrics: ValidationMetrics;
  data: string;
}

type Validation = NonNullable<Recipe['validation']>;

export function referenceStage(input: {
  model: string;
  convert: StageOutcome<ConvertResult>;
  validation: Validation;
  resolvePath: (p: string) => string;
}): StageDefinition<ReferenceResult> {
  const v = input.validation;
  const data = v.data;
  return {
    name: 'reference',
    version: 1,
    model: input.model,
    inputs: { model: input.convert.key },
    options: {
      data: 'sample' in data ? data : { ...data, path: input.resolvePath('tokens' in data ? data.tokens : data.text) },
      max_length: v.max_length,
      stride: v.stride ?? null,
    },
    run: async (ctx) => {
      const { evaluateModel } = await import('../eval/evaluate.js');
      const modelDir = input.convert.dir;
      let sequences: Int32Array[];
      let described: string;
      if ('sample' in data) {
        // No data given: sample from the unquantized model itself (seeded), so the check needs no dataset.
        const { DecoderSession } = await import('../runtime/decoder-session.js');
        const { sampleSequences } = await import('../eval/sample.js');
        const session = await DecoderSession.open(modelDir);
        try {
          // Sequences start with genai_config.json's bos_token_id (written by the builder), as the session read it.
          sequences = await sampleSequences(session, { ...data.sample, bos: session.layout.bosTokenId ?? 1, signal: ctx.signal });
        } finally {
          await session.release();
        }
        described = `${data.sample.sequences} sequences of ${data.sample.length} tokens sampled from the unquantized model (seed ${data.sample.seed})`;
      } else {
        const { loadEvalInput } = await import('../eval/inputs.js');
        const loaded = await loadEvalInput(
          'tokens' in data ? { tokens: input.resolvePath(data.tokens) } : { text: input.resolvePath(data.text), column: data.column },
          { tokenizerDir: modelDir },
        );
        sequences = loaded.sequences;
        described = loaded.description;
      }
      await writeFile(join(ctx.outDir, TOKENS_FILE), JSON.stringify(sequences.map((s) => Array.from(s))) + '\n');
      const report = await evaluateModel(modelDir, sequences, {
        maxLength: v.max_length,
        stride: v.stride,
        saveReference: { file: join(ctx.outDir, REFERENCE_FILE), model: input.model },
        signal: ctx.signal,
        onProgress: (done, total) => ctx.progress({ done, total, unit: 'tokens', message: 'scoring the reference' }),
      });
      return {
        data: described,
        sequences: sequences.length,
        tokens_scored: report.tokens_scored,
        ppl: report.ppl,
        mean_nll: report.mean_nll,
        max_length: report.max_length,
        stride: report.stride,
      };
    },
  };
}

export function validateStage(input: {
  model: string;
  modelDir: string;
  modelKey: string;
  reference: StageOutcome<ReferenceResult>;
}): StageDefinition<ValidateResult> {
  const ref = input.reference;
  return {
    name: 'validate',
    version: 1,
    model: input.model,
    inputs: { model: input.modelKey, reference: ref.key },
    options: {},
    run: async (ctx) => {
      const { evaluateModel } = await import('../eval/evaluate.js');
      const sequences = (JSON.parse(await readFile(join(ref.dir, TOKENS_FILE), 'utf8')) as number[][]).map((s) => Int32Array.from(s));
      const r = await evaluateModel(input.modelDir, sequences, {
        reference: { file: join(ref.dir, REFERENCE_FILE) },
        signal: ctx.signal,
        onProgress: (done, total) => ctx.progress({ done, total, unit: 'tokens', message: 'scoring against the reference' }),
      });
      const metrics: ValidationMetrics = {
        tokens_scored: r.tokens_scored,
        ppl: r.ppl,
        mean_nll: r.mean_nll,
        ppl_ref: r.ppl_ref,
        ppl_delta_pct: r.ppl_delta_pct,
        kl_mean: r.kl_mean,
        kl_p99: r.kl_p99,
        top1_agreement: r.top1_agreement,
      };
      return { metrics, data: ref.record.result.data };
    },
  };
}
