/**
 * The CLIP tokenizer of Stable Diffusion, on `@huggingface/tokenizers`, encoding exactly as transformers'
 * `CLIPTokenizer` (transformers 5.x) does for a diffusers `tokenizer/` folder.
 *
 * transformers 5 has only the fast (Rust `tokenizers`) CLIP tokenizer, and it builds the same pipeline whatever
 * the folder holds (`tokenizer.json` contributes only its vocabulary and merges); there is no ftfy step any more:
 * - normalizer: NFC, every run of Unicode white space to one space, lower-casing (per code point, so a final
 *   capital sigma becomes `σ`, not `ς`);
 * - pre-tokenizer: CLIP's split regex (`<|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|
 *   [^\s\p{L}\p{N}]+`, white space dropped), then GPT-2's byte-level regex and byte-to-unicode mapping;
 * - model: BPE with the end-of-word suffix `</w>` and `<|endoftext|>` as unknown token;
 * - special tokens (bos, eos, unk, pad, ...) are matched in the text before normalization (or after it, when the
 *   folder's config marks them `normalized`), so the pad token `!` of SD 2.x folders encodes as id 0 when it
 *   appears in a prompt, as it does in transformers;
 * - `<|startoftext|>` ... `<|endoftext|>` around the text, truncation to `model_max_length` (77) keeping the end
 *   token, padding on the right with the folder's pad token.
 *
 * The older slow tokenizer without ftfy (transformers 4.x) differed: it dropped control characters and split CJK
 * ideographs into single-character words. This class follows transformers 5.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { Tokenizer } from '@huggingface/tokenizers';
import type { TokenizerFiles } from '../io/model-folder.js';
import { type JsonObject, isJsonObject, readJsonObject } from '../io/json.js';
import { type FittedIds, type SpecialToken, configMaxLength, fitToLength, parseSpecialToken } from './common.js';
import { readTextFile } from '../io/text-file.js';

/** CLIP's start and end tokens. */
export const CLIP_BOS = '<|startoftext|>';
export const CLIP_EOS = '<|endoftext|>';
/** The end-of-word suffix of CLIP's BPE. */
export const END_OF_WORD = '</w>';
/** How many merges CLIP uses from its BPE file (49,152 tokens minus 256 bytes minus the 2 special tokens). */
export const CLIP_NUM_MERGES = 49152 - 256 - 2;

/** CLIP's word split, as transformers' `CLIPTokenizer` configures it. */
const CLIP_SPLIT = String.raw`<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`;
/** GPT-2's split, which the byte-level pre-tokenizer applies to each piece (`use_regex: true`). */
const GPT2_SPLIT = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;

/** A BPE merge: the two symbols that are joined. */
export type Merge = readonly [string, string];

/**
 * GPT-2/CLIP's reversible map from the 256 byte values to printable characters, in CLIP's order (the printable
 * Latin-1 bytes first, then the rest mapped to U+0100...). The first 256 vocabulary entries are these characters.
 */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  return cs.map((c) => String.fromCodePoint(c));
}

/**
 * CLIP's vocabulary built from its merges, as OpenAI's `SimpleTokenizer` (and so the `vocab.json` of every
 * CLIP/SD tokenizer) builds it: the 256 byte characters, the same with `</w>`, one token per merge, then
 * `<|startoftext|>` and `<|endoftext|>`. A token repeated later takes the later id (as a Python dict does).
 */
export function clipVocabFromMerges(merges: readonly Merge[]): Map<string, number> {
  const base = bytesToUnicode();
  const tokens = [...base, ...base.map((c) => c + END_OF_WORD), ...merges.map(([a, b]) => a + b), CLIP_BOS, CLIP_EOS];
  const vocab = new Map<string, number>();
  tokens.forEach((t, i) => vocab.set(t, i));
  return vocab;
}

/**
 * Parses a `merges.txt` as the Rust tokenizers library reads it: lines starting with `#version` are skipped,
 * every other non-empty line is two symbols separated by one space.
 * @throws Error naming `source` and the line of the first malformed merge.
 */
