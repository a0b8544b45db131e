// CLI entry point (`pnpm pipeline ...`): registers the commands and turns errors into one clear message + exit code.
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { isPhiForgeError, UsageError } from '../util/errors.js';
import type { CommandSpec, GlobalOptions } from './command.js';
import { commands } from './commands/index.js';

/** Builds the yargs parser for argv (exported for tests). */
export function parseCli(argv: string[]) {
  let y = yargs(argv)
    .scriptName('pnpm pipeline')
    .option('verbose', { type: 'boolean', default: false, describe: 'print stack traces and debug details' })
    .strict()
    .demandCommand(1, 'name a command (see --help)')
    .recommendCommands()
    .help()
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .fail((msg, err) => {
      throw err ?? new UsageError(msg);
    }) as unknown as Argv<GlobalOptions>;
  for (const c of commands as CommandSpec<object>[]) {
    y = y.command({
      command: c.command,
      describe: c.describe,
      builder: c.builder as never,
      handler: async (args: unknown) => {
        const code = await c.run(args as never);
        if (typeof code === 'number') process.exitCode = code;
      },
    });
  }
  return y;
}

export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  try {
    await parseCli(argv).parseAsync();
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    return reportError(e, verbose);
  }
}

/** The one top-level handler: our errors print their message, anything else is an internal error with a stack. */
export function reportError(e: unknown, verbose: boolean): number {
  if (isPhiForgeError(e)) {
    process.stderr.write(`error: ${e.message}\n`);
    if (verbose && e.stack) process.stderr.write(e.stack + '\n');
    return e.exitCode;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
    process.stderr.write(`error: the disk is full (${err.message}); free some space and run again\n`);
    return 1;
  }
  process.stderr.write(`internal error: ${err.message}\n`);
  if (verbose || !isPhiForgeError(e)) process.stderr.write((err.stack ?? '') + '\n');
  return 1;
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  main(hideBin(process.argv)).then((code) => {
    // Interrupted: stage work that does not watch the signal may still be running; end it with the process.
    if (code === 130) process.exit(130);
    process.exitCode = code;
  });
}
