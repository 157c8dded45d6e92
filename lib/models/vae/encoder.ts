/**
 * diffusers' VAE `Encoder` (image -> posterior parameters), NHWC:
 * `conv_in` -> `DownEncoderBlock2D` x n -> `UNetMidBlock2D` -> `conv_norm_out` -> SiLU -> `conv_out` (2 x latent
 * channels: the posterior's mean and log-variance).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { Conv2d } from '../layers/conv2d.js';
import { GroupNorm } from '../layers/group-norm.js';
import { type ForwardArgs, Module } from '../layers/module.js';
import { DownEncoderBlock2D, UNetMidBlock2D, VAE_EPS, sequential, type Step } from './blocks.js';
import type { VaeConfig } from './config.js';
import { conv2dForInference, groupNormForInference, siluForInference } from './inference.js';

/** diffusers' `Encoder` with `double_z=True`. */
export class Encoder extends Module {
  readonly convIn: Conv2d;
  readonly downBlocks: DownEncoderBlock2D[];
  readonly midBlock: UNetMidBlock2D;
  readonly convNormOut: GroupNorm;
  readonly convOut: Conv2d;

  constructor(readonly config: VaeConfig) {
    super();
    const ch = config.blockOutChannels;
    const groups = config.normNumGroups;
    const last = ch[ch.length - 1]!;
    this.convIn = this.child('conv_in', new Conv2d(config.inChannels, ch[0]!, 3, 1, 1));
    this.downBlocks = this.childList(
      'down_blocks',
      ch.map(
        (out, i) =>
          new DownEncoderBlock2D({
            inChannels: i === 0 ? ch[0]! : ch[i - 1]!,
            outChannels: out,
            numLayers: config.layersPerBlock,
            groups,
            addDownsample: i < ch.length - 1,
          }),
      ),
    );
    this.midBlock = this.child('mid_block', new UNetMidBlock2D({ channels: last, groups, addAttention: config.midBlockAddAttention }));
    this.convNormOut = this.child('conv_norm_out', new GroupNorm(groups, last, VAE_EPS));
    this.convOut = this.child('conv_out', new Conv2d(last, 2 * config.latentChannels, 3, 1, 1));
  }

  /** Images [N, H, W, in] -> posterior parameters [N, H/f, W/f, 2 * latent] (mean, then log-variance). */
  forward(x: tf.Tensor, _args?: ForwardArgs): tf.Tensor {
    const steps: Step[] = [
      (h) => conv2dForInference(this.convIn, h),
      ...this.downBlocks.map((b) => (h: tf.Tensor) => b.forward(h)),
      (h) => this.midBlock.forward(h),
      (h) => groupNormForInference(this.convNormOut, h),
      siluForInference,
      (h) => conv2dForInference(this.convOut, h),
    ];
    return sequential(x, steps);
  }
}
