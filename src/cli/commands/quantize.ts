// `pnpm pipeline quantize`: not built yet (stub until its issue lands).
import { UsageError } from '../../util/errors.js';
import { defineCommand } from '../command.js';

export const quantizeCommand = defineCommand({
  command: 'quantize',
  describe: '(not available yet)',
  builder: (y) => y,
  run: async () => {
    throw new UsageError('`quantize` is not available in this version yet');
  },
});
