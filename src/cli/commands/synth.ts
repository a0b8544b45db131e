// `pnpm pipeline synth <preset> --scale tiny|full --out DIR [--seed N]`: a random-weight checkpoint with a real Phi config.
import type { SynthOptions } from '../../arch/synth.js';
import { defineCommand, printJson, type OptionTable } from '../command.js';

const options = {
  scale: {
    type: 'string',
    choices: ['tiny', 'full'],
    default: 'tiny',
    describe: 'tiny: 2 layers, fp32, same features; full: the real shapes in bf16, sharded',
  },
  out: { type: 'string', demandOption: true, describe: 'output folder (must be new or empty)' },
  seed: { type: 'number', default: 0, describe: 'same seed, byte-identical files' },
  force: { type: 'boolean', default: false, describe: 'replace a non-empty output folder' },
  json: { type: 'boolean', default: false, describe: 'print one JSON document describing the checkpoint' },
} as const satisfies OptionTable<SynthOptions, { out: 'outDir'; force: 'overwrite' }, 'json'>;

export const synthCommand = defineCommand({
  command: 'synth <preset>',
  describe: 'write a Hugging Face checkpoint with a real Phi config and deterministic random weights',
  builder: (y) =>
    y
      .positional('preset', {
        type: 'string',
        demandOption: true,
        describe: 'phi-3-mini-4k, phi-3-mini-128k, phi-3.5-mini, phi-3-medium-4k, phi-4-mini, phi-4-mini-reasoning, phi-4, phi-4-reasoning, phi-2, phi-1_5, phi-1',
      })
      .options(options),
  run: async (args) => {
    const { synthCheckpoint } = await import('../../arch/synth.js');
    const r = await synthCheckpoint({
      preset: args.preset,
      scale: args.scale,
      outDir: args.out,
      seed: args.seed,
      overwrite: args.force,
    });
    const { config: _config, ...summary } = r;
    if (args.json) printJson(summary);
    else {
      process.stdout.write(
        `${r.preset} (${r.scale}, ${r.architecture}, ${r.dtype}, seed ${r.seed}): ${r.parameters.toLocaleString('en-US')} parameters, ` +
          `${r.tensors} tensors → ${r.outDir}\n` +
          r.files.map((f) => `  ${f}\n`).join(''),
      );
    }
  },
});
