// `pnpm pipeline generate`: not built yet (stub until its issue lands).
import { UsageError } from '../../util/errors.js';
import { defineCommand } from '../command.js';

export const generateCommand = defineCommand({
  command: 'generate',
  describe: '(not available yet)',
  builder: (y) => y,
  run: async () => {
    throw new UsageError('`generate` is not available in this version yet');
  },
});
