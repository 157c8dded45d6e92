/**
 * `Downsample2D` and `Upsample2D`: diffusers' resolution changes, shared by the UNet and the VAE.
 * Downsampling is a stride-2 3x3 convolution (the VAE pads only bottom and right, `padding=0` in diffusers);
 * upsampling is nearest-neighbour 2x followed by a 3x3 convolution.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Conv2d } from './conv2d.js';
import { Module } from './module.js';

export class Downsample2D extends Module {
  readonly conv: Conv2d;

  /** @param padding diffusers' `padding`: 1 (symmetric, the UNet) or 0 (pad bottom/right by one, the VAE). */
  constructor(channels: number, outChannels = channels, padding = 1) {
    super();
    const pad: [number, number, number, number] = padding === 0 ? [0, 1, 0, 1] : [padding, padding, padding, padding];
    this.conv = this.child('conv', new Conv2d(channels, outChannels, 3, 2, pad));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return this.conv.forward(x);
  }
}

/** Nearest-neighbour 2x upsampling of NHWC `x` (PyTorch's `interpolate(scale_factor=2, mode="nearest")`). */
export function upsampleNearest2x(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape as [number, number, number, number];
    // Built from reshape + concat, whose gradients every backend has (wasm lacks the resize gradient, and tfjs
    // has no rank-6 tile gradient): repeat each column, then each row.
    const cols = tf.reshape(x, [n, h, w, 1, c]);
    const wide = tf.reshape(tf.concat([cols, cols], 3), [n, h, 1, 2 * w, c]);
    return tf.reshape(tf.concat([wide, wide], 2), [n, 2 * h, 2 * w, c]);
  });
}

export class Upsample2D extends Module {
  readonly conv: Conv2d;

  constructor(channels: number, outChannels = channels) {
    super();
    this.conv = this.child('conv', new Conv2d(channels, outChannels, 3, 1, 1));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.conv.forward(upsampleNearest2x(x)));
  }
}
