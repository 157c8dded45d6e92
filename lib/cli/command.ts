/** What every CLI command is, and the argument parsing they share. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BACKENDS, BACKEND_NAMES, type BackendOptions, parseBackendChoice } from '../backend.js';
import { MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS } from '../io/image.js';
import { UsageError } from '../options/values.js';

export { UsageError, intOption, numberOption, refuseTogether } from '../options/values.js';

/** The input image limits, for the usage texts. */
export const IMAGE_LIMITS = `Images: PNG, JPEG, GIF or BMP, at most ${MAX_IMAGE_PIXELS / 2 ** 20} megapixels (${Math.sqrt(MAX_IMAGE_PIXELS)}x${Math.sqrt(MAX_IMAGE_PIXELS)}) and ${MAX_IMAGE_BYTES / 2 ** 20} MiB.`;

/** Where a command writes: results to `out` (stdout), messages and progress to `err` (stderr). */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
  /** Writes to stderr as is (no newline added): progress bars redraw a line with it. */
  errRaw(text: string): void;
  /** Whether stderr is a terminal (progress bars are drawn only then). */
  readonly isTTY: boolean;
}

/** A sub-command of `pix2pix-zero` (made with `defineCommand` of run-command.ts, which writes the shared part). */
export interface Command {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** The full usage text (`pix2pix-zero <name> --help`). */
  readonly usage: string;
  /** Runs the command; resolves to the process exit code (a command made by `defineCommand` never rejects). */
  run(argv: string[], io: CliIO): Promise<number>;
}

/** Exit codes: 0 success, 1 failure (bad input, missing files, runtime error), 2 bad command line. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** Options every command accepts. */
export const COMMON_OPTIONS = {
  json: { type: 'boolean', default: false },
  debug: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  backend: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

/** A value that starts with a dash but is a number (`-1`, `-.5`, `-2e3`): the value of the option before it. */
const NEGATIVE_NUMBER = /^-(\d|\.\d)/;

/**
 * `util.parseArgs` in strict mode, turning its errors into {@link UsageError}s. A negative number after an option
 * that takes a value is that option's value (`--direction-scale -1`), and an option that takes one value may be
 * given once: a repeat is refused rather than silently resolved.
 */
export function parseCommandLine<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: T,
): ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: true; strict: true }>> {
  const takesValue = (arg: string | undefined): boolean => arg !== undefined && arg.startsWith('--') && !arg.includes('=') && options[arg.slice(2)]?.type === 'string';
  const args = argv.flatMap((a, i) => (takesValue(argv[i - 1]) && NEGATIVE_NUMBER.test(a) ? [] : takesValue(a) && NEGATIVE_NUMBER.test(argv[i + 1] ?? '') ? [`${a}=${argv[i + 1]}`] : [a]));
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: true; strict: true; tokens: true }>>;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true as const, strict: true as const, tokens: true as const });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const given = new Map<string, string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option' || token.value === undefined || options[token.name]?.multiple === true) continue;
    const before = given.get(token.name);
    if (before !== undefined) throw new UsageError(`--${token.name} is given twice ('${before}' and '${token.value}'): give it once`);
    given.set(token.name, token.value);
  }
  return { values: parsed.values, positionals: parsed.positionals };
}

/** The `--backend` option's synopsis, from the backend table: `--backend auto|tensorflow|wasm|cpu`. */
export const BACKEND_SYNOPSIS = `--backend auto|${BACKEND_NAMES.join('|')}`;

/** The `--backend` option's help: what `auto` does, and one line per backend of the table. */
export const BACKEND_HELP = [
  `${BACKEND_SYNOPSIS}: the tfjs backend (default: $PIX2PIX_ZERO_BACKEND, else the best present, in this order):`,
  ...BACKENDS.map((b) => `    ${b.name.padEnd(11)} ${b.description}`),
].join('\n');

/**
 * The `--backend` and `--debug` options as backend options (a bad name is a usage error); `--debug` lets native
 * TensorFlow's start-up log lines through.
 */
export function backendOption(value: string | undefined, debug = false): BackendOptions {
  const logs = debug ? { nativeLogs: true } : {};
  if (value === undefined) return logs;
  try {
    return { backend: parseBackendChoice(value, '--backend'), ...logs };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