export function parseMerges(text: string, source = 'merges.txt'): Merge[] {
  const merges: Merge[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.length === 0 || line.startsWith('#version')) return;
    const parts = line.split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw new Error(`${source}: line ${i + 1} is not a merge of two symbols separated by one space: ${JSON.stringify(line.slice(0, 80))}`);
    }
    merges.push([parts[0]!, parts[1]!]);
  });
  return merges;
}

/**
 * Reads the merges of OpenAI/open_clip's `bpe_simple_vocab_16e6.txt.gz` as CLIP does: the first line is a
 * header, the next {@link CLIP_NUM_MERGES} lines are used, each split on white space.
 */
export function readOpenClipBpe(file: string): Merge[] {
  let text: string;
  try {
    const raw = fs.readFileSync(file);
    text = (file.endsWith('.gz') ? zlib.gunzipSync(raw) : raw).toString('utf8');
  } catch (err) {
    throw new Error(`cannot read the CLIP BPE file ${file}: ${(err as Error).message}`);
  }
  const lines = text.split('\n').slice(1, CLIP_NUM_MERGES + 1);
  return lines.map((line, i) => {
    const parts = line.split(/\s+/).filter((p) => p.length > 0);
    if (parts.length !== 2) throw new Error(`${file}: line ${i + 2} is not a merge of two symbols`);
    return [parts[0]!, parts[1]!] as const;
  });
}

/** Lower-cases per code point, as Rust's `char::to_lowercase` (no final-sigma rule, unlike `toLowerCase`). */
function lowercasePerCodePoint(text: string): string {
  if (!text.includes('\u03a3')) return text.toLowerCase();
  let out = '';
  for (const ch of text) out += ch.toLowerCase();
  return out;
}

/** transformers' CLIP normalizer: NFC, runs of white space (Oniguruma's `\s`) to one space, lower-case. */
export function clipNormalize(text: string): string {
  return lowercasePerCodePoint(text.normalize('NFC').replace(/\p{White_Space}+/gu, ' '));
}

/**
 * The library's normalizers are callable objects with a `normalize` method; its type declarations do not export
 * the base class, so the CLIP normalizer is built in that shape.
 */
function clipNormalizer(): Tokenizer['normalizer'] {
  const call = (text: string): string => clipNormalize(text);
  return Object.assign(call, { normalize: call, config: { type: 'Lowercase' } }) as unknown as Tokenizer['normalizer'];
}

/** The special-token attributes of a transformers tokenizer, in the order transformers adds them. */
const SPECIAL_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;
type SpecialKey = (typeof SPECIAL_KEYS)[number];

/** The special tokens of a CLIP tokenizer and the added tokens that the text is split on. */
export interface ClipSpecialTokens {
  readonly bos: string;
  readonly eos: string;
  readonly unk: string;
  readonly pad: string;
  /** Every added token, with the flags transformers ends up with (the last definition of a content wins). */
  readonly added: readonly SpecialToken[];
}

/** CLIPTokenizer's defaults, used where a folder's configs name no token. */
const CLIP_DEFAULTS: Partial<Record<SpecialKey, string>> = { bos_token: CLIP_BOS, eos_token: CLIP_EOS, unk_token: CLIP_EOS, pad_token: CLIP_EOS };

/**
 * Resolves the special tokens of a tokenizer folder as transformers 5 does: `tokenizer_config.json` values,
 * overridden by `special_tokens_map.json` unless the config has an `added_tokens_decoder` (whose entries then
 * define the flags of the tokens they name), CLIPTokenizer's defaults for the rest. A token given as a string is
 * matched in the raw text; an object keeps its `normalized` flag.
 */
