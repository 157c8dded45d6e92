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
  /**
   * The most probabilities computed at once when they are recomputed (default {@link ATTENTION_CHUNK_ELEMENTS}).
   * Given, it also asks for the recomputing path where a small attention would keep its probabilities.
   */
  chunkElements?: number;
  /**
   * Probabilities to use instead of `softmax(q k^T)`, [batch * heads, queries, keys] (Prompt-to-Prompt's attention
   * replacement: another pass's maps). `onProbs` is then told these.
   */
  probs?: tf.Tensor3D;
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
 * The most attention probabilities computed at once (64 MiB of float32): larger score matrices are computed in
 * blocks of query rows. Each row's softmax sees all its keys, so the values are those of the whole matrix.
 */
export const ATTENTION_CHUNK_ELEMENTS = 1 << 24;

/**
 * `softmax((q * scale) k^T) v` over [n, Lq, D], [n, Lk, D], [n, Lk, Dv] (n = batch * heads), differentiable with
 * respect to all three, keeping only q, k, v and the output for the backward pass: the [n, Lq, Lk] probabilities
 * are recomputed there (as FlashAttention does). This is what lets the gradient of a 64 x 64 latent's
 * self-attention (probabilities of 2 x 8 x 4096 x 4096 floats = 1 GiB per layer in SD) fit in memory.
 *
 * Forward and backward both run over blocks of at most {@link ATTENTION_CHUNK_ELEMENTS} probabilities: all
 * (batch, head) slices at once and blocks of query rows, or on a backend that wants plain products (wasm, see
 * matmul.ts) one slice at a time, so that each product is a single untransposed one whose large operand is never
 * transposed. The query blocks' key and value gradients are summed.
 */
function recomputedAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, scale: number, chunkElements: number): tf.Tensor3D {
  const [n, lq, d] = q.shape;
  const lk = k.shape[1];
  const nb = plainProductsOnly(lq * lk * d) ? 1 : n;
  const cq = Math.min(lq, Math.max(1, Math.floor(chunkElements / (nb * lk))));
  const rows = (t: tf.Tensor, i: number, j = 0, count = t.shape[1]!): tf.Tensor3D =>
    nb === n && j === 0 && count === t.shape[1] ? (t as tf.Tensor3D) : tf.slice(t as tf.Tensor3D, [i, j, 0], [nb, count, -1]);
  const swap = (t: tf.Tensor): tf.Tensor3D => tf.transpose(t, [0, 2, 1]) as tf.Tensor3D;
  const join = (parts: tf.Tensor[], axis: number): tf.Tensor => (parts.length === 1 ? parts[0]! : tf.concat(parts, axis));
  /** Runs `f` on every block of query rows of every slice; returns its results per slice and block. */
  const blocks = <T>(f: (i: number, j: number, count: number) => T): T[][] => {
    const out: T[][] = [];
    for (let i = 0; i < n; i += nb) {
      const row: T[] = [];
      for (let j = 0; j < lq; j += cq) row.push(f(i, j, Math.min(cq, lq - j)));
      out.push(row);
    }
    return out;
  };

  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [qa, ka, va, save] = args as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.GradSaveFunc];
    const parts = blocks((i, j, count) =>
      tf.tidy(() => tf.matMul(tf.softmax(tf.matMul(tf.mul(rows(qa, i, j, count), scale), swap(rows(ka, i)))), rows(va, i))),
    );
    const value = join(parts.map((p) => join(p, 1)), 0);
    save([qa, ka, va, value]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
      const [sq, sk, sv, so] = saved as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor3D];
      const grads = blocks((i, j, count) => {
        const [ki, vi] = [rows(sk, i), rows(sv, i)];
        return tf.tidy(() => {
          const [qi, oi, dyi] = [tf.mul(rows(sq, i, j, count), scale), rows(so, i, j, count), rows(dy, i, j, count)];
          const p = tf.softmax(tf.matMul(qi, swap(ki)));
          // Softmax backward, dS = P * (dP - rowsum(dP * P)), with rowsum(dP * P) = rowsum(dY * O) (thin).
          const ds = tf.mul(p, tf.sub(tf.matMul(dyi, swap(vi)), tf.sum(tf.mul(dyi, oi), -1, true)));
          return [
            tf.mul(tf.matMul(ds, ki), scale), // dQ = dS K * scale
            swap(tf.matMul(swap(qi), ds)), // dK = (Qs^T dS)^T
            swap(tf.matMul(swap(dyi), p)), // dV = (dY^T P)^T
          ];
        });
      });
      const sum = (ts: tf.Tensor[]): tf.Tensor => (ts.length === 1 ? ts[0]! : tf.addN(ts));
      return [
        join(grads.map((g) => join(g.map((b) => b[0]!), 1)), 0),
        join(grads.map((g) => sum(g.map((b) => b[1]!))), 0),
        join(grads.map((g) => sum(g.map((b) => b[2]!))), 0),
      ];
    };
    return { value, gradFunc };
  });
  return f(q, k, v) as tf.Tensor3D;
}

