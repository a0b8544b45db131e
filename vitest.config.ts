// Test runner settings: long end-to-end tests live in test/e2e and get longer time-outs. Builds under test never
// write into the repository's artifacts/: the stage cache defaults to a temp folder (PHI_FORGE_ARTIFACTS).
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    maxWorkers: 2,
    env: { PHI_FORGE_ARTIFACTS: join(tmpdir(), `phi-forge-test-artifacts-${process.pid}`) },
  },
});
