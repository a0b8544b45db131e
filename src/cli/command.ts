// The shape of one CLI command: yargs options declared in one table typed from the request the command builds, and a
// handler that imports heavy code lazily.
import type { Argv, ArgumentsCamelCase, Options } from 'yargs';

export interface GlobalOptions {
  verbose: boolean;
}

export interface CommandSpec<A extends GlobalOptions> {
  /** yargs command string, e.g. `inspect <model>`. */
  command: string;
  describe: string;
  builder: (y: Argv<GlobalOptions>) => Argv<A>;
  /** Runs the command; returns the process exit code (0 unless the command decides otherwise). */
  run: (args: ArgumentsCamelCase<A>) => Promise<number | void>;
}

/**
 * A command ready to be registered. Each command's parsed-argument type differs, so it stays inside `register`
 * (the list of commands needs no common argument type, and no cast).
 */
export interface Command {
  command: string;
  describe: string;
  /** Adds the command to `y`; `handler` replaces the command's own run (tests parse without running). */
  register: (y: Argv<GlobalOptions>, handler?: (args: ArgumentsCamelCase<GlobalOptions>) => void) => Argv<GlobalOptions>;
}

export function defineCommand<A extends GlobalOptions>(spec: CommandSpec<A>): Command {
  return {
    command: spec.command,
    describe: spec.describe,
    register: (y, handler) =>
      y.command(
        spec.command,
        spec.describe,
        spec.builder,
        // A given handler stays synchronous, so tests can parse with parseSync.
        handler ??
          (async (args) => {
            const code = await spec.run(args);
            if (typeof code === 'number') process.exitCode = code;
          }),
      ),
  };
}

// Option tables typed from requests. An option's yargs `type`, `array` and `choices` follow from the type of the
// request field it fills, so a table cannot offer a value the request would refuse, and because the choices are the
// vocabulary's `as const` lists, yargs infers the same literal unions for the parsed arguments: handlers pass them to
// the request without casts. (vitest declares its CLI options the same way, in one table typed from its config.)

type ScalarOption<E> = [E] extends [boolean]
  ? { type: 'boolean'; default?: boolean }
  : [E] extends [number]
    ? { type: 'number'; default?: number }
    : [E] extends [string]
      ? { type: 'string'; choices?: readonly E[]; default?: E }
      : never;

type ListOption<L> = L extends readonly (infer E)[] ? Omit<ScalarOption<E>, 'default'> & { array: true; default?: readonly E[] } : never;

type Shape<V> =
  | ([Exclude<V, readonly unknown[]>] extends [never] ? never : ScalarOption<Exclude<V, readonly unknown[]>> & { array?: false })
  | ([Extract<V, readonly unknown[]>] extends [never] ? never : ListOption<Extract<V, readonly unknown[]>>);

/** A yargs option for a value of type V (a request field). */
export type OptionFor<V> = Omit<Options, 'type' | 'array' | 'choices' | 'default'> & Shape<NonNullable<V>>;

/**
 * The option table of a command that builds request R: each flag fills the field of its own name, or the field
 * `Renamed` maps it to (`{ token: 'hubToken' }`); `Extra` flags fill no field (`json`, a file the command reads).
 */
export type OptionTable<R, Renamed extends { [flag: string]: keyof R } = never, Extra extends string = never> = {
  [K in Exclude<keyof R, ([Renamed] extends [never] ? never : Renamed[keyof Renamed])>]?: OptionFor<R[K]>;
} & ([Renamed] extends [never] ? unknown : { [F in keyof Renamed]?: OptionFor<R[Renamed[F]]> }) & { [F in Extra]?: Options };

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
