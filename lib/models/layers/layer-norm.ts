/** `LayerNorm`: PyTorch's `nn.LayerNorm` over the last axis (biased variance, `eps` inside the root). */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { Module } from './module.js';

export class LayerNorm extends Module {
  readonly gamma?: LayerVariable;
  readonly beta?: LayerVariable;

  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
    affine = true,
  ) {
    super();
    if (affine) {
      this.gamma = this.weight('weight', [dim]);
      this.beta = this.weight('bias', [dim]);
    }
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, -1, true);
      let y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.eps)));
      if (this.gamma !== undefined && this.beta !== undefined) y = tf.add(tf.mul(y, this.gamma.read()), this.beta.read());
      return y;
    });
  }
}
