/** The `tokenizer.json` of Stable Diffusion's CLIP tokenizer, built as transformers 5 builds it. */
import type { JsonObject } from '../io/json.js';
import type { ClipSpecialTokens } from './clip-special-tokens.js';
import { END_OF_WORD, type Merge } from './clip-vocab.js';
import { type AddedTokenJson, addedTokenJson } from './common.js';

/** CLIP's word split, as transformers' `CLIPTokenizer` configures it. */
const CLIP_SPLIT = String.raw`<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`;
/** GPT-2's split, which the byte-level pre-tokenizer applies to each piece (`use_regex: true`). */
const GPT2_SPLIT = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;

/** The JSON form of a `tokenizer.json` {@link clipTokenizerJson} builds (the subset `@huggingface/tokenizers` reads). */
export interface ClipTokenizerJson {
  added_tokens: AddedTokenJson[];
  normalizer: JsonObject | null;
  pre_tokenizer: JsonObject | null;
  post_processor: JsonObject | null;
  decoder: JsonObject | null;
  model: JsonObject;
}

/**
 * The `tokenizer.json` that transformers 5's `CLIPTokenizer` builds, whatever the folder holds, from a vocabulary,
 * merges and the resolved special tokens: CLIP's split regex, then GPT-2's byte-level split and mapping, BPE with
 * `</w>` and the unknown token, the byte-level decoder. Its `normalizer` is a placeholder that the tokenizer
 * replaces with the exact CLIP normalizer (`clipNormalizer`). Added tokens take their vocabulary id, or new ids after the vocabulary;
 * `ids` is the vocabulary with them.
 */
export function clipTokenizerJson(vocab: ReadonlyMap<string, number>, merges: readonly Merge[], special: ClipSpecialTokens): { json: ClipTokenizerJson; ids: Map<string, number> } {
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
    return addedTokenJson(id, t);
  });
  const json: ClipTokenizerJson = {
    added_tokens: added,
    normalizer: { type: 'Lowercase' }, // replaced by the tokenizer with the exact CLIP normalizer
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
  return { json, ids };
}
