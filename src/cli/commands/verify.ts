// `pnpm pipeline verify <package-dir> [--json]`: re-hash every file against manifest.json, check genai_config.json,
// and run a short greedy generation on the CPU EP; exit 1 naming every problem. Also takes a model package folder.
import { defineCommand, printJson } from '../command.js';
import { checkWholeNumber } from '../number-flags.js';

export const verifyCommand = defineCommand({
  command: 'verify <dir>',
  describe: 'check a package (or model package) against its manifest and run a short generation',
  builder: (y) =>
    y
      .positional('dir', { type: 'string', demandOption: true, describe: 'package folder (holding manifest.json)' })
      .option('generate', { type: 'boolean', default: true, describe: 'run a short greedy generation from BOS (--no-generate skips it)' })
      .option('max-new-tokens', { type: 'number', default: 4, describe: 'tokens the check generates' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON document with the verification report' }),
  run: async (args) => {
    // A short check: generation stops at the context anyway, but a huge count would only make verify slow.
    checkWholeNumber('--max-new-tokens', args.maxNewTokens, { min: 1, max: { value: 256, why: 'verify runs a short check' } });
    const { verify, formatVerification } = await import('../../package/verify.js');
    const report = await verify(args.dir as string, { generate: args.generate, maxNewTokens: args.maxNewTokens });
    if (args.json) printJson(report);
    else process.stdout.write(formatVerification(report));
    return report.ok ? 0 : 1;
  },
});
