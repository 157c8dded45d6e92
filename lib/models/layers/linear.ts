/** `Linear`: PyTorch's `nn.Linear` (`y = x W^T + b`), applied to the last axis of any rank. */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { kernelChoices } from '../../backend.js';
import { tapeIsOn } from './checkpoint.js';
import { matMulByConstant, plainProductsOnly } from './matmul.js';
import { Module } from './module.js';

/** Options of {@link Linear}. */
export interface LinearOptions {
  /** Keep the weight `[in, out]` whatever the backend table says (`wideLinearWeightsAsStored`). */
  plainLayout?: boolean;
}

export class Linear extends Module {
  /**
   * The weight: `[in, out]`, or for a widening layer (out > in) where the backend table says so
   * (`wideLinearWeightsAsStored`, tensorflow) PyTorch's own `[out, in]`, multiplied by its transpose
   * (`transposedKernel`). Fixed when the block is built.
   */
  readonly kernel: LayerVariable;
  readonly bias?: LayerVariable;
  /** Whether {@link kernel} is `[out, in]` (PyTorch's layout) rather than `[in, out]`. */
  readonly transposedKernel: boolean;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    useBias = true,
    options: LinearOptions = {},
  ) {
    super();
    this.transposedKernel = outFeatures > inFeatures && options.plainLayout !== true && kernelChoices().wideLinearWeightsAsStored;
    this.kernel = this.transposedKernel
      ? this.weight('weight', [outFeatures, inFeatures])
      : this.weight('weight', [inFeatures, outFeatures], 'linear');
    if (useBias) this.bias = this.weight('bias', [outFeatures]);
  }

  forward(x: tf.Tensor): tf.Tensor {
    const shape = x.shape;
    const kernel = this.kernel.read() as tf.Tensor2D;
    const withBias = (y: tf.Tensor): tf.Tensor => (this.bias !== undefined ? tf.add(y, this.bias.read()) : y);
    if (this.transposedKernel) {
      // x W^T as one (broadcast) product with a transposed operand, and the input gradient dy W (a narrow product).
      const product = (input: tf.Tensor): tf.Tensor => withBias(tf.matMul(input, kernel, false, true));
      if (!tapeIsOn()) return tf.tidy(() => product(x));
      const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
        value: product(args[0] as tf.Tensor),
        gradFunc: (dy: tf.Tensor) => tf.matMul(dy, kernel),
      }));
      return f(x);
    }
    // Where products need no workaround (not wasm), one broadcast product of [..., in] by [in, out]: no reshapes,
    // and inside a gradient one node with the input gradient `dy W^T` (tfjs' own would reshape and reduce).
    if (shape.length === 3 && !plainProductsOnly(x.size * this.outFeatures)) {
      const product = (input: tf.Tensor): tf.Tensor => withBias(tf.matMul(input, kernel));
      if (!tapeIsOn()) return tf.tidy(() => product(x));
      const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
        value: product(args[0] as tf.Tensor),
        gradFunc: (dy: tf.Tensor) => tf.matMul(dy, kernel, false, true),
      }));
      return f(x);
    }
    return tf.tidy(() => {
      const flat = shape.length === 2 ? (x as tf.Tensor2D) : (tf.reshape(x, [-1, this.inFeatures]) as tf.Tensor2D);
      const y = withBias(matMulByConstant(flat, kernel));
      return shape.length === 2 ? y : tf.reshape(y, [...shape.slice(0, -1), this.outFeatures]);
    });
  }
}
