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
 *
 * The pieces, one a file: the vocabulary and CLIP's constants (`clip-vocab.ts`), the file parsers
 * (`clip-files.ts`), the normalizer (`clip-normalizer.ts`), the special-token rules (`clip-special-tokens.ts`) and
 * the `tokenizer.json` builder (`clip-tokenizer-json.ts`); this module re-exports them.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import type { TokenizerFiles } from '../io/model-folder.js';
import { type JsonObject, isJsonObject, readJsonObject } from '../io/json.js';
import { readTextFile } from '../io/text-file.js';
import { bpeFromTokenizerJson, parseMerges, readOpenClipBpe, vocabFromJson } from './clip-files.js';
import { clipNormalizer } from './clip-normalizer.js';
import { type ClipSpecialTokens, resolveClipSpecialTokens } from './clip-special-tokens.js';
import { clipTokenizerJson } from './clip-tokenizer-json.js';
import { type Merge, clipVocabFromMerges } from './clip-vocab.js';
import { type FittedIds, configMaxLength, fitToLength } from './common.js';

export { CLIP_BOS, CLIP_EOS, CLIP_NUM_MERGES, END_OF_WORD, bytesToUnicode, clipVocabFromMerges, type Merge } from './clip-vocab.js';
export { parseMerges, readOpenClipBpe } from './clip-files.js';
export { clipNormalize } from './clip-normalizer.js';
export { resolveClipSpecialTokens, type ClipSpecialTokens } from './clip-special-tokens.js';

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
    if (!vocab.has(special.unk)) throw new Error(`${this.source}: the unknown token ${JSON.stringify(special.unk)} is not in the vocabulary`);
    const { json, ids } = clipTokenizerJson(vocab, merges, special);
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
