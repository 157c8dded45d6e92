/** `LayerNorm`: PyTorch's `nn.LayerNorm` over the last axis (biased variance, `eps` inside the root). */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { Module } from './module.js';
import { affineNormalize } from './normalize.js';

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

  /** Normalises the last axis of `x`. Differentiable with a closed-form gradient (normalize.ts). */
  forward(x: tf.Tensor): tf.Tensor {
    const mean = (t: tf.Tensor): tf.Tensor => tf.mean(t, -1, true);
    return affineNormalize(x, { mean, eps: this.eps }, this.gamma?.read(), this.beta?.read());
  }
}
