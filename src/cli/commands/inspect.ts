// `pnpm pipeline inspect <model.onnx> [--json]` (or `--demo`): what a model holds, as a table or one JSON document.
import { UsageError } from '../../util/errors.js';
import { defineCommand, printJson } from '../command.js';

export const inspectCommand = defineCommand({
  command: 'inspect [model]',
  describe: 'show a model: IR version, opsets, inputs/outputs, op histogram, parameters, quantized weights, external data',
  builder: (y) =>
    y
      .positional('model', { type: 'string', describe: 'the .onnx file (its .data file is found through the model)' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON document instead of tables' })
      .option('demo', {
        type: 'boolean',
        default: false,
        describe: 'build a small demo model, save it with external data under the temp folder and inspect that',
      }),
  run: async (args) => {
    if (!args.demo && !args.model) throw new UsageError('name a model file (or pass --demo)');
    if (args.demo && args.model) throw new UsageError('pass either a model file or --demo, not both');
    const [{ loadModel, saveModel }, { buildDemoModel, formatInspectReport, inspectModel }] = await Promise.all([
      import('../../onnx/model-file.js'),
      import('../../onnx/inspect.js'),
    ]);
    let file = args.model as string | undefined;
    if (args.demo) {
      const { tmpdir } = await import('node:os');
      const { join } = await import('node:path');
      // A fixed folder, rewritten atomically on each run, so repeated demos leave no litter behind.
      file = join(tmpdir(), 'phi-forge-demo', 'demo.onnx');
      await saveModel(buildDemoModel(), file);
    }
    const model = await loadModel(file!);
    const report = inspectModel(model);
    if (args.json) printJson({ file, ...report });
    else process.stdout.write(formatInspectReport(report, file) + '\n');
  },
});
