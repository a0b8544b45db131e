// `pnpm pipeline convert-llama2c`: not built yet (stub until its issue lands).
import { UsageError } from '../../util/errors.js';
import { defineCommand } from '../command.js';

export const convertLlama2cCommand = defineCommand({
  command: 'convert-llama2c',
  describe: '(not available yet)',
  builder: (y) => y,
  run: async () => {
    throw new UsageError('`convert-llama2c` is not available in this version yet');
  },
});
