/** `Linear`: PyTorch's `nn.Linear` (`y = x W^T + b`), applied to the last axis of any rank. */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { tapeIsOn } from './checkpoint.js';
import { matMulByConstant, plainProductsOnly } from './matmul.js';
import { Module } from './module.js';

export class Linear extends Module {
  readonly kernel: LayerVariable;
  readonly bias?: LayerVariable;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    useBias = true,
  ) {
    super();
    this.kernel = this.weight('weight', [inFeatures, outFeatures], 'linear');
    if (useBias) this.bias = this.weight('bias', [outFeatures]);
  }

  forward(x: tf.Tensor): tf.Tensor {
    const shape = x.shape;
    const kernel = this.kernel.read() as tf.Tensor2D;
    // Where products need no workaround (not wasm), one broadcast product of [..., in] by [in, out]: no reshapes,
    // and inside a gradient one node with the input gradient `dy W^T` (tfjs' own would reshape and reduce).
    if (shape.length === 3 && !plainProductsOnly(x.size * this.outFeatures)) {
      const product = (input: tf.Tensor): tf.Tensor => {
        const y = tf.matMul(input, kernel);
        return this.bias !== undefined ? tf.add(y, this.bias.read()) : y;
      };
      if (!tapeIsOn()) return tf.tidy(() => product(x));
      const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
        value: product(args[0] as tf.Tensor),
        gradFunc: (dy: tf.Tensor) => tf.matMul(dy, kernel, false, true),
      }));
      return f(x);
    }
    return tf.tidy(() => {
      const flat = shape.length === 2 ? (x as tf.Tensor2D) : (tf.reshape(x, [-1, this.inFeatures]) as tf.Tensor2D);
      let y: tf.Tensor = matMulByConstant(flat, kernel);
      if (this.bias !== undefined) y = tf.add(y, this.bias.read());
      return shape.length === 2 ? y : tf.reshape(y, [...shape.slice(0, -1), this.outFeatures]);
    });
  }
}