/**
 * Probabilities per attention call (batch x heads x queries x keys) up to which, on a backend whose products need no
 * workaround (not wasm), the attention runs on [B, H, L, D] views with its probabilities kept for the backward pass:
 * the fewest kernels, for the small layers whose time is per-kernel overhead (4 MiB of probabilities; SD's 16 x 16
 * level, the toy models' every level). Larger ones are recomputed in the backward pass ({@link recomputedAttention}).
 */
export const SMALL_ATTENTION_ELEMENTS = 1 << 20;

/**
 * [B, L, H*D] -> [B, H, L, D], or with `keysLast` [B, H, D, L] (the keys of `q k^T`, transposed once): the layout
 * {@link attendHeads} takes, and the one a key/value cache keeps so that no step transposes it again.
 */
export function headsView(x: tf.Tensor, heads: number, keysLast = false): tf.Tensor4D {
  const [b, l, c] = x.shape as [number, number, number];
  return tf.transpose(tf.reshape(x, [b, l, heads, c / heads]), keysLast ? [0, 2, 3, 1] : [0, 2, 1, 3]) as tf.Tensor4D;
}

/**
 * `softmax((qh kt + mask) * scale) vh` on head views (the mask added before the scale: the same probabilities as
 * `qh kt * scale + mask`, since a kept position's mask is 0 and a dropped one stays far below its row's maximum,
 * and in a TensorFlow graph the optimiser does not fuse the product, the scale and a broadcast mask into one oneDNN
 * kernel, which ran the toy CLIP's masked attention 35x slower than eagerly): queries `qh` [B, H, Lq, D], keys `kt` [B, H, D, Lk] (keys
 * last, see {@link headsView}), values `vh` [B, H, Lk, Dv]. Returns [B, Lq, H*Dv]. The products are 4-D, which the
 * native backend runs as batched products; the probabilities are kept for autodiff. `options.probs` (replacement
 * maps) and `options.onProbs` as for {@link multiHeadAttention}.
 */
export function attendHeads(qh: tf.Tensor4D, kt: tf.Tensor4D, vh: tf.Tensor4D, scale: number, options: AttentionOptions = {}): tf.Tensor3D {
  return tf.tidy(() => {
    const [b, heads, lq] = qh.shape;
    const lk = kt.shape[3];
    let probs: tf.Tensor;
    if (options.probs !== undefined) {
      options.onProbs?.(options.probs);
      probs = tf.reshape(options.probs, [b, heads, lq, lk]);
    } else {
      let scores: tf.Tensor = tf.matMul(qh, kt);
      if (options.mask !== undefined) scores = tf.add(scores, options.mask);
      probs = tf.softmax(tf.mul(scores, scale));
      if (options.onProbs !== undefined) options.onProbs(tf.reshape(probs, [b * heads, lq, lk]) as tf.Tensor3D);
    }
    return mergeHeads(tf.matMul(probs, vh));
  });
}

/** The attention of [B, L, H*D] projections on head views ({@link attendHeads}), probabilities kept for autodiff. */
function attentionOnHeads(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, heads: number, scale: number, options: AttentionOptions): tf.Tensor3D {
  return attendHeads(headsView(q, heads), headsView(k, heads, true), headsView(v, heads), scale, options);
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
    if (options.probs !== undefined) {
      const want = [b * heads, lq, lk];
      if (!options.probs.shape.every((d, i) => d === want[i])) {
        throw new Error(`attention: replacement probabilities are [${options.probs.shape.join(', ')}], expected [${want.join(', ')}]`);
      }
    }
    const small = b * heads * lq * lk <= SMALL_ATTENTION_ELEMENTS && options.chunkElements === undefined;
    if (small && !plainProductsOnly(b * heads * lq * lk * headDim)) {
      return attentionOnHeads(q, k, v, heads, scale, options);
    }
    // [B, H, L, D] -> [B * H, L, D]: diffusers' head_to_batch_dim order.
    const toBatch = (x: tf.Tensor): tf.Tensor3D => {
      const h = splitHeads(x, heads);
      return tf.reshape(h, [b * heads, h.shape[2], h.shape[3]]);
    };
    const [qh, kh, vh] = [toBatch(q), toBatch(k), toBatch(v)];
    let out: tf.Tensor;
    if (options.probs !== undefined) {
      options.onProbs?.(options.probs);
      out = matMul(options.probs, vh);
    } else if (options.onProbs === undefined && options.mask === undefined) {
      out = recomputedAttention(qh, kh, vh, scale, options.chunkElements ?? ATTENTION_CHUNK_ELEMENTS);
    } else {
      let scores: tf.Tensor = matMul(qh, tf.transpose(kh, [0, 2, 1]));
      if (options.mask !== undefined) scores = tf.reshape(tf.add(tf.reshape(scores, [b, heads, lq, lk]), options.mask), [b * heads, lq, lk]);
      const probs = tf.softmax(tf.mul(scores, scale)) as tf.Tensor3D;
      options.onProbs?.(probs);
      out = matMul(probs, vh);
    }
    return mergeHeads(tf.reshape(out, [b, heads, lq, out.shape[2]!]));
  });
}
