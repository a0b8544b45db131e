// `pnpm pipeline compare <recipe|dir> --schemes a,b,c`: build one target under several quantization schemes and
// compare size, bits per weight, quality against one reference, speed and build time (report.md + report.html).
import type { CompareRequest } from '../../../pipelines/compare.js';
import type { SpeedOptions } from '../../compare/speed.js';
import { TARGET_IDS } from '../../target/index.js';
import { defineCommand, printJson, type OptionTable } from '../command.js';
import { withAbortOnSigint } from '../abort.js';

const options = {
  schemes: {
    // Not an array option: that would swallow a positional after it (`--schemes a,b tiny-phi`); a repeated
    // --schemes still arrives as a list.
    type: 'string',
    demandOption: true,
    describe: 'comma-separated: int4-rtn, int4-hqq, int4-gptq, int4-awq, int8, int8-gptq, ternary, fp32|none; suffixes -b64, -asym',
  },
  target: { type: 'string', choices: TARGET_IDS, describe: "the target compared (default cpu, or the recipe's first)" },
  data: { type: 'string', describe: "validation data: a tokens .json file or a text/.jsonl/.parquet dataset (default: the recipe's)" },
  report: { type: 'string', describe: 'folder for report.md, report.html, report.json and packages/<scheme> (default artifacts/compare/<model>-<target>)' },
  runs: { type: 'number', default: 5, describe: 'timed speed runs per scheme (median reported); 0 skips speed' },
  'prefill-tokens': { type: 'number', default: 64, describe: 'prompt length of the prefill speed run' },
  'decode-tokens': { type: 'number', default: 32, describe: 'one-token steps of the decode speed run' },
  artifacts: { type: 'string', describe: 'stage cache folder (default artifacts/, or PHI_FORGE_ARTIFACTS)' },
  token: { type: 'string', describe: 'Hugging Face token for gated models (default HF_TOKEN)' },
  json: { type: 'boolean', default: false, describe: 'print one JSON document with the comparison' },
} as const satisfies OptionTable<CompareRequest, { token: 'hubToken' }, 'json'> &
  OptionTable<SpeedOptions, { runs: 'runs'; 'prefill-tokens': 'prefillTokens'; 'decode-tokens': 'decodeTokens' }>;

export const compareCommand = defineCommand({
  command: 'compare <spec>',
  describe: 'build one target under several quantization schemes and compare size, quality and speed',
  builder: (y) =>
    y
      .positional('spec', { type: 'string', demandOption: true, describe: 'recipe name or file, hub id, checkpoint folder or llama2.c .bin' })
      .options(options),
  run: async (args) => {
    const { UsageError } = await import('../../util/errors.js');
    for (const k of ['runs', 'prefillTokens', 'decodeTokens'] as const) {
      const v = args[k];
      if (!Number.isInteger(v) || v < (k === 'runs' ? 0 : 1)) {
        throw new UsageError(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} must be a whole number${k === 'runs' ? '' : ' ≥ 1'}, got ${v}`);
      }
    }
    const { compare } = await import('../../../pipelines/compare.js');
    const { markdownTable } = await import('../../compare/report-md.js');
    const report = await withAbortOnSigint((signal) =>
      compare({
        spec: args.spec,
        schemes: args.schemes,
        target: args.target,
        data: args.data,
        report: args.report,
        artifacts: args.artifacts,
        hubToken: args.token ?? process.env.HF_TOKEN,
        speed: args.runs === 0 ? false : { runs: args.runs, prefillTokens: args.prefillTokens, decodeTokens: args.decodeTokens },
        signal,
        log: (line) => process.stderr.write(`compare ${line}\n`),
      }),
    );
    if (args.json) printJson(report);
    else {
      process.stdout.write(`${markdownTable(report)}\n\n`);
      process.stdout.write(`report: ${report.files.markdown}\n        ${report.files.html}\n`);
    }
    // The comparison itself failed only when no scheme could be built; failed rows are part of a valid report.
    return report.rows.some((r) => r.ok) ? 0 : 1;
  },
});
