/**
 * The validation of option values shared by the CLI and the HTTP service: a mistake is a {@link UsageError} whose
 * message names the option (`--steps must be an integer in [1, 1000], got 'x'`), printed by the CLI with its usage
 * hint and answered by the service with `400`.
 */

/** A mistake in the command line or in a request's fields: printed with the usage hint (exit code 2), or answered with 400. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * Refuses options that contradict each other: for each `[option, others]`, `option` may not be given with any of
 * `others` (the message names both).
 */
export function refuseTogether(values: Record<string, unknown>, rules: readonly (readonly [string, readonly string[]])[], why = 'contradict each other'): void {
  const isGiven = (k: string): boolean => values[k] !== undefined && values[k] !== false;
  for (const [option, others] of rules) {
    const clash = others.find(isGiven);
    if (isGiven(option) && clash !== undefined) throw new UsageError(`--${option} and --${clash} ${why}: give one of them`);
  }
}

/** Decimal integers (`12`, `-3`): not `0x3`, `1e3`, `1.0` or `' 5'`, which Number() would take. */
const INTEGER = /^[+-]?\d+$/;
/** Decimal numbers (`-1`, `0.5`, `.5`, `2e-3`): not hex, binary, `Infinity` or padded text. */
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** Parses an integer option within [min, max], naming the option in the error. */
export function intOption(value: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!INTEGER.test(value) || !Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer in [${min}, ${max}], got '${value}'`);
  }
  return n;
}

/** Parses a number option within [min, max], naming the option in the error. */
export function numberOption(value: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!DECIMAL.test(value) || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a number in [${min}, ${max}], got '${value}'`);
  }
  return n;
}

