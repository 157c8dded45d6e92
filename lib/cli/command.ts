/** What every CLI command is, and the argument parsing they share. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { type BackendOptions, parseBackendChoice } from '../backend.js';
import { MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS } from '../io/image.js';

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

/** A sub-command of `pix2pix-zero`. */
export interface Command {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** The full usage text (`pix2pix-zero <name> --help`). */
  readonly usage: string;
  /** Runs the command; resolves to the process exit code. */
  run(argv: string[], io: CliIO): Promise<number>;
}

/** A mistake in the command line: printed with the usage hint, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
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

/** `util.parseArgs` in strict mode, turning its errors into {@link UsageError}s. */
export function parseCommandLine<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: T,
): ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: true; strict: true }>> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true as const, strict: true as const });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Parses an integer option within [min, max], naming the option in the error. */
export function intOption(value: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer in [${min}, ${max}], got '${value}'`);
  }
  return n;
}

/** Parses a number option within [min, max], naming the option in the error. */
export function numberOption(value: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a number in [${min}, ${max}], got '${value}'`);
  }
  return n;
}

/** The `--backend` option as backend options (a bad name is a usage error). */
export function backendOption(value: string | undefined): BackendOptions {
  if (value === undefined) return {};
  try {
    return { backend: parseBackendChoice(value, '--backend') };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
