/**
 * Helpers every tokenizer here shares: reading special tokens and lengths from a transformers tokenizer folder's
 * configs, an added token as `tokenizer.json` lists it, lower-casing as the Rust library does, and fitting an
 * encoding to a fixed length (truncate keeping the special tokens, then pad).
 */
import type { JsonObject } from '../io/json.js';
import { isJsonObject } from '../io/json.js';

/** A special token as transformers stores it: a plain string, or an `AddedToken` object with its flags. */
export interface SpecialToken {
  readonly content: string;
  /** Whether the token is matched in the normalized text (true) or in the raw text (false). */
  readonly normalized: boolean;
  readonly lstrip: boolean;
  readonly rstrip: boolean;
  readonly singleWord: boolean;
}

/**
 * Parses a special-token value from `tokenizer_config.json` / `special_tokens_map.json`: a string (transformers
 * makes it a special token matched in the raw text, `normalized: false`), or an object
 * `{content, normalized?, lstrip?, rstrip?, single_word?}` (optionally with `"__type": "AddedToken"`) whose
 * missing `normalized` is `normalizedDefault`. Anything else is `undefined`.
 */
export function parseSpecialToken(value: unknown, normalizedDefault = false): SpecialToken | undefined {
  if (typeof value === 'string') return { content: value, normalized: false, lstrip: false, rstrip: false, singleWord: false };
  if (isJsonObject(value) && typeof value.content === 'string') {
    const flag = (k: string): boolean => value[k] === true;
    const normalized = typeof value.normalized === 'boolean' ? value.normalized : normalizedDefault;
    return { content: value.content, normalized, lstrip: flag('lstrip'), rstrip: flag('rstrip'), singleWord: flag('single_word') };
  }
  return undefined;
}

/** An entry of a `tokenizer.json`'s `added_tokens`, as the tokenizers built here write them (always special). */
export type AddedTokenJson = {
  id: number;
  content: string;
  special: boolean;
  normalized: boolean;
  lstrip: boolean;
  rstrip: boolean;
  single_word: boolean;
};

/** `token` with id `id` as an entry of a `tokenizer.json`'s `added_tokens`, a special token. */
export function addedTokenJson(id: number, token: SpecialToken): AddedTokenJson {
  return { id, content: token.content, special: true, normalized: token.normalized, lstrip: token.lstrip, rstrip: token.rstrip, single_word: token.singleWord };
}

/**
 * `text` with every capital sigma (U+03A3) as a small sigma (U+03C3), as the Rust library's per-character
 * lower-casing makes it: JavaScript's `toLowerCase()` applies Unicode's Final_Sigma rule (`ς` at a word's end),
 * its only context-dependent mapping. Apply it before anything that lower-cases with `toLowerCase()`.
 */
export function withoutFinalSigma(text: string): string {
  return text.replaceAll('\u03a3', '\u03c3');
}

/** Lower-cases per code point, as Rust's `char::to_lowercase` (no final-sigma rule, unlike `toLowerCase`). */
export function lowercasePerCodePoint(text: string): string {
  return withoutFinalSigma(text).toLowerCase();
}

/** transformers' "no limit" `model_max_length` (`VERY_LARGE_INTEGER`) and anything at least this large. */
const UNLIMITED = 1e15;

/**
 * The `model_max_length` of a tokenizer config, or `undefined` when it is absent, not a positive integer, or
 * transformers' "unlimited" placeholder.
 */
export function configMaxLength(config: JsonObject): number | undefined {
  const v = config.model_max_length;
  return typeof v === 'number' && Number.isInteger(v) && v > 0 && v < UNLIMITED ? v : undefined;
}

/** A fixed-length encoding. */
export interface FittedIds {
  /** Exactly `maxLength` ids. */
  readonly ids: number[];
  /** 1 for real tokens, 0 for padding. */
  readonly attentionMask: number[];
  /** Whether content tokens were dropped to fit. */
  readonly truncated: boolean;
}

/**
 * Fits `prefix + content + suffix` into `maxLength` ids as transformers does with `truncation=True,
 * padding="max_length"` for a single sequence: content tokens are dropped from the end so that the special
 * tokens (`prefix`, `suffix`) stay, then `padId` fills up to `maxLength` on the right.
 * @throws Error if the special tokens alone do not fit.
 */
export function fitToLength(
  content: readonly number[],
  prefix: readonly number[],
  suffix: readonly number[],
  maxLength: number,
  padId: number,
): FittedIds {
  const room = maxLength - prefix.length - suffix.length;
  if (room < 0) throw new Error(`a maximum length of ${maxLength} leaves no room for the ${prefix.length + suffix.length} special tokens`);
  const kept = content.length > room ? content.slice(0, room) : content;
  const ids = [...prefix, ...kept, ...suffix];
  const attentionMask = ids.map(() => 1);
  while (ids.length < maxLength) {
    ids.push(padId);
    attentionMask.push(0);
  }
  return { ids, attentionMask, truncated: kept.length < content.length };
}
