/**
 * `GroupNorm`: PyTorch's `nn.GroupNorm` for NHWC tensors (tfjs has no GroupNorm op): channels are split into
 * groups, each normalised over (H, W, channels of the group) with the biased variance.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { Module } from './module.js';

export class GroupNorm extends Module {
  readonly gamma: LayerVariable;
  readonly beta: LayerVariable;

  constructor(
    readonly numGroups: number,
    readonly numChannels: number,
    readonly eps = 1e-5,
  ) {
    super();
    if (numChannels % numGroups !== 0) {
      throw new Error(`GroupNorm: ${numChannels} channels cannot be split into ${numGroups} groups`);
    }
    this.gamma = this.weight('weight', [numChannels]);
    this.beta = this.weight('bias', [numChannels]);
  }

  /** Normalises `x` of shape [N, H, W, C] (or [N, L, C], as a sequence). */
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const shape = x.shape;
      const n = shape[0]!;
      const c = shape[shape.length - 1]!;
      const g = this.numGroups;
      const grouped = tf.reshape(x, [n, -1, g, c / g]);
      const { mean, variance } = tf.moments(grouped, [1, 3], true);
      const normed = tf.mul(tf.sub(grouped, mean), tf.rsqrt(tf.add(variance, this.eps)));
      return tf.add(tf.mul(tf.reshape(normed, shape), this.gamma.read()), this.beta.read());
    });
  }
}
