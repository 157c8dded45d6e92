/**
 * diffusers' VAE `Decoder` (latent -> image), NHWC:
 * `conv_in` -> `UNetMidBlock2D` -> `UpDecoderBlock2D` x n (channels reversed, `layers_per_block + 1` resnets each)
 * -> `conv_norm_out` -> SiLU -> `conv_out`.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { Conv2d } from '../layers/conv2d.js';
import { GroupNorm } from '../layers/group-norm.js';
import { type ForwardArgs, Module } from '../layers/module.js';
import { UNetMidBlock2D, UpDecoderBlock2D, VAE_EPS, sequential, type Step } from './blocks.js';
import type { VaeConfig } from './config.js';
import { conv2dForInference, groupNormForInference, siluForInference } from './inference.js';

/** diffusers' `Decoder` with GroupNorm (`norm_type="group"`). */
export class Decoder extends Module {
  readonly convIn: Conv2d;
  readonly midBlock: UNetMidBlock2D;
  readonly upBlocks: UpDecoderBlock2D[];
  readonly convNormOut: GroupNorm;
  readonly convOut: Conv2d;

  constructor(readonly config: VaeConfig) {
    super();
    const reversed = [...config.blockOutChannels].reverse();
    const groups = config.normNumGroups;
    this.convIn = this.child('conv_in', new Conv2d(config.latentChannels, reversed[0]!, 3, 1, 1));
    this.midBlock = this.child('mid_block', new UNetMidBlock2D({ channels: reversed[0]!, groups, addAttention: config.midBlockAddAttention }));
    this.upBlocks = this.childList(
      'up_blocks',
      reversed.map(
        (out, i) =>
          new UpDecoderBlock2D({
            inChannels: i === 0 ? reversed[0]! : reversed[i - 1]!,
            outChannels: out,
            numLayers: config.layersPerBlock + 1,
            groups,
            addUpsample: i < reversed.length - 1,
          }),
      ),
    );
    const first = config.blockOutChannels[0]!;
    this.convNormOut = this.child('conv_norm_out', new GroupNorm(groups, first, VAE_EPS));
    this.convOut = this.child('conv_out', new Conv2d(first, config.outChannels, 3, 1, 1));
  }

  /** Latents [N, h, w, latent] -> images [N, h*f, w*f, out]. */
  forward(z: tf.Tensor, _args?: ForwardArgs): tf.Tensor {
    const steps: Step[] = [
      (h) => conv2dForInference(this.convIn, h),
      (h) => this.midBlock.forward(h),
      ...this.upBlocks.map((b) => (h: tf.Tensor) => b.forward(h)),
      (h) => groupNormForInference(this.convNormOut, h),
      siluForInference,
      (h) => conv2dForInference(this.convOut, h),
    ];
    return sequential(z, steps);
  }
}
