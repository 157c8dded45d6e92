/**
 * `GroupNorm`: PyTorch's `nn.GroupNorm` for NHWC tensors (tfjs has no GroupNorm op): channels are split into
 * groups, each normalised over (H, W, channels of the group) with the biased variance.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { kernelChoices } from '../../backend.js';
import { Module } from './module.js';
import { affineNormalize } from './normalize.js';

/**
 * Elements from which a group norm takes its statistics in two reductions (see {@link groupMean}); below, one reduction
 * over both axes costs fewer kernels, which is what a small activation's time is made of.
 */
export const GROUP_NORM_SPLIT_MIN_ELEMENTS = 1 << 16;

/**
 * The mean of `x` [N, L, G, C/G] over positions and each group's channels, [N, 1, G, 1]. Below
 * {@link GROUP_NORM_SPLIT_MIN_ELEMENTS} one reduction over both axes (fewest kernels); above, two: every group has as
 * many elements per channel, so the mean of the means is the mean. How the two run is a kernel choice of the backend
 * table (`groupNormStatistics`); each is several times faster than one reduction over axes [1, 3].
 */
export function groupMean(x: tf.Tensor): tf.Tensor {
  if (x.size < GROUP_NORM_SPLIT_MIN_ELEMENTS) return tf.mean(x, [1, 3], true);
  const how = kernelChoices().groupNormStatistics;
  const [n, l, g, cg] = x.shape as [number, number, number, number];
  if (how === 'groups-first') return tf.mean(tf.mean(x, 3, true), 1, true);
  return tf.tidy(() => {
    const rows = tf.reshape(x, [n, l, g * cg]);
    const perChannel = how === 'positions-first' ? tf.mean(rows, 1, true) : tf.div(tf.matMul(tf.ones([n, 1, l]), rows), l);
    return tf.mean(tf.reshape(perChannel, [n, 1, g, cg]), 3, true);
  });
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

  /** Normalises `x` of shape [N, H, W, C] (or [N, L, C], as a sequence). Differentiable with a closed-form gradient (normalize.ts). */
  forward(x: tf.Tensor): tf.Tensor {
    const shape = x.shape;
    const n = shape[0]!;
    const c = shape[shape.length - 1]!;
    const g = this.numGroups;
    const view = [n, x.size / (n * c), g, c / g];
    return affineNormalize(x, { view, mean: groupMean, eps: this.eps }, this.gamma.read(), this.beta.read());
  }
}
