/**
 * The UNet's up blocks: `CrossAttnUpBlock2D` and `UpBlock2D`. Each layer concatenates the next skip state from
 * the down path (last in, first out) onto its input channels, then resnet (+ transformer); all but the last
 * block end with a nearest-neighbour 2x upsampler.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Module } from '../layers/module.js';
import { ResnetBlock2D } from '../layers/resnet-block-2d.js';
import { Upsample2D, upsampleNearest2x } from '../layers/sampling.js';
import type { UNetBlockArgs } from './basic-transformer-block.js';
import { runLayer } from './recompute.js';
import { type BlockAttention, Transformer2DModel, blockTransformers } from './transformer-2d.js';

export interface UpBlockConfig {
  /** Channels of the skip state the last layer takes (the matching down block's input). */
  inChannels: number;
  outChannels: number;
  /** Channels coming from the block below. */
  prevOutputChannels: number;
  tembChannels: number;
  numLayers: number;
  addUpsample: boolean;
  groups: number;
  eps: number;
  attention?: BlockAttention;
}

export class UpBlock extends Module {
  readonly resnets: ResnetBlock2D[];
  readonly attentions: Transformer2DModel[];
  readonly upsampler?: Upsample2D;

  constructor(cfg: UpBlockConfig) {
    super();
    this.resnets = this.childList(
      'resnets',
      Array.from({ length: cfg.numLayers }, (_, i) => {
        const skip = i === cfg.numLayers - 1 ? cfg.inChannels : cfg.outChannels;
        const input = i === 0 ? cfg.prevOutputChannels : cfg.outChannels;
        return new ResnetBlock2D({ inChannels: input + skip, outChannels: cfg.outChannels, tembChannels: cfg.tembChannels, groups: cfg.groups, eps: cfg.eps });
      }),
    );
    this.attentions = this.childList('attentions', blockTransformers(cfg.numLayers, cfg.outChannels, cfg.attention, cfg.groups));
    if (cfg.addUpsample) this.upsampler = this.child('upsamplers.0', new Upsample2D(cfg.outChannels, cfg.outChannels));
  }

  forward(x: tf.Tensor, args: UNetBlockArgs): tf.Tensor {
    return this.forwardWithSkips(x, [], args);
  }

  /**
   * `skips`: this block's skip states, in down-path order (the last is used first). `upsampleSize` [H, W]: the
   * size the upsampler must produce when it is not twice the input (diffusers' `upsample_size`, for latents whose
   * side is not a multiple of 2^downsamplers): nearest 2x, cropped, which is exactly PyTorch's nearest resize to
   * 2n - 1, the only other size a stride-2 downsampler leaves.
   */
  forwardWithSkips(x: tf.Tensor, skips: tf.Tensor[], args: UNetBlockArgs, upsampleSize?: [number, number]): tf.Tensor {
    if (skips.length !== this.resnets.length) throw new Error(`up block expects ${this.resnets.length} skip states, got ${skips.length}`);
    return tf.tidy(() => {
      let h = x;
      this.resnets.forEach((resnet, i) => {
        h = runLayer(args, tf.concat([h, skips[skips.length - 1 - i]!], 3), (x, a) => resnet.forward([x, a.temb]));
        const attn = this.attentions[i];
        if (attn !== undefined) h = runLayer(args, h, (x, a) => attn.forward(x, a));
      });
      if (this.upsampler === undefined) return h;
      const [, hh, ww] = h.shape as [number, number, number, number];
      if (upsampleSize === undefined || (upsampleSize[0] === 2 * hh && upsampleSize[1] === 2 * ww)) return this.upsampler.forward(h);
      const [th, tw] = upsampleSize;
      if (th < 2 * hh - 1 || th > 2 * hh || tw < 2 * ww - 1 || tw > 2 * ww) {
        throw new Error(`up block: cannot upsample ${hh}x${ww} to ${th}x${tw} (only to twice the size, or one less)`);
      }
      const up = tf.slice(upsampleNearest2x(h), [0, 0, 0, 0], [-1, th, tw, -1]);
      return this.upsampler.conv.forward(up);
    });
  }
}
