/**
 * CLIP's vocabulary: its special tokens, the end-of-word suffix, GPT-2's byte-to-unicode map and the vocabulary
 * OpenAI's `SimpleTokenizer` builds from the merges (what every CLIP/SD `vocab.json` holds).
 */
/** A BPE merge: the two symbols that are joined. */
export type Merge = readonly [string, string];

/** CLIP's start and end tokens. */
export const CLIP_BOS = '<|startoftext|>';
export const CLIP_EOS = '<|endoftext|>';
/** The end-of-word suffix of CLIP's BPE. */
export const END_OF_WORD = '</w>';
/** How many merges CLIP uses from its BPE file (49,152 tokens minus 256 bytes minus the 2 special tokens). */
export const CLIP_NUM_MERGES = 49152 - 256 - 2;

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
