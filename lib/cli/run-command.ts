/**
 * What every command's `run` shares, written once: parse the command line ({@link parseCommandLine}), print the
 * usage for `--help`, make the progress reporter (drawn only on a terminal, and neither with `--quiet` nor with
 * `--json`), close it however the command ends, and turn an error into one line on stderr and its exit code.
 */
import type { ParseArgsConfig } from 'node:util';
import { type CliIO, type Command, EXIT, UsageError, parseCommandLine } from './command.js';
import { ProgressReporter } from './progress.js';

/** The option table of a command, as `util.parseArgs` takes it. */
export type CommandOptions = NonNullable<ParseArgsConfig['options']>;

/** What a command's body is given. */
export interface CommandContext<T extends CommandOptions> {
  /** The parsed option values (`--help` was not given). */
  readonly values: ReturnType<typeof parseCommandLine<T>>['values'];
  readonly positionals: string[];
  readonly io: CliIO;
  /** The command's progress bars; closed when the body ends, whether it succeeded or not. */
  readonly progress: ProgressReporter;
}

/** A command as {@link defineCommand} takes it: its texts, its options and its body. */
export interface CommandDefinition<T extends CommandOptions> {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** The full usage text, printed for `--help`. */
  readonly usage: string;
  /** The options the command accepts (`--help`, `--json` and `--quiet` are read here when they are among them). */
  readonly options: T;
  /** The command's work, once the command line is parsed; resolves to the exit code. */
  run(context: CommandContext<T>): Promise<number>;
}

/**
 * A {@link Command} from its definition. Its `run` never rejects: a {@link UsageError} prints the message and a
 * pointer to `--help` and exits with {@link EXIT}.usage, any other error prints its message on one line (the stack
 * with `--debug`) and exits with {@link EXIT}.failure.
 */
export function defineCommand<T extends CommandOptions>(definition: CommandDefinition<T>): Command {
  const { name, summary, usage } = definition;
  return {
    name,
    summary,
    usage,
    async run(argv, io) {
      let progress: ProgressReporter | undefined;
      try {
        const { values, positionals } = parseCommandLine(argv, definition.options);
        const flags = values as { help?: boolean; quiet?: boolean; json?: boolean };
        if (flags.help === true) {
          io.out(usage);
          return EXIT.ok;
        }
        progress = new ProgressReporter(io, io.isTTY && flags.quiet !== true && flags.json !== true);
        return await definition.run({ values, positionals, io, progress });
      } catch (err) {
        progress?.close(); // the message starts on a line of its own
        return reportError(name, argv, err, io);
      } finally {
        progress?.close();
      }
    },
  };
}

/**
 * Prints the error that stopped command `name` as one line on stderr (with its stack when `argv` has `--debug`)
 * and returns its exit code: {@link EXIT}.usage for a {@link UsageError} (with a pointer to `--help`), else
 * {@link EXIT}.failure.
 */
export function reportError(name: string, argv: readonly string[], err: unknown, io: CliIO): number {
  const msg = err instanceof Error ? err.message : String(err);
  if (err instanceof UsageError) {
    io.err(`pix2pix-zero ${name}: ${msg}\nRun 'pix2pix-zero ${name} --help' for usage.`);
    return EXIT.usage;
  }
  const debug = argv.includes('--debug');
  io.err(`pix2pix-zero ${name}: ${debug ? (err instanceof Error ? (err.stack ?? msg) : msg) : msg.split('\n').join(' | ')}`);
  return EXIT.failure;
}
