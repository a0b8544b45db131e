// `pnpm pipeline convert`: not built yet (stub until its issue lands).
import { UsageError } from '../../util/errors.js';
import { defineCommand } from '../command.js';

export const convertCommand = defineCommand({
  command: 'convert',
  describe: '(not available yet)',
  builder: (y) => y,
  run: async () => {
    throw new UsageError('`convert` is not available in this version yet');
  },
});
