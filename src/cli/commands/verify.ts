// `pnpm pipeline verify`: not built yet (stub until its issue lands).
import { UsageError } from '../../util/errors.js';
import { defineCommand } from '../command.js';

export const verifyCommand = defineCommand({
  command: 'verify',
  describe: '(not available yet)',
  builder: (y) => y,
  run: async () => {
    throw new UsageError('`verify` is not available in this version yet');
  },
});
