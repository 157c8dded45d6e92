/**
 * Typed fields of a `config.json` (a model's, a scheduler's, a processor's), read with one error wording:
 * `<source>: '<key>' must be <expected>, got <value>`, where `source` names the file. A missing or null field
 * takes the fallback the config's class gives it (as diffusers and transformers do); every size a config gives is
 * bounded by {@link MAX_CONFIG_SIZE} before anything is allocated from it.
 */
import type { JsonObject } from './json.js';

/** The largest size (channels, width, vocabulary, layers, positions) a config may give. */
export const MAX_CONFIG_SIZE = 1 << 20;

/** Throws naming `key` (of `source`, the config file) when `value` is not a size below {@link MAX_CONFIG_SIZE}. */
export function assertConfigSize(source: string, key: string, value: number): void {
  if (value > MAX_CONFIG_SIZE) throw new Error(`${source}: ${key} is ${value}, larger than any model this library runs (at most ${MAX_CONFIG_SIZE})`);
}

/** A type guard for a config value. */
export type FieldCheck<T> = (v: unknown) => v is T;

/** Whether `v` is a finite number. */
export const isFiniteNumber: FieldCheck<number> = (v): v is number => typeof v === 'number' && Number.isFinite(v);
/** Whether `v` is a boolean. */
export const isBoolean: FieldCheck<boolean> = (v): v is boolean => typeof v === 'boolean';
/** Whether `v` is an integer. */
export const isInteger: FieldCheck<number> = (v): v is number => typeof v === 'number' && Number.isInteger(v);
/** Whether `v` is an integer >= `min`. */
export const isIntegerAtLeast =
  (min: number): FieldCheck<number> =>
  (v): v is number =>
    typeof v === 'number' && Number.isInteger(v) && v >= min;
/** Whether `v` is one of the strings `values`. */
export const isOneOf =
  <T extends string>(...values: T[]): FieldCheck<T> =>
  (v): v is T =>
    typeof v === 'string' && (values as string[]).includes(v);

/** A config value as the errors show it. */
export function showConfigValue(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

/** The typed fields of one config object; every error names `source`, the key, what was expected and what was there. */
export class ConfigFields {
  /**
   * @param json the parsed config object.
   * @param source names the file (or the part of it) in errors: "UNet config", `.../vae/config.json`.
   */
  constructor(
    readonly json: JsonObject,
    readonly source: string,
  ) {}

  /** The error for `key`: `<source>: '<key>' <why>`. */
  error(key: string, why: string): Error {
    return new Error(`${this.source}: '${key}' ${why}`);
  }

  /**
   * The value of `key` when it passes `ok`; `fallback` when it is missing or null.
   * @throws Error `'<key>' must be <expected>, got <value>`, or `'<key>' is missing` when there is no fallback.
   */
  field<T>(key: string, ok: FieldCheck<T>, expected: string, fallback?: T): T {
    const v = this.json[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw this.error(key, `is missing (expected ${expected})`);
    }
    if (!ok(v)) throw this.error(key, `must be ${expected}, got ${showConfigValue(v)}`);
    return v;
  }

  /** The value of `key` when it passes `ok`; undefined when it is missing or null. */
  optional<T>(key: string, ok: FieldCheck<T>, expected: string): T | undefined {
    const v = this.json[key];
    if (v === undefined || v === null) return undefined;
    return this.field(key, ok, expected);
  }

  /** Throws naming `key` (`'<key>'[i]` for a list's entry) when an integer in `value` is larger than {@link MAX_CONFIG_SIZE}. */
  assertSizes(key: string, value: unknown): void {
    const list = Array.isArray(value) ? (value as unknown[]) : [value];
    list.forEach((x, i) => {
      if (typeof x === 'number' && Number.isInteger(x)) assertConfigSize(this.source, Array.isArray(value) ? `'${key}'[${i}]` : `'${key}'`, x);
    });
  }

  /** {@link field}, then {@link assertSizes}: for a value that is a size or a list of sizes. */
  sized<T>(key: string, ok: FieldCheck<T>, expected: string, fallback?: T): T {
    const v = this.field(key, ok, expected, fallback);
    this.assertSizes(key, v);
    return v;
  }

  /** Throws naming `key` when `value` (its value) is not a multiple of `divisor` (the value of `divisorKey`). */
  assertMultiple(key: string, value: number, divisorKey: string, divisor: number): void {
    if (value % divisor !== 0) throw this.error(key, `(${value}) is not a multiple of ${divisorKey} (${divisor})`);
  }

  /** A size: an integer >= `min` (1 unless given) and at most {@link MAX_CONFIG_SIZE}. `expected` words it in errors. */
  int(key: string, fallback: number, min = 1, expected = `an integer >= ${min}`): number {
    return this.sized(key, isIntegerAtLeast(min), expected, fallback);
  }

  /** A boolean (`expected` words it in errors). */
  bool(key: string, fallback: boolean, expected = 'true or false'): boolean {
    return this.field(key, isBoolean, expected, fallback);
  }

  /** A number > 0. */
  positive(key: string, fallback: number): number {
    return this.field(key, (v): v is number => typeof v === 'number' && v > 0, 'a positive number', fallback);
  }

  /** A string. */
  string(key: string, fallback: string): string {
    return this.field(key, (v): v is string => typeof v === 'string', 'a string', fallback);
  }
}
