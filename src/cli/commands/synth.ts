// `pnpm pipeline synth`: not built yet (stub until its issue lands).
import { UsageError } from '../../util/errors.js';
import { defineCommand } from '../command.js';

export const synthCommand = defineCommand({
  command: 'synth',
  describe: '(not available yet)',
  builder: (y) => y,
  run: async () => {
    throw new UsageError('`synth` is not available in this version yet');
  },
});
