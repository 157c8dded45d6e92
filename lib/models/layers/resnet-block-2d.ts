/**
 * `ResnetBlock2D`: diffusers' residual block, shared by the UNet and the VAE:
 * `GroupNorm -> SiLU -> conv1 (+ time embedding) -> GroupNorm -> SiLU -> conv2`, plus a 1x1 `conv_shortcut` when
 * the channel count changes, divided by `output_scale_factor`. (Dropout is the identity at inference.)
 */
import * as tf from '@tensorflow/tfjs-core';
import { silu } from './activations.js';
import { Conv2d } from './conv2d.js';
import { GroupNorm } from './group-norm.js';
import { Linear } from './linear.js';
import { type ForwardArgs, Module } from './module.js';

/** The arguments of diffusers' `ResnetBlock2D.__init__` that the SD UNet and VAE use. */
export interface ResnetBlock2DConfig {
  inChannels: number;
  outChannels?: number;
  /** Width of the time embedding; omitted for blocks without one (the VAE). */
  tembChannels?: number;
  groups: number;
  eps?: number;
  outputScaleFactor?: number;
}

export class ResnetBlock2D extends Module {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly timeEmbProj?: Linear;
  readonly norm2: GroupNorm;
  readonly conv2: Conv2d;
  readonly convShortcut?: Conv2d;
  readonly outputScaleFactor: number;

  constructor(config: ResnetBlock2DConfig) {
    super();
    const out = config.outChannels ?? config.inChannels;
    const eps = config.eps ?? 1e-6;
    this.outputScaleFactor = config.outputScaleFactor ?? 1;
    this.norm1 = this.child('norm1', new GroupNorm(config.groups, config.inChannels, eps));
    this.conv1 = this.child('conv1', new Conv2d(config.inChannels, out, 3, 1, 1));
    if (config.tembChannels !== undefined) this.timeEmbProj = this.child('time_emb_proj', new Linear(config.tembChannels, out));
    this.norm2 = this.child('norm2', new GroupNorm(config.groups, out, eps));
    this.conv2 = this.child('conv2', new Conv2d(out, out, 3, 1, 1));
    if (config.inChannels !== out) this.convShortcut = this.child('conv_shortcut', new Conv2d(config.inChannels, out, 1));
  }

  /** `inputs`: x [N, H, W, C], and the time embedding [N, tembChannels] when the block has one. */
  forward(inputs: tf.Tensor | tf.Tensor[], _args?: ForwardArgs): tf.Tensor {
    return tf.tidy(() => {
      const [x, temb] = Array.isArray(inputs) ? inputs : [inputs];
      if (x === undefined) throw new Error('ResnetBlock2D: no input');
      let h = this.conv1.forward(silu(this.norm1.forward(x)));
      if (this.timeEmbProj !== undefined) {
        if (temb === undefined) throw new Error('ResnetBlock2D: this block needs a time embedding');
        const t = this.timeEmbProj.forward(silu(temb));
        h = tf.add(h, tf.reshape(t, [t.shape[0]!, 1, 1, t.shape[1]!]));
      }
      h = this.conv2.forward(silu(this.norm2.forward(h)));
      const shortcut = this.convShortcut !== undefined ? this.convShortcut.forward(x) : x;
      const out = tf.add(shortcut, h);
      return this.outputScaleFactor !== 1 ? tf.div(out, this.outputScaleFactor) : out;
    });
  }
}
