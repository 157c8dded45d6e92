/**
 * The VAE's blocks, built from the blocks shared with the UNet (`ResnetBlock2D`, `Attention`, `Downsample2D`,
 * `Upsample2D`): diffusers' `DownEncoderBlock2D`, `UpDecoderBlock2D` and `UNetMidBlock2D` (as the VAE configures
 * them: no time embedding, GroupNorm eps 1e-6, one-head self-attention with its own GroupNorm and a residual).
 *
 * Memory: the VAE runs at image resolution (a 512x512 image has 128-256 channels at full size, 128-256 MB a
 * tensor), so these blocks run the shared blocks' inference-only forwards (./inference.ts) and free each
 * intermediate as soon as the next one exists ({@link sequential}) instead of holding all of them to the end of
 * one `tf.tidy`. They are inference blocks; nothing differentiates the VAE.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Attention } from '../layers/attention.js';
import { type ForwardArgs, Module } from '../layers/module.js';
import { ResnetBlock2D } from '../layers/resnet-block-2d.js';
import { Downsample2D, Upsample2D } from '../layers/sampling.js';
import { downsampleForInference, resnetForInference, upsampleForInference } from './inference.js';

/** GroupNorm and resnet eps of every VAE block (diffusers' `resnet_eps=1e-6`). */
export const VAE_EPS = 1e-6;

/** A step of a {@link sequential} chain. */
export type Step = (x: tf.Tensor) => tf.Tensor;

/**
 * Applies `steps` in order to `x`, disposing each intermediate result once the next step has consumed it (never
 * `x` itself, which belongs to the caller). Returns the last result.
 */
export function sequential(x: tf.Tensor, steps: readonly Step[]): tf.Tensor {
  let h = x;
  for (const step of steps) {
    const next = step(h);
    if (h !== x && next !== h) h.dispose();
    h = next;
  }
  return h;
}

/** Shape of a {@link DownEncoderBlock2D}. */
export interface DownEncoderBlock2DConfig {
  inChannels: number;
  outChannels: number;
  numLayers: number;
  groups: number;
  /** Halve the resolution at the end (every block but the last). */
  addDownsample: boolean;
}

/** diffusers' `DownEncoderBlock2D`: `numLayers` resnets, then a stride-2 conv padded bottom/right (`padding=0`). */
export class DownEncoderBlock2D extends Module {
  readonly resnets: ResnetBlock2D[];
  readonly downsampler?: Downsample2D;

  constructor(readonly config: DownEncoderBlock2DConfig) {
    super();
    const { inChannels, outChannels, groups } = config;
    this.resnets = this.childList(
      'resnets',
      Array.from({ length: config.numLayers }, (_, i) => new ResnetBlock2D({ inChannels: i === 0 ? inChannels : outChannels, outChannels, groups, eps: VAE_EPS })),
    );
    if (config.addDownsample) this.downsampler = this.child('downsamplers.0', new Downsample2D(outChannels, outChannels, 0));
  }

  /** [N, H, W, in] -> [N, H/2, W/2, out] (no downsampling in the last block). */
  forward(x: tf.Tensor, _args?: ForwardArgs): tf.Tensor {
    const steps: Step[] = this.resnets.map((r) => (h: tf.Tensor) => resnetForInference(r, h));
    const down = this.downsampler;
    if (down !== undefined) steps.push((h) => downsampleForInference(down, h));
    return sequential(x, steps);
  }
}

/** Shape of an {@link UpDecoderBlock2D}. */
export interface UpDecoderBlock2DConfig {
  inChannels: number;
  outChannels: number;
  numLayers: number;
  groups: number;
  /** Double the resolution at the end (every block but the last). */
  addUpsample: boolean;
}

/** diffusers' `UpDecoderBlock2D`: `numLayers` resnets, then nearest 2x upsampling and a 3x3 conv. */
export class UpDecoderBlock2D extends Module {
  readonly resnets: ResnetBlock2D[];
  readonly upsampler?: Upsample2D;

  constructor(readonly config: UpDecoderBlock2DConfig) {
    super();
    const { inChannels, outChannels, groups } = config;
    this.resnets = this.childList(
      'resnets',
      Array.from({ length: config.numLayers }, (_, i) => new ResnetBlock2D({ inChannels: i === 0 ? inChannels : outChannels, outChannels, groups, eps: VAE_EPS })),
    );
    if (config.addUpsample) this.upsampler = this.child('upsamplers.0', new Upsample2D(outChannels, outChannels));
  }

  /** [N, H, W, in] -> [N, 2H, 2W, out] (no upsampling in the last block). */
  forward(x: tf.Tensor, _args?: ForwardArgs): tf.Tensor {
    const steps: Step[] = this.resnets.map((r) => (h: tf.Tensor) => resnetForInference(r, h));
    const up = this.upsampler;
    if (up !== undefined) steps.push((h) => upsampleForInference(up, h));
    return sequential(x, steps);
  }
}

/** Shape of a {@link UNetMidBlock2D}. */
export interface UNetMidBlock2DConfig {
  channels: number;
  groups: number;
  /** Self-attention between the two resnets (`mid_block_add_attention`). */
  addAttention: boolean;
}

/**
 * diffusers' `UNetMidBlock2D` as the VAE builds it (`num_layers=1`, `attention_head_dim` = channels, so one
 * head): resnet, self-attention over all positions (GroupNorm first, residual added), resnet.
 */
export class UNetMidBlock2D extends Module {
  readonly resnets: ResnetBlock2D[];
  readonly attention?: Attention;

  constructor(readonly config: UNetMidBlock2DConfig) {
    super();
    const { channels, groups } = config;
    const resnet = (): ResnetBlock2D => new ResnetBlock2D({ inChannels: channels, outChannels: channels, groups, eps: VAE_EPS });
    const first = this.child('resnets.0', resnet());
    if (config.addAttention) {
      this.attention = this.child(
        'attentions.0',
        new Attention({
          queryDim: channels,
          heads: 1,
          dimHead: channels,
          bias: true,
          outBias: true,
          normNumGroups: groups,
          eps: VAE_EPS,
          residualConnection: true,
          rescaleOutputFactor: 1,
        }),
      );
    }
    this.resnets = [first, this.child('resnets.1', resnet())];
  }

  /** [N, H, W, C] -> [N, H, W, C]. */
  forward(x: tf.Tensor, _args?: ForwardArgs): tf.Tensor {
    const [first, second] = this.resnets as [ResnetBlock2D, ResnetBlock2D];
    const attention = this.attention;
    const steps: Step[] = [(h) => resnetForInference(first, h)];
    if (attention !== undefined) steps.push((h) => attention.forward(h));
    steps.push((h) => resnetForInference(second, h));
    return sequential(x, steps);
  }
}
