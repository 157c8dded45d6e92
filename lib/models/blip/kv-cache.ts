/**
 * The key/value cache of BLIP's text decoder: per layer, the self-attention keys/values of the positions seen so
 * far and the cross-attention keys/values of the image, so that the image's are computed once and each new token
 * costs one position of self-attention (transformers' `past_key_values`).
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * The keys and values of one attention, split into heads in the layout the attention multiplies them in (so a cached
 * step transposes nothing): keys [B, heads, headDim, L], values [B, heads, L, headDim].
 */
export interface KeyValues {
  readonly k: tf.Tensor4D;
  readonly v: tf.Tensor4D;
}

/**
 * The decoder's key/value cache: per layer, the self-attention keys/values of the positions seen so far and the
 * cross-attention keys/values of the image. Owned by the caller: free it with {@link disposeCache}.
 */
export interface DecoderCache {
  /** The number of positions in the self-attention cache. */
  readonly length: number;
  readonly self: readonly KeyValues[];
  readonly cross: readonly KeyValues[];
}

/** Frees every tensor of a cache. */
export function disposeCache(cache: DecoderCache): void {
  for (const kv of [...cache.self, ...cache.cross]) tf.dispose([kv.k, kv.v]);
}

/** The cache rows `rows` (beam reordering), as a new cache; `cache` is left as it is. */
export function selectCacheRows(cache: DecoderCache, rows: number[]): DecoderCache {
  const idx = tf.tensor1d(rows, 'int32');
  const pick = (kv: KeyValues): KeyValues => ({ k: tf.gather(kv.k, idx), v: tf.gather(kv.v, idx) });
  const out = { length: cache.length, self: cache.self.map(pick), cross: cache.cross.map(pick) };
  idx.dispose();
  return out;
}
