// Numeric flags have upper bounds, checked before any work, as usage errors naming the flag and the bound; yargs'
// own validation errors are usage errors too.
import { describe, expect, it } from 'vitest';
import { parseCli } from '../../src/cli/main.js';
import { UsageError } from '../../src/util/errors.js';

async function usageError(argv: string[]): Promise<UsageError> {
  const e = await (async () => parseCli(argv).parseAsync())().then(() => undefined, (err: unknown) => err);
  expect(e, argv.join(' ')).toBeInstanceOf(UsageError);
  return e as UsageError;
}

describe('flag bounds', () => {
  it('quantize --threads is bounded by the cores', async () => {
    const e = await usageError(['quantize', 'in.onnx', '--out', 'out.onnx', '--scheme', 'int4', '--threads', '10000']);
    expect(e.message).toMatch(/--threads must be at most \d+ \(4 per core/);
    expect((await usageError(['quantize', 'in.onnx', '--out', 'out.onnx', '--scheme', 'int4', '--threads', 'x'])).message).toMatch(/not a number/);
  });

  it('verify --max-new-tokens is a short check', async () => {
    expect((await usageError(['verify', 'pkg', '--max-new-tokens', '100000'])).message).toMatch(/at most 256/);
    expect((await usageError(['verify', 'pkg', '--max-new-tokens', '0'])).message).toMatch(/≥ 1/);
  });

  it("yargs' own validation errors (a numeric flag without its value) are usage errors, exit code 2", async () => {
    const e = await usageError(['generate', 'model-dir', '--max-new-tokens']);
    expect(e.exitCode).toBe(2);
    expect(e.message).toMatch(/max-new-tokens/);
  });
});
