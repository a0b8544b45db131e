// `pnpm pipeline inspect`: not built yet (stub until its issue lands).
import { UsageError } from '../../util/errors.js';
import { defineCommand } from '../command.js';

export const inspectCommand = defineCommand({
  command: 'inspect',
  describe: '(not available yet)',
  builder: (y) => y,
  run: async () => {
    throw new UsageError('`inspect` is not available in this version yet');
  },
});
