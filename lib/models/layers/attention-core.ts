/**
 * Multi-head scaled dot-product attention, the computation every model here shares:
 * `softmax(Q K^T / sqrt(d) + mask) V`, with an optional observer of the attention probabilities
 * (pix2pix-zero reads and differentiates the cross-attention maps through it).
 */
import * as tf from '@tensorflow/tfjs-core';

/** Options of {@link multiHeadAttention}. */
export interface AttentionOptions {
  /** An additive mask broadcastable to [batch, heads, queries, keys] (0 to keep, a large negative to drop). */
  mask?: tf.Tensor;
  /** The score scale; default 1 / sqrt(headDim). */
  scale?: number;
  /**
   * Called with the attention probabilities, shape [batch * heads, queries, keys] (diffusers' layout). The
   * tensor is disposed after the call unless the observer keeps it (`tf.keep`) or uses it in a returned value.
   */
  onProbs?: (probs: tf.Tensor3D) => void;
}

/** [B, L, H*D] -> [B, H, L, D]. */
export function splitHeads(x: tf.Tensor, heads: number): tf.Tensor4D {
  const [b, l, c] = x.shape as [number, number, number];
  return tf.transpose(tf.reshape(x, [b, l, heads, c / heads]), [0, 2, 1, 3]) as tf.Tensor4D;
}

/** [B, H, L, D] -> [B, L, H*D]. */
export function mergeHeads(x: tf.Tensor): tf.Tensor3D {
  const [b, h, l, d] = x.shape as [number, number, number, number];
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b, l, h * d]) as tf.Tensor3D;
}

/**
 * Attention of projected queries `q` [B, Lq, H*D] over keys `k` and values `v` [B, Lk, H*D] with `heads` heads.
 * Returns [B, Lq, H*D].
 */
export function multiHeadAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, heads: number, options: AttentionOptions = {}): tf.Tensor3D {
  return tf.tidy(() => {
    const [b, lq, c] = q.shape as [number, number, number];
    const headDim = c / heads;
    if (!Number.isInteger(headDim)) throw new Error(`attention: ${c} channels do not split into ${heads} heads`);
    const scale = options.scale ?? 1 / Math.sqrt(headDim);
    const qh = splitHeads(q, heads);
    const kh = splitHeads(k, heads);
    const vh = splitHeads(v, heads);
    let scores: tf.Tensor = tf.mul(tf.matMul(qh, kh, false, true), scale);
    if (options.mask !== undefined) scores = tf.add(scores, options.mask);
    const probs = tf.softmax(scores);
    if (options.onProbs !== undefined) {
      options.onProbs(tf.reshape(probs, [b * heads, lq, kh.shape[2]]) as tf.Tensor3D);
    }
    return mergeHeads(tf.matMul(probs, vh));
  });
}
