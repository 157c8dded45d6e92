/** `UNetMidBlock2DCrossAttn`: resnet, then (transformer, resnet) per layer, at the lowest resolution. */
import * as tf from '@tensorflow/tfjs-core';
import { Module } from '../layers/module.js';
import { ResnetBlock2D } from '../layers/resnet-block-2d.js';
import type { UNetBlockArgs } from './basic-transformer-block.js';
import { runLayer } from './recompute.js';
import { type BlockAttention, Transformer2DModel, blockTransformers } from './transformer-2d.js';

export class UNetMidBlock2DCrossAttn extends Module {
  readonly resnets: ResnetBlock2D[];
  readonly attentions: Transformer2DModel[];

  constructor(
    channels: number,
    tembChannels: number,
    groups: number,
    eps: number,
    attention: BlockAttention,
    numLayers = 1,
  ) {
    super();
    const resnet = (): ResnetBlock2D => new ResnetBlock2D({ inChannels: channels, outChannels: channels, tembChannels, groups, eps });
    this.resnets = this.childList('resnets', Array.from({ length: numLayers + 1 }, resnet));
    this.attentions = this.childList('attentions', blockTransformers(numLayers, channels, attention, groups));
  }

  forward(x: tf.Tensor, args: UNetBlockArgs): tf.Tensor {
    return tf.tidy(() => {
      let h = runLayer(args, x, (v, a) => this.resnets[0]!.forward([v, a.temb]));
      this.attentions.forEach((attn, i) => {
        h = runLayer(args, h, (v, a) => attn.forward(v, a));
        h = runLayer(args, h, (v, a) => this.resnets[i + 1]!.forward([v, a.temb]));
      });
      return h;
    });
  }
}
