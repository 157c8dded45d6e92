/**
 * The timestep embedding: diffusers' `Timesteps` (sinusoidal features, `get_timestep_embedding`) and
 * `TimestepEmbedding` (linear_1 -> SiLU -> linear_2).
 */
import * as tf from '@tensorflow/tfjs-core';
import { silu } from '../layers/activations.js';
import { Linear } from '../layers/linear.js';
import { Module } from '../layers/module.js';

/** Sinusoidal features of timesteps `t` [B]: [B, dim], as diffusers' `get_timestep_embedding`. */
export function timestepFeatures(t: tf.Tensor1D, dim: number, flipSinToCos: boolean, freqShift: number, maxPeriod = 10000): tf.Tensor2D {
  return tf.tidy(() => {
    const half = Math.floor(dim / 2);
    const exponent = tf.div(tf.mul(tf.range(0, half, 1, 'float32'), -Math.log(maxPeriod)), half - freqShift);
    const args = tf.mul(tf.expandDims(tf.cast(t, 'float32'), 1), tf.expandDims(tf.exp(exponent), 0));
    const [sin, cos] = [tf.sin(args), tf.cos(args)];
    let emb = flipSinToCos ? tf.concat([cos, sin], 1) : tf.concat([sin, cos], 1);
    if (dim % 2 === 1) emb = tf.pad(emb, [[0, 0], [0, 1]]);
    return emb as tf.Tensor2D;
  });
}

/** `TimestepEmbedding`: the MLP over the sinusoidal features. */
export class TimestepEmbedding extends Module {
  readonly linear1: Linear;
  readonly linear2: Linear;

  constructor(inChannels: number, timeEmbedDim: number) {
    super();
    this.linear1 = this.child('linear_1', new Linear(inChannels, timeEmbedDim));
    this.linear2 = this.child('linear_2', new Linear(timeEmbedDim, timeEmbedDim));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.linear2.forward(silu(this.linear1.forward(x))));
  }
}
