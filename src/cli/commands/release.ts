// `pnpm pipeline release`: not built yet (stub until its issue lands).
import { UsageError } from '../../util/errors.js';
import { defineCommand } from '../command.js';

export const releaseCommand = defineCommand({
  command: 'release',
  describe: '(not available yet)',
  builder: (y) => y,
  run: async () => {
    throw new UsageError('`release` is not available in this version yet');
  },
});
