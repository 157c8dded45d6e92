/**
 * The UNet's up blocks: `CrossAttnUpBlock2D` and `UpBlock2D`. Each layer concatenates the next skip state from
 * the down path (last in, first out) onto its input channels, then resnet (+ transformer); all but the last
 * block end with a nearest-neighbour 2x upsampler.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Module } from '../layers/module.js';
import { ResnetBlock2D } from '../layers/resnet-block-2d.js';
import { Upsample2D } from '../layers/sampling.js';
import type { UNetBlockArgs } from './basic-transformer-block.js';
import { type BlockAttention, Transformer2DModel, blockTransformer } from './transformer-2d.js';

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

  constructor(cfg: UpBlockConfig, path: string) {
    super();
    this.resnets = this.childList(
      'resnets',
      Array.from({ length: cfg.numLayers }, (_, i) => {
        const skip = i === cfg.numLayers - 1 ? cfg.inChannels : cfg.outChannels;
        const input = i === 0 ? cfg.prevOutputChannels : cfg.outChannels;
        return new ResnetBlock2D({ inChannels: input + skip, outChannels: cfg.outChannels, tembChannels: cfg.tembChannels, groups: cfg.groups, eps: cfg.eps });
      }),
    );
    const att = cfg.attention;
    this.attentions =
      att === undefined
        ? []
        : this.childList(
            'attentions',
            Array.from({ length: cfg.numLayers }, (_, i) => blockTransformer(cfg.outChannels, att, cfg.groups, `${path}.attentions.${i}`)),
          );
    if (cfg.addUpsample) this.upsampler = this.child('upsamplers.0', new Upsample2D(cfg.outChannels, cfg.outChannels));
  }

  forward(x: tf.Tensor, args: UNetBlockArgs): tf.Tensor {
    return this.forwardWithSkips(x, [], args);
  }

  /** `skips`: this block's skip states, in down-path order (the last is used first). */
  forwardWithSkips(x: tf.Tensor, skips: tf.Tensor[], args: UNetBlockArgs): tf.Tensor {
    if (skips.length !== this.resnets.length) throw new Error(`up block expects ${this.resnets.length} skip states, got ${skips.length}`);
    let h = x;
    this.resnets.forEach((resnet, i) => {
      h = resnet.forward([tf.concat([h, skips[skips.length - 1 - i]!], 3), args.temb]);
      const attn = this.attentions[i];
      if (attn !== undefined) h = attn.forward(h, args);
    });
    return this.upsampler !== undefined ? this.upsampler.forward(h) : h;
  }
}