export function resolveClipSpecialTokens(config: JsonObject, specialTokensMap: JsonObject = {}): ClipSpecialTokens {
  const decoder = isJsonObject(config.added_tokens_decoder) ? config.added_tokens_decoder : undefined;
  const values = new Map<SpecialKey, SpecialToken>();
  for (const key of SPECIAL_KEYS) {
    // In tokenizer_config.json, a serialised AddedToken ({"__type": "AddedToken"}) is not marked special, so its
    // `normalized` defaults to true; a plain object is made special, defaulting to false.
    const raw = config[key];
    const fromConfig = parseSpecialToken(raw, isJsonObject(raw) && raw.__type === 'AddedToken');
    const fromMap = decoder === undefined ? parseSpecialToken(specialTokensMap[key], false) : undefined;
    const fallback = CLIP_DEFAULTS[key];
    const token = fromMap ?? fromConfig ?? (fallback !== undefined ? parseSpecialToken(fallback, false) : undefined);
    if (token !== undefined) values.set(key, token);
  }
  const extraRaw = config.additional_special_tokens ?? config.extra_special_tokens ?? specialTokensMap.additional_special_tokens;
  const extras = Array.isArray(extraRaw) ? extraRaw.map((v) => parseSpecialToken(v, false)).filter((t) => t !== undefined) : [];

  // transformers adds the config's added_tokens_decoder entries (by id), then each special token whose content
  // they do not already define, then the extra tokens; the backend keeps the last flags given for a content.
  const ordered: SpecialToken[] = [];
  const fromDecoder = new Set<string>();
  if (decoder !== undefined) {
    const entries = Object.entries(decoder)
      .map(([id, v]) => [Number(id), parseSpecialToken(v, isJsonObject(v) && v.special !== true)] as const)
      .sort((a, b) => a[0] - b[0]);
    for (const [, t] of entries) {
      if (t === undefined) continue;
      ordered.push(t);
      fromDecoder.add(t.content);
    }
  }
  for (const t of [...values.values(), ...extras]) if (!fromDecoder.has(t.content)) ordered.push(t);
  const last = new Map<string, SpecialToken>();
  for (const t of ordered) {
    last.delete(t.content);
    last.set(t.content, t);
  }
  const content = (key: SpecialKey): string => values.get(key)?.content ?? CLIP_DEFAULTS[key]!;
  return { bos: content('bos_token'), eos: content('eos_token'), unk: content('unk_token'), pad: content('pad_token'), added: [...last.values()] };
}

/** Options of {@link ClipTokenizer.encode}. */
export interface ClipEncodeOptions {
  /** The length to truncate and pad to (default: the tokenizer's `modelMaxLength`). */
  maxLength?: number;
}

/** One prompt encoded to a fixed length. */
export type ClipEncoding = FittedIds;

/** Where a {@link ClipTokenizer} came from and its limits. */
export interface ClipTokenizerOptions {
  /** Truncation/padding length (transformers' `model_max_length`); default 77. */
  modelMaxLength?: number;
  /** For messages. */
  source?: string;
}

/** The JSON form of a `tokenizer.json` this class builds (the subset `@huggingface/tokenizers` reads). */
interface TokenizerJsonForm {
  added_tokens: { id: number; content: string; special: boolean; normalized: boolean; lstrip: boolean; rstrip: boolean; single_word: boolean }[];
  normalizer: JsonObject | null;
  pre_tokenizer: JsonObject | null;
  post_processor: JsonObject | null;
  decoder: JsonObject | null;
  model: JsonObject;
}

/**
 * Stable Diffusion's CLIP tokenizer. Build it with {@link ClipTokenizer.fromFolder} (a diffusers `tokenizer/`
 * folder), {@link ClipTokenizer.fromVocabAndMerges} or {@link ClipTokenizer.fromOpenClipBpe}.
 */
export class ClipTokenizer {
  private readonly tokenizer: Tokenizer;
  /** Length every {@link encode} result has (77 for Stable Diffusion). */
  readonly modelMaxLength: number;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly padTokenId: number;
  readonly unkTokenId: number;
  /** Number of entries of the vocabulary, added tokens included. */
  readonly vocabSize: number;
  readonly special: ClipSpecialTokens;
  readonly source: string;

