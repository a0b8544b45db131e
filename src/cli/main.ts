// CLI entry point (`pnpm pipeline ...`): registers the commands and turns errors into one clear message + exit code.
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { isPhiForgeError, UsageError } from '../util/errors.js';
import { jsonWasPrinted, printJson, type GlobalOptions } from './command.js';
import { commands } from './commands/index.js';

/** Builds the yargs parser for argv (exported for tests). */
export function parseCli(argv: string[]) {
  let y: Argv<GlobalOptions> = yargs(argv)
    .scriptName('pnpm pipeline')
    .option('verbose', { type: 'boolean', default: false, describe: 'print stack traces and debug details' })
    .strict()
    .demandCommand(1, 'name a command (see --help)')
    .recommendCommands()
    .help()
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .fail((msg, err) => {
      // yargs' own validation errors (YError) are usage errors like its messages; ours pass through unchanged.
      if (err && err.name === 'YError') throw new UsageError(err.message);
      throw err ?? new UsageError(msg);
    });
  for (const c of commands) y = c.register(y);
  return y;
}

export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  try {
    await parseCli(argv).parseAsync();
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    const failure = describeFailure(e);
    reportError(failure, verbose);
    // The --json contract holds on failure too: one document on stdout, the message on stderr as well.
    if (argv.includes('--json') && !jsonWasPrinted()) {
      const { exitCode, stack: _stack, ...error } = failure;
      printJson({ ok: false, exitCode, error });
    }
    return failure.exitCode;
  }
}

/** What the CLI reports about an error: our typed errors as they are, the user's environment clearly, bugs as bugs. */
export interface Failure {
  code: string;
  message: string;
  exitCode: number;
  file?: string;
  where?: string;
  fix?: string;
  /** Set for internal errors (a bug): printed with the message. */
  internal?: boolean;
  stack?: string;
}

/**
 * Errors from the file system that the user's paths or machine cause (a read-only folder, a full disk, a file where a
 * folder is needed) are not bugs: they print as one line naming the path, not as an internal error with a stack.
 */
const ENVIRONMENT_ERRNO: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'the disk is full',
  EDQUOT: 'disk quota exceeded',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'is a folder, not a file',
  ENOENT: 'no such file or folder',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
  EMFILE: 'too many open files',
};

export function describeFailure(e: unknown): Failure {
  if (isPhiForgeError(e)) {
    return { code: e.code, message: e.message, exitCode: e.exitCode, file: e.file, where: e.where, fix: e.fix, stack: e.stack };
  }
  const err = e instanceof Error ? e : new Error(String(e));
  const errno = err as NodeJS.ErrnoException;
  const what = errno.code ? ENVIRONMENT_ERRNO[errno.code] : undefined;
  if (what) {
    const place = errno.path ?? (errno as { dest?: string }).dest;
    return {
      code: errno.code!,
      message: `${place ? `${place}: ` : ''}${errno.syscall ? `${errno.syscall} failed: ` : ''}${what}`,
      exitCode: 1,
      file: place,
      fix: errno.code === 'ENOSPC' || errno.code === 'EDQUOT' ? 'free some space and run again' : 'check the path and its permissions',
      stack: err.stack,
    };
  }
  return { code: 'INTERNAL', message: err.message, exitCode: 1, internal: true, stack: err.stack };
}

/** The one top-level handler: our errors print their message, anything else is an internal error with a stack. */
export function reportError(f: Failure, verbose: boolean): number {
  if (f.internal) {
    process.stderr.write(`internal error: ${f.message}\n${f.stack ?? ''}\n`);
    return f.exitCode;
  }
  const fix = f.fix && !f.message.includes(`fix: ${f.fix}`) ? `\n  fix: ${f.fix}` : '';
  process.stderr.write(`error: ${f.message}${fix}\n`);
  if (verbose && f.stack) process.stderr.write(f.stack + '\n');
  return f.exitCode;
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  main(hideBin(process.argv)).then((code) => {
    // Interrupted: stage work that does not watch the signal may still be running; end it with the process.
    if (code === 130) process.exit(130);
    process.exitCode = code;
  });
}
