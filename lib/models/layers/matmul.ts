/**
 * Matrix products whose gradients avoid the wasm backend's slow `BatchMatMul` cases.
 *
 * tfjs-backend-wasm runs a product fast (XNNPACK, ~12-25 GFLOP/s here) only when it is a single matrix product
 * without transposed operands; with `transposeA`/`transposeB` or a batch of products it falls back to a kernel
 * 10-20x slower (measured: [4096,2560] x [320,2560]^T 5.7 s against 0.49 s with the transpose done first; a
 * batch of two [4096,320] x [320,2560] products 15.7 s against 0.57 s for one). tfjs' own matMul gradient uses
 * exactly those cases (`dA = dy B^T`, `dB = A^T dy`). So where the backend table says so (`plainProducts`, wasm)
 * these helpers split batches into single products and compute gradients with explicit transposes of the smaller
 * operands; other backends get `tf.matMul` and its gradient unchanged. The values are the same products either way.
 */
import * as tf from '@tensorflow/tfjs-core';
import { kernelChoices } from '../../backend.js';

/**
 * Below this many multiply-adds a product is cheap on any kernel, and splitting it or wrapping its gradient costs
 * more in per-op overhead than it saves.
 */
export const SMALL_PRODUCT = 1 << 18;

/**
 * Whether products of `macs` multiply-adds need the plain-product workaround: on a backend whose table entry asks
 * for plain products (wasm), when they are not small.
 */
export function plainProductsOnly(macs = Infinity): boolean {
  return macs >= SMALL_PRODUCT && kernelChoices().plainProducts;
}

/** Multiply-adds of `a b` (a [..., M, K], b [..., K, N]). */
const macsOf = (a: tf.Tensor, b: tf.Tensor): number => a.size * b.shape[b.rank - 1]!;

/** [..., M, N] -> [..., N, M]. */
function swapLast(x: tf.Tensor): tf.Tensor {
  const r = x.rank;
  const perm = Array.from({ length: r }, (_, i) => i);
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return tf.transpose(x, perm);
}

/** Elements of the last two axes. */
const area = (t: tf.Tensor): number => t.shape[t.rank - 1]! * t.shape[t.rank - 2]!;

/**
 * Whether a batch of products [M, K] x [K, N] is worth splitting into single products on wasm: when its
 * multiply-adds outweigh the copies that splitting and re-stacking make (measured: the batched kernel runs at
 * ~1 GFLOP/s, the single products at ~12, and a copy costs ~16 ns an element).
 */
function worthSplitting(m: number, k: number, n: number): boolean {
  return plainProductsOnly(m * k * n) && m * k * n > 8 * (m * k + k * n + m * n);
}

/** `a b` for [n, M, K] x [n, K, N] (or 2D) with single, untransposed products on wasm. */
function plainProduct(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (a.rank === 2 || a.shape[0] === 1) return tf.matMul(a, b);
  const [m, k] = [a.shape[1]!, a.shape[2]!];
  if (!worthSplitting(m, k, b.shape[2]!)) return tf.matMul(a, b);
  const as = tf.unstack(a);
  const bs = tf.unstack(b);
  const out = tf.stack(as.map((ai, i) => tf.matMul(ai as tf.Tensor2D, bs[i] as tf.Tensor2D)));
  tf.dispose([...as, ...bs]);
  return out;
}

/** `dy b^T` without a transposed product: transposes `b`, or `dy` and the result, whichever is smaller. */
function gradA(dy: tf.Tensor, b: tf.Tensor, aArea: number): tf.Tensor {
  return area(b) <= area(dy) + aArea ? plainProduct(dy, swapLast(b)) : swapLast(plainProduct(b, swapLast(dy)));
}

/** `a^T dy` without a transposed product: transposes `a`, or `dy` and the result, whichever is smaller. */
function gradB(a: tf.Tensor, dy: tf.Tensor, bArea: number): tf.Tensor {
  return area(a) <= area(dy) + bArea ? plainProduct(swapLast(a), dy) : swapLast(plainProduct(swapLast(dy), a));
}

/**
 * `a b` for a [M, K] or [n, M, K] and b [K, N] or [n, K, N] (same n), differentiable with respect to both, with
 * a gradient that stays on the backend's fast path.
 */
export function matMul(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (!plainProductsOnly(macsOf(a, b))) return tf.matMul(a, b);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, y, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([x, y]);
    return {
      value: plainProduct(x, y),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sb] = saved as [tf.Tensor, tf.Tensor];
        return [gradA(dy, sb, area(sa)), gradB(sa, dy, area(sb))];
      },
    };
  });
  return f(a, b);
}

/**
 * `x w` for x [N, in] and a constant w [in, out] (a weight: no gradient is computed for it), with an input
 * gradient that stays on the backend's fast path.
 */
export function matMulByConstant(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  if (!plainProductsOnly(macsOf(x, w))) return tf.matMul(x, w);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    save([w]);
    return {
      value: tf.matMul(input, w),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => gradA(dy, saved[0]!, area(input)),
    };
  });
  return f(x) as tf.Tensor2D;
}
