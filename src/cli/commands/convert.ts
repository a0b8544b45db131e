// `pnpm pipeline convert <checkpoint-dir> --out DIR [--precision fp32|fp16] [--target cpu|cuda|dml|mobile]`: native build.
import type { ConvertOptions } from '../../arch/convert.js';
import { TARGET_IDS } from '../../target/index.js';
import { ACTIVATION_PRECISIONS } from '../../vocabulary.js';
import { defineCommand, printJson, type OptionTable } from '../command.js';

const options = {
  out: { type: 'string', demandOption: true, describe: 'output folder (must be new or empty)' },
  force: { type: 'boolean', default: false, describe: 'replace a non-empty output folder (never one holding the checkpoint)' },
  precision: {
    type: 'string',
    choices: ACTIVATION_PRECISIONS,
    describe: "activation and weight precision (default: the target's: fp32 for cpu/mobile, fp16 for cuda/dml)",
  },
  target: { type: 'string', choices: TARGET_IDS, default: 'cpu', describe: 'graph layout and genai provider options' },
  json: { type: 'boolean', default: false, describe: 'print one JSON document describing the build' },
} as const satisfies OptionTable<ConvertOptions, { out: 'outDir' }, 'force' | 'json'>;

export const convertCommand = defineCommand({
  command: 'convert <checkpoint>',
  describe: 'build model.onnx (+ .data), genai_config.json and tokenizer files from a Hugging Face Phi checkpoint folder',
  builder: (y) => y.positional('checkpoint', { type: 'string', demandOption: true, describe: 'folder with config.json and *.safetensors' }).options(options),
  run: async (args) => {
    const [{ convertCheckpoint }, { checkOutputFolder }, { writeDirAtomic }] = await Promise.all([
      import('../../arch/convert.js'),
      import('../../util/output-path.js'),
      import('../../util/atomic-fs.js'),
    ]);
    const outDir = await checkOutputFolder(args.out, { flag: '--out', force: args.force, inputs: [args.checkpoint] });
    const quiet = args.json || !process.stderr.isTTY;
    let last = 0;
    // Written beside --out and renamed into place: a failed convert leaves the old folder (or none), never a mix.
    const built = await writeDirAtomic(outDir, (tmp) => convertCheckpoint({
      checkpointDir: args.checkpoint,
      outDir: tmp,
      precision: args.precision,
      target: args.target,
      onProgress: (p) => {
        const now = Date.now();
        if (quiet || now - last < 250 || !p.totalBytes) return;
        last = now;
        const pct = ((100 * (p.bytes ?? 0)) / p.totalBytes).toFixed(0);
        process.stderr.write(`\r  writing ${p.tensors}/${p.totalTensors} tensors (${pct}%) ${p.tensor ?? ''}`.padEnd(100).slice(0, 100));
      },
    }));
    const r = { ...built, outDir };
    if (!quiet) process.stderr.write('\n');
    const summary = {
      outDir: r.outDir,
      architecture: r.architecture,
      variant: r.variant,
      target: r.target,
      precision: r.precision,
      layers: r.decoder.numLayers,
      initializers: r.initializers,
      files: r.files,
    };
    if (args.json) printJson(summary);
    else {
      process.stdout.write(
        `${r.architecture} [${r.variant.join(', ') || 'plain'}] → ${r.target} ${r.precision}: ${r.outDir}\n` +
          r.files.map((f) => `  ${f}\n`).join(''),
      );
    }
  },
});