  private constructor(vocab: ReadonlyMap<string, number>, merges: readonly Merge[], special: ClipSpecialTokens, options: ClipTokenizerOptions) {
    this.source = options.source ?? 'CLIP tokenizer';
    this.modelMaxLength = options.modelMaxLength ?? 77;
    this.special = special;
    if (!Number.isInteger(this.modelMaxLength) || this.modelMaxLength < 2) {
      throw new Error(`${this.source}: model_max_length must be an integer >= 2, got ${this.modelMaxLength}`);
    }
    // Added tokens take their vocabulary id, or new ids after the vocabulary (as the Rust library assigns them).
    const ids = new Map(vocab);
    let nextId = vocab.size;
    for (const id of vocab.values()) if (id >= nextId) nextId = id + 1;
    const added = special.added.map((t) => {
      let id = ids.get(t.content);
      if (id === undefined) {
        id = nextId++;
        ids.set(t.content, id);
      }
      return { id, content: t.content, special: true, normalized: t.normalized, lstrip: t.lstrip, rstrip: t.rstrip, single_word: t.singleWord };
    });
    if (!vocab.has(special.unk)) throw new Error(`${this.source}: the unknown token ${JSON.stringify(special.unk)} is not in the vocabulary`);
    const json: TokenizerJsonForm = {
      added_tokens: added,
      normalizer: { type: 'Lowercase' }, // replaced below by the exact CLIP normalizer
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { Regex: CLIP_SPLIT }, behavior: 'Removed', invert: true },
          // The byte-level step's own regex, written as a Split so that `\s` has Oniguruma's meaning (JavaScript's
          // `\s` also matches U+FEFF); it matches every character, so keeping the matches loses nothing.
          { type: 'Split', pattern: { Regex: GPT2_SPLIT }, behavior: 'Removed', invert: true },
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
        ],
      },
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE',
        vocab: Object.fromEntries(vocab),
        merges: merges.map(([a, b]) => [a, b]),
        unk_token: special.unk,
        continuing_subword_prefix: '',
        end_of_word_suffix: END_OF_WORD,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        dropout: null,
      },
    };
    this.tokenizer = new Tokenizer(json, { clean_up_tokenization_spaces: false });
    this.tokenizer.normalizer = clipNormalizer();
    const idOf = (t: string): number => {
      const id = ids.get(t);
      if (id === undefined) throw new Error(`${this.source}: token ${JSON.stringify(t)} is not in the vocabulary`);
      return id;
    };
    this.bosTokenId = idOf(special.bos);
    this.eosTokenId = idOf(special.eos);
    this.padTokenId = idOf(special.pad);
    this.unkTokenId = idOf(special.unk);
    this.vocabSize = ids.size;
  }

  /** A tokenizer from a vocabulary and merges; `config`/`specialTokensMap` as in a tokenizer folder. */
  static fromVocabAndMerges(
    vocab: ReadonlyMap<string, number> | Readonly<Record<string, number>>,
    merges: readonly Merge[],
    config: JsonObject = {},
    specialTokensMap: JsonObject = {},
    options: ClipTokenizerOptions = {},
  ): ClipTokenizer {
    const map = vocab instanceof Map ? vocab : new Map(Object.entries(vocab));
    return new ClipTokenizer(map, merges, resolveClipSpecialTokens(config, specialTokensMap), {
      modelMaxLength: options.modelMaxLength ?? configMaxLength(config) ?? 77,
      source: options.source,
    });
  }

  /**
   * CLIP's tokenizer from OpenAI/open_clip's BPE file (`bpe_simple_vocab_16e6.txt.gz`): the vocabulary of
   * {@link clipVocabFromMerges}, SD 1.x special tokens (pad = `<|endoftext|>`) unless `config` says otherwise.
   */
  static fromOpenClipBpe(file: string, config: JsonObject = { model_max_length: 77 }, options: ClipTokenizerOptions = {}): ClipTokenizer {
    const merges = readOpenClipBpe(file);
    return ClipTokenizer.fromVocabAndMerges(clipVocabFromMerges(merges), merges, config, {}, { source: file, ...options });
  }

  /**
   * The tokenizer of a folder (`readTokenizerFolder`): the vocabulary and merges of `tokenizer.json` when there is
   * one (transformers ignores the rest of that file for CLIP, and so does this), else `vocab.json` + `merges.txt`.
   */
  static fromFolder(files: TokenizerFiles, options: ClipTokenizerOptions = {}): ClipTokenizer {
    const source = options.source ?? `CLIP tokenizer in ${files.dir}`;
    let vocab: Map<string, number>;
    let merges: Merge[];
    let config = files.config;
    if (files.tokenizerJson !== undefined) {
      // transformers prefers tokenizer.json; without an added_tokens_decoder in the config, the file's
      // added_tokens take its place.
      const json = readJsonObject(files.tokenizerJson, 'tokenizer.json');
      ({ vocab, merges } = bpeFromTokenizerJson(json, files.tokenizerJson));
      if (!isJsonObject(config.added_tokens_decoder) && Array.isArray(json.added_tokens)) {
        const decoder: JsonObject = {};
        for (const t of json.added_tokens) if (isJsonObject(t) && typeof t.id === 'number') decoder[String(t.id)] = t;
        config = { ...config, added_tokens_decoder: decoder };
      }
    } else if (files.vocabJson !== undefined && files.merges !== undefined) {
      vocab = vocabFromJson(readJsonObject(files.vocabJson, 'CLIP vocabulary'), files.vocabJson);
      merges = parseMerges(readTextFile(files.merges, 'the CLIP merges'), files.merges);
    } else {
      throw new Error(`${source}: expected tokenizer.json or vocab.json + merges.txt (a CLIP BPE tokenizer), found neither`);
    }
    return ClipTokenizer.fromVocabAndMerges(vocab, merges, config, files.specialTokens, { ...options, source });
  }

  /** The BPE tokens of `text`, without special tokens, untruncated. */
  tokenize(text: string): string[] {
    return this.tokenizer.tokenize(text, { add_special_tokens: false });
  }

  /** `[bos, ...ids of text, eos]`, untruncated and unpadded. */
  encodeUnpadded(text: string): number[] {
    return [this.bosTokenId, ...this.contentIds(text), this.eosTokenId];
  }

  /**
   * `text` as Stable Diffusion feeds it to the text encoder (transformers' `padding="max_length",
   * truncation=True`): `[bos, ...ids, eos]` cut to `maxLength` keeping `eos`, padded with the pad token.
   */
  encode(text: string, options: ClipEncodeOptions = {}): ClipEncoding {
    const maxLength = options.maxLength ?? this.modelMaxLength;
    return fitToLength(this.contentIds(text), [this.bosTokenId], [this.eosTokenId], maxLength, this.padTokenId);
  }

  /** Several texts encoded with {@link encode}, as one row-major `[texts.length, maxLength]` array of ids. */
  encodeBatch(texts: readonly string[], options: ClipEncodeOptions = {}): Int32Array {
    const maxLength = options.maxLength ?? this.modelMaxLength;
    const out = new Int32Array(texts.length * maxLength);
    texts.forEach((t, i) => out.set(this.encode(t, { maxLength }).ids, i * maxLength));
    return out;
  }

  /** Text of `ids` (special tokens dropped unless `keepSpecial`), with `</w>` read as a space. */
  decode(ids: readonly number[], keepSpecial = false): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode([...ids], { skip_special_tokens: !keepSpecial, clean_up_tokenization_spaces: false }).trim();
  }

  /** The id of a token, or undefined. */
  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  private contentIds(text: string): number[] {
    if (typeof text !== 'string') throw new TypeError(`${this.source}: expected a string to encode, got ${typeof text}`);
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }
}

