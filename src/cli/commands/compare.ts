// `pnpm pipeline compare`: not built yet (stub until its issue lands).
import { UsageError } from '../../util/errors.js';
import { defineCommand } from '../command.js';

export const compareCommand = defineCommand({
  command: 'compare',
  describe: '(not available yet)',
  builder: (y) => y,
  run: async () => {
    throw new UsageError('`compare` is not available in this version yet');
  },
});
