// `pnpm pipeline convert-llama2c <file.bin> --out DIR`: a llama2.c checkpoint as a Hugging Face Phi-3 checkpoint.
import { defineCommand, printJson } from '../command.js';

export const convertLlama2cCommand = defineCommand({
  command: 'convert-llama2c <file>',
  describe: 'convert a llama2.c checkpoint (.bin) to a Hugging Face Phi3ForCausalLM checkpoint (fp32)',
  builder: (y) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'legacy llama2.c checkpoint, e.g. stories260K.bin' })
      .option('out', { type: 'string', demandOption: true, describe: 'output folder (must be new or empty)' })
      .option('force', { type: 'boolean', default: false, describe: 'replace a non-empty output folder' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON document describing the result' }),
  run: async (args) => {
    const { convertLlama2c } = await import('../../checkpoint/llama2c.js');
    const r = await convertLlama2c({ file: args.file as string, outDir: args.out, overwrite: args.force });
    if (args.json) printJson(r);
    else {
      const h = r.header;
      process.stdout.write(
        `llama2.c dim ${h.dim}, hidden ${h.hiddenDim}, ${h.nLayers} layers, heads ${h.nHeads}/${h.nKvHeads}, vocab ${h.vocabSize}` +
          `${h.sharedClassifier ? ' (tied classifier)' : ''}, seq_len ${h.seqLen}\n` +
          `→ Phi3ForCausalLM, ${r.parameters.toLocaleString('en-US')} parameters, ${r.tensors} tensors in ${r.outDir}\n`,
      );
    }
  },
});
