// The shape of one CLI command: yargs options declared in one place, and a handler that imports heavy code lazily.
import type { Argv, ArgumentsCamelCase } from 'yargs';

export interface GlobalOptions {
  verbose: boolean;
}

export interface CommandSpec<A = object> {
  /** yargs command string, e.g. `inspect <model>`. */
  command: string;
  describe: string;
  builder: (y: Argv<GlobalOptions>) => Argv<A>;
  /** Runs the command; returns the process exit code (0 unless the command decides otherwise). */
  run: (args: ArgumentsCamelCase<A & GlobalOptions>) => Promise<number | void>;
}

export function defineCommand<A>(spec: CommandSpec<A>): CommandSpec<A> {
  return spec;
}

let jsonPrinted = false;

/** Writes a JSON document to stdout (the --json contract: exactly one document). */
export function printJson(value: unknown): void {
  jsonPrinted = true;
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Whether a command already printed its JSON document (the error handler then prints none). */
export function jsonWasPrinted(): boolean {
  return jsonPrinted;
}
