/** transformers' CLIP normalizer, exactly, and in the shape `@huggingface/tokenizers` calls it. */
import type { Tokenizer } from '@huggingface/tokenizers';
import { lowercasePerCodePoint } from './common.js';

/** transformers' CLIP normalizer: NFC, runs of white space (Oniguruma's `\s`) to one space, lower-case. */
export function clipNormalize(text: string): string {
  return lowercasePerCodePoint(text.normalize('NFC').replace(/\p{White_Space}+/gu, ' '));
}

/**
 * The library's normalizers are callable objects with a `normalize` method; its type declarations do not export
 * the base class, so the CLIP normalizer is built in that shape.
 */
export function clipNormalizer(): Tokenizer['normalizer'] {
  const call = (text: string): string => clipNormalize(text);
  return Object.assign(call, { normalize: call, config: { type: 'Lowercase' } }) as unknown as Tokenizer['normalizer'];
}
