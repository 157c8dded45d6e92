/**
 * The UNet's down blocks (diffusers `unet_2d_blocks.py`): `CrossAttnDownBlock2D` (resnet + transformer per layer)
 * and `DownBlock2D` (resnets only), each ending with a stride-2 downsampler except the last. They return their
 * output and every intermediate state, which the up blocks take as skip connections.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Module } from '../layers/module.js';
import { ResnetBlock2D } from '../layers/resnet-block-2d.js';
import { Downsample2D } from '../layers/sampling.js';
import type { UNetBlockArgs } from './basic-transformer-block.js';
import { runLayer } from './recompute.js';
import { type BlockAttention, Transformer2DModel, blockTransformers } from './transformer-2d.js';

/** What a down block is built from. */
export interface DownBlockConfig {
  inChannels: number;
  outChannels: number;
  tembChannels: number;
  numLayers: number;
  addDownsample: boolean;
  groups: number;
  eps: number;
  downsamplePadding: number;
  /** Cross-attention settings; absent for `DownBlock2D`. */
  attention?: BlockAttention;
}

export class DownBlock extends Module {
  readonly resnets: ResnetBlock2D[];
  readonly attentions: Transformer2DModel[];
  readonly downsampler?: Downsample2D;

  constructor(cfg: DownBlockConfig) {
    super();
    this.resnets = this.childList(
      'resnets',
      Array.from({ length: cfg.numLayers }, (_, i) =>
        new ResnetBlock2D({ inChannels: i === 0 ? cfg.inChannels : cfg.outChannels, outChannels: cfg.outChannels, tembChannels: cfg.tembChannels, groups: cfg.groups, eps: cfg.eps }),
      ),
    );
    this.attentions = this.childList('attentions', blockTransformers(cfg.numLayers, cfg.outChannels, cfg.attention, cfg.groups));
    if (cfg.addDownsample) this.downsampler = this.child('downsamplers.0', new Downsample2D(cfg.outChannels, cfg.outChannels, cfg.downsamplePadding));
  }

  forward(x: tf.Tensor, args: UNetBlockArgs): tf.Tensor {
    return this.forwardWithStates(x, args).output;
  }

  /** The block's output and the states it hands to the up path (one per resnet, plus the downsampled one). */
  forwardWithStates(x: tf.Tensor, args: UNetBlockArgs): { output: tf.Tensor; states: tf.Tensor[] } {
    const states: tf.Tensor[] = [];
    let h = x;
    this.resnets.forEach((resnet, i) => {
      h = runLayer(args, h, (x, a) => resnet.forward([x, a.temb]));
      const attn = this.attentions[i];
      if (attn !== undefined) h = runLayer(args, h, (x, a) => attn.forward(x, a));
      states.push(h);
    });
    if (this.downsampler !== undefined) {
      h = this.downsampler.forward(h);
      states.push(h);
    }
    return { output: h, states };
  }
}