function vocabFromJson(json: JsonObject, source: string): Map<string, number> {
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(json)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new Error(`${source}: token ${JSON.stringify(token)} has id ${JSON.stringify(id)}, expected a non-negative integer`);
    }
    vocab.set(token, id);
  }
  if (vocab.size === 0) throw new Error(`${source}: the vocabulary is empty`);
  return vocab;
}

function bpeFromTokenizerJson(json: JsonObject, source: string): { vocab: Map<string, number>; merges: Merge[] } {
  const model = json.model;
  if (!isJsonObject(model) || (model.type !== undefined && model.type !== 'BPE') || !isJsonObject(model.vocab) || !Array.isArray(model.merges)) {
    throw new Error(`${source}: not a BPE tokenizer (expected model.type "BPE" with a vocab object and a merges list)`);
  }
  const merges = model.merges.map((m, i): Merge => {
    const parts = typeof m === 'string' ? m.split(' ') : Array.isArray(m) ? m : [];
    if (parts.length !== 2 || typeof parts[0] !== 'string' || typeof parts[1] !== 'string') {
      throw new Error(`${source}: merge ${i} is not two symbols: ${JSON.stringify(m)}`);
    }
    return [parts[0], parts[1]];
  });
  return { vocab: vocabFromJson(model.vocab, source), merges };
}
