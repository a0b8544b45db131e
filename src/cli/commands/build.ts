// `pnpm pipeline build`: not built yet (stub until its issue lands).
import { UsageError } from '../../util/errors.js';
import { defineCommand } from '../command.js';

export const buildCommand = defineCommand({
  command: 'build',
  describe: '(not available yet)',
  builder: (y) => y,
  run: async () => {
    throw new UsageError('`build` is not available in this version yet');
  },
});
