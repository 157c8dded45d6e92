/**
 * `GroupNorm`: PyTorch's `nn.GroupNorm` for NHWC tensors (tfjs has no GroupNorm op): channels are split into
 * groups, each normalised over (H, W, channels of the group) with the biased variance.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { kernelChoices } from '../../backend.js';
import { Module } from './module.js';

/**
 * The mean of `x` [N, L, G, C/G] over positions and each group's channels, [N, 1, G, 1], as two reductions: every
 * group has as many elements per channel, so the mean of the means is the mean. Which one runs first is a kernel
 * choice of the backend table (`groupNormPositionsFirst`); both are several times faster than one reduction over
 * axes [1, 3].
 */
function groupMean(x: tf.Tensor, positionsFirst: boolean): tf.Tensor {
  const [n, l, g, cg] = x.shape as [number, number, number, number];
  if (!positionsFirst) return tf.mean(tf.mean(x, 3, true), 1, true);
  const perChannel = tf.mean(tf.reshape(x, [n, l, g * cg]), 1, true);
  return tf.mean(tf.reshape(perChannel, [n, 1, g, cg]), 3, true);
}

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
      const positionsFirst = kernelChoices().groupNormPositionsFirst;
      const mean = groupMean(grouped, positionsFirst);
      // square(sub) rather than squaredDifference: tfjs' SquaredDifference gradient does not reduce a broadcast input.
      const centered = tf.sub(grouped, mean);
      const variance = groupMean(tf.square(centered), positionsFirst);
      const normed = tf.mul(centered, tf.rsqrt(tf.add(variance, this.eps)));
      return tf.add(tf.mul(tf.reshape(normed, shape), this.gamma.read()), this.beta.read());
    });
  }
}
