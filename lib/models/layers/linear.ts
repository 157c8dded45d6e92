/** `Linear`: PyTorch's `nn.Linear` (`y = x W^T + b`), applied to the last axis of any rank. */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { matMulByConstant } from './matmul.js';
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
    return tf.tidy(() => {
      const shape = x.shape;
      const flat = shape.length === 2 ? (x as tf.Tensor2D) : tf.reshape(x, [-1, this.inFeatures]) as tf.Tensor2D;
      let y: tf.Tensor = matMulByConstant(flat, this.kernel.read() as tf.Tensor2D);
      if (this.bias !== undefined) y = tf.add(y, this.bias.read());
      return shape.length === 2 ? y : tf.reshape(y, [...shape.slice(0, -1), this.outFeatures]);
    });
  }
}
