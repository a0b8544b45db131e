// `pnpm pipeline build <recipe|hub-id|dir>`: build, quantize, validate and package for each target.
import type { BuildRequest } from '../../../pipelines/build.js';
import { TARGET_IDS } from '../../target/index.js';
import { BUILDERS, PRECISIONS } from '../../vocabulary.js';
import { defineCommand, printJson, type OptionTable } from '../command.js';
import { withAbortOnSigint } from '../abort.js';

const options = {
  target: { type: 'string', array: true, choices: TARGET_IDS, describe: "targets to build (default: the recipe's)" },
  precision: {
    type: 'string',
    choices: PRECISIONS,
    describe: 'fp32/fp16: unquantized with these activations; int4/int8/ternary: this scheme for every target',
  },
  out: { type: 'string', describe: 'publish packages to <out>/<model>-<target> (default artifacts/packages)' },
  force: { type: 'boolean', default: false, describe: 'replace <out>/<model>-<target> even when it holds files that are not a previous package' },
  artifacts: { type: 'string', describe: 'stage cache folder (default artifacts/, or PHI_FORGE_ARTIFACTS)' },
  builder: { type: 'string', choices: BUILDERS, describe: "override the recipe's builder for this build" },
  python: { type: 'string', describe: 'python for the genai/olive builders (default PHI_FORGE_PYTHON, then PATH)' },
  token: { type: 'string', describe: 'Hugging Face token for gated models (default HF_TOKEN)' },
  json: { type: 'boolean', default: false, describe: 'print one JSON document with the build report' },
} as const satisfies OptionTable<BuildRequest, { target: 'targets'; token: 'hubToken' }, 'json'>;

export const buildCommand = defineCommand({
  command: 'build <spec>',
  describe: 'build packages from a recipe, a hub id (org/name) or a checkpoint folder',
  builder: (y) =>
    y
      .positional('spec', { type: 'string', demandOption: true, describe: 'recipe name or file, hub id, checkpoint folder or llama2.c .bin' })
      .options(options),
  run: async (args) => {
    const { build } = await import('../../../pipelines/build.js');
    const { formatBuildSummary } = await import('../../stages/summary.js');
    const report = await withAbortOnSigint((signal) =>
      build({
        spec: args.spec,
        targets: args.target,
        precision: args.precision,
        out: args.out,
        force: args.force,
        artifacts: args.artifacts,
        hubToken: args.token ?? process.env.HF_TOKEN,
        builder: args.builder,
        python: args.python,
        signal,
      }),
    );
    if (args.json) printJson(report);
    else process.stdout.write(formatBuildSummary(report));
    return report.targets.every((t) => t.ok) ? 0 : 1;
  },
});
