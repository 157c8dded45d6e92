/**
 * Kernels this library registers over tfjs-node's own on the `tensorflow` backend, each because a measurement showed
 * that another TensorFlow op computes the same values faster (docs/benchmarks.md).
 *
 * - `BatchMatMul`: tfjs-node runs every `tf.matMul` as TensorFlow's `BatchMatMulV2`. When the right operand is one
 *   matrix (its batch dimensions, if any, are all 1: a layer's weight) the product is a single 2-D product of the
 *   left operand's rows, and from a floor of multiply-adds (the kernel choice `matrixProductMinMacs`) TensorFlow's
 *   2-D `MatMul` runs it faster. Intel Xeon, 2 threads, ms, `BatchMatMulV2` -> `MatMul`: [16, 77, 768] x [768, 768]
 *   4.9 -> 4.7; [1, 4096, 320] x [320, 2560] 24.5 -> 21.5; [1232, 768] x [768, 3072] 21.5 (weight stored
 *   transposed) -> 19.4. Alternating in one process, the order swapped each round: the CLIP text encoder on 16
 *   sentences 1.14-1.20 -> 1.05-1.08 s, the full-size SD 1.x UNet forward at 64 x 64, batch 2, 10.8 / 10.9 -> 10.0 /
 *   10.4 s. Other products (attention's batches of products, a transposed batched left operand, non-float32, small
 *   ones) go to tfjs-node's kernel unchanged. Gradients are unaffected: tfjs differentiates `BatchMatMul` by the op,
 *   whichever kernel runs it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { isNativeBackend } from './native-graph/native-binding.js';

const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/**
 * `a b` (`transposeA`/`transposeB` as tfjs' `matMul`) as one 2-D `MatMul` when `b` is one matrix and `a`'s rows can
 * be stacked (not transposed, or a single matrix); `undefined` where it does not apply.
 */
function asMatrixProduct(a: tf.Tensor, b: tf.Tensor, transposeA: boolean, transposeB: boolean, backend: unknown, minMacs: number): tf.Tensor | undefined {
  if (!isNativeBackend(backend) || !(a instanceof tf.Tensor) || !(b instanceof tf.Tensor) || a.dtype !== 'float32' || b.dtype !== 'float32' || a.rank < 2 || b.rank < 2 || a.size === 0 || b.size === 0) return undefined;
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  if (product(bBatch) !== 1 || (transposeA && product(aBatch) !== 1)) return undefined;
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [m, k] = transposeA ? [ac, ar] : [ar, ac];
  const n = transposeB ? b.shape[b.rank - 2]! : b.shape[b.rank - 1]!;
  if (product(aBatch) * m * k * n < minMacs) return undefined;
  const batch = [...Array<number>(Math.max(0, bBatch.length - aBatch.length)).fill(1), ...aBatch];
  const { binding } = backend;
  return tf.tidy(() => {
    const rows = tf.reshape(a, transposeA ? [ar, ac] : [product(aBatch) * m, k]);
    const matrix = tf.reshape(b, b.shape.slice(-2));
    const y = backend.executeSingleOutput(
      'MatMul',
      [
        { name: 'T', type: binding.TF_ATTR_TYPE, value: binding.TF_FLOAT },
        { name: 'transpose_a', type: binding.TF_ATTR_BOOL, value: transposeA },
        { name: 'transpose_b', type: binding.TF_ATTR_BOOL, value: transposeB },
      ],
      [rows, matrix],
    );
    return tf.reshape(y, [...batch, m, n]);
  });
}

let registered = false;

/**
 * Registers the kernels above over the `tensorflow` backend's own (once; later calls do nothing). Each falls back
 * to the kernel it replaces where it does not apply; `minMacs()` is read at every product (the kernel table's
 * `matrixProductMinMacs`, which tests override).
 */
export function registerNativeKernels(minMacs: () => number): void {
  if (registered) return;
  const original = tf.getKernel('BatchMatMul', 'tensorflow');
  if (original === undefined) return;
  registered = true;
  tf.unregisterKernel('BatchMatMul', 'tensorflow');
  tf.registerKernel({
    ...original,
    kernelFunc: (args) => {
      const { a, b } = args.inputs as { a: tf.Tensor; b: tf.Tensor };
      const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
      return asMatrixProduct(a, b, transposeA, transposeB, args.backend, minMacs()) ?? original.kernelFunc(args);
    },
  });
}
