// `pnpm pipeline build <recipe|hub-id|dir>`: build, quantize, validate and package for each target.
import { TARGET_IDS } from '../../recipes/schema.js';
import { defineCommand, printJson } from '../command.js';
import { withAbortOnSigint } from '../abort.js';

export const buildCommand = defineCommand({
  command: 'build <spec>',
  describe: 'build packages from a recipe, a hub id (org/name) or a checkpoint folder',
  builder: (y) =>
    y
      .positional('spec', { type: 'string', demandOption: true, describe: 'recipe name or file, hub id, checkpoint folder or llama2.c .bin' })
      .option('target', { type: 'string', array: true, choices: TARGET_IDS, describe: 'targets to build (default: the recipe\'s)' })
      .option('precision', {
        type: 'string',
        choices: ['fp32', 'fp16', 'int4', 'int8', 'ternary'] as const,
        describe: 'fp32/fp16: unquantized with these activations; int4/int8/ternary: this scheme for every target',
      })
      .option('out', { type: 'string', describe: 'publish packages to <out>/<model>-<target> (default artifacts/packages)' })
      .option('force', { type: 'boolean', default: false, describe: 'replace <out>/<model>-<target> even when it holds files that are not a previous package' })
      .option('artifacts', { type: 'string', describe: 'stage cache folder (default artifacts/, or PHI_FORGE_ARTIFACTS)' })
      .option('builder', { type: 'string', choices: ['native', 'genai', 'olive'] as const, describe: 'override the recipe\'s builder for this build' })
      .option('python', { type: 'string', describe: 'python for the genai/olive builders (default PHI_FORGE_PYTHON, then PATH)' })
      .option('token', { type: 'string', describe: 'Hugging Face token for gated models (default HF_TOKEN)' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON document with the build report' }),
  run: async (args) => {
    const { build } = await import('../../../pipelines/build.js');
    const { formatBuildSummary } = await import('../../pipeline/summary.js');
    const report = await withAbortOnSigint((signal) =>
      build({
        spec: args.spec as string,
        targets: args.target as never,
        precision: args.precision as never,
        out: args.out,
        force: args.force,
        artifacts: args.artifacts,
        hubToken: args.token ?? process.env.HF_TOKEN,
        builder: args.builder as never,
        python: args.python,
        signal,
      }),
    );
    if (args.json) printJson(report);
    else process.stdout.write(formatBuildSummary(report));
    return report.targets.every((t) => t.ok) ? 0 : 1;
  },
});
