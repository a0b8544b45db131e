// `pnpm pipeline eval`: not built yet (stub until its issue lands).
import { UsageError } from '../../util/errors.js';
import { defineCommand } from '../command.js';

export const evalCommand = defineCommand({
  command: 'eval',
  describe: '(not available yet)',
  builder: (y) => y,
  run: async () => {
    throw new UsageError('`eval` is not available in this version yet');
  },
});
