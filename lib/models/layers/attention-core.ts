/**
 * Multi-head scaled dot-product attention, the computation every model here shares:
 * `softmax(Q K^T / sqrt(d) + mask) V`, with an optional observer of the attention probabilities
 * (pix2pix-zero reads and differentiates the cross-attention maps through it).
 */
import * as tf from '@tensorflow/tfjs-core';
import { matMul, plainProductsOnly } from './matmul.js';

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
 * `softmax((q * scale) k^T) v` over [n, Lq, D], [n, Lk, D], [n, Lk, Dv] (n = batch * heads), differentiable with
 * respect to all three, keeping only q, k, v and the output for the backward pass: the [n, Lq, Lk] probabilities
 * are recomputed there (as FlashAttention does), one slice at a time on wasm. This is what lets the gradient of a
 * 64 x 64 latent's self-attention (probabilities of 2 x 8 x 4096 x 4096 floats = 1 GiB per layer in SD) fit in
 * memory, and it keeps every product on wasm's fast path (see matmul.ts): the large matrices are only ever the
 * left operand or the right operand of a product with a thin result, and never transposed.
 */
function recomputedAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, scale: number): tf.Tensor3D {
  const [n, lq, d] = q.shape;
  const lk = k.shape[1];
  // On wasm: one (batch, head) slice at a time, so that each product is a single untransposed one and only one
  // slice's probabilities exist at once. Elsewhere, and for small slices: all slices in one batched product.
  const step = plainProductsOnly(lq * lk * d) ? 1 : n;
  const slice = (t: tf.Tensor, i: number): tf.Tensor3D => (step === n ? (t as tf.Tensor3D) : tf.slice(t as tf.Tensor3D, [i, 0, 0], [step, -1, -1]));
  const swap = (t: tf.Tensor): tf.Tensor3D => tf.transpose(t, [0, 2, 1]) as tf.Tensor3D;
  const perSlice = (f: (i: number) => tf.Tensor[]): tf.Tensor[][] => {
    const parts: tf.Tensor[][] = [];
    for (let i = 0; i < n; i += step) parts.push(tf.tidy(() => f(i)));
    return parts;
  };
  const join = (parts: tf.Tensor[]): tf.Tensor => (parts.length === 1 ? parts[0]! : tf.concat(parts, 0));

  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [qa, ka, va, save] = args as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.GradSaveFunc];
    const value = join(
      perSlice((i) => {
        const p = tf.softmax(tf.matMul(tf.mul(slice(qa, i), scale), swap(slice(ka, i))));
        return [tf.matMul(p, slice(va, i))];
      }).map((p) => p[0]!),
    );
    save([qa, ka, va, value]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
      const [sq, sk, sv, so] = saved as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor3D];
      const parts = perSlice((i) => {
        const [qi, ki, vi, oi, dyi] = [tf.mul(slice(sq, i), scale), slice(sk, i), slice(sv, i), slice(so, i), slice(dy, i)];
        const p = tf.softmax(tf.matMul(qi, swap(ki)));
        // Softmax backward, dS = P * (dP - rowsum(dP * P)), with rowsum(dP * P) = rowsum(dY * O) (thin).
        const ds = tf.mul(p, tf.sub(tf.matMul(dyi, swap(vi)), tf.sum(tf.mul(dyi, oi), -1, true)));
        return [
          tf.mul(tf.matMul(ds, ki), scale), // dQ = dS K * scale
          swap(tf.matMul(swap(qi), ds)), // dK = (Qs^T dS)^T
          swap(tf.matMul(swap(dyi), p)), // dV = (dY^T P)^T
        ];
      });
      return [0, 1, 2].map((j) => join(parts.map((p) => p[j]!)));
    };
    return { value, gradFunc };
  });
  return f(q, k, v) as tf.Tensor3D;
}

/**
 * Attention of projected queries `q` [B, Lq, H*D] over keys `k` and values `v` [B, Lk, H*D] with `heads` heads.
 * Returns [B, Lq, H*D].
 *
 * Without an observer or a mask, the probabilities are not kept for the backward pass but recomputed
 * ({@link recomputedAttention}); with an observer they are a tensor of the graph, so a loss on them can be
 * differentiated.
 */
export function multiHeadAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, heads: number, options: AttentionOptions = {}): tf.Tensor3D {
  return tf.tidy(() => {
    const [b, lq, c] = q.shape as [number, number, number];
    const lk = k.shape[1]!;
    const headDim = c / heads;
    if (!Number.isInteger(headDim)) throw new Error(`attention: ${c} channels do not split into ${heads} heads`);
    const scale = options.scale ?? 1 / Math.sqrt(headDim);
    // [B, H, L, D] -> [B * H, L, D]: diffusers' head_to_batch_dim order.
    const toBatch = (x: tf.Tensor): tf.Tensor3D => {
      const h = splitHeads(x, heads);
      return tf.reshape(h, [b * heads, h.shape[2], h.shape[3]]);
    };
    const [qh, kh, vh] = [toBatch(q), toBatch(k), toBatch(v)];
    let out: tf.Tensor;
    if (options.onProbs === undefined && options.mask === undefined) {
      out = recomputedAttention(qh, kh, vh, scale);
    } else {
      let scores: tf.Tensor = tf.mul(matMul(qh, tf.transpose(kh, [0, 2, 1])), scale);
      if (options.mask !== undefined) scores = tf.reshape(tf.add(tf.reshape(scores, [b, heads, lq, lk]), options.mask), [b * heads, lq, lk]);
      const probs = tf.softmax(scores) as tf.Tensor3D;
      options.onProbs?.(probs);
      out = matMul(probs, vh);
    }
    return mergeHeads(tf.reshape(out, [b, heads, lq, out.shape[2]!]));
  });
}
