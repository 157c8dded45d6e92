/**
 * diffusers' `Transformer2DModel` for continuous (image) input: GroupNorm, an input projection (1x1 conv, or
 * linear with `use_linear_projection`), transformer blocks over the H*W tokens, an output projection, and the
 * residual.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Conv2d } from '../layers/conv2d.js';
import { GroupNorm } from '../layers/group-norm.js';
import { Linear } from '../layers/linear.js';
import { Module } from '../layers/module.js';
import { BasicTransformerBlock, type UNetBlockArgs } from './basic-transformer-block.js';

export interface Transformer2DConfig {
  heads: number;
  headDim: number;
  inChannels: number;
  crossAttentionDim: number;
  normNumGroups: number;
  useLinearProjection: boolean;
  numLayers?: number;
}

export class Transformer2DModel extends Module {
  readonly norm: GroupNorm;
  readonly projIn: Conv2d | Linear;
  readonly blocks: BasicTransformerBlock[];
  readonly projOut: Conv2d | Linear;

  constructor(readonly config: Transformer2DConfig) {
    super();
    const inner = config.heads * config.headDim;
    const c = config.inChannels;
    this.norm = this.child('norm', new GroupNorm(config.normNumGroups, c, 1e-6));
    this.projIn = this.child('proj_in', config.useLinearProjection ? new Linear(c, inner) : new Conv2d(c, inner, 1));
    this.blocks = this.childList(
      'transformer_blocks',
      Array.from({ length: config.numLayers ?? 1 }, () => new BasicTransformerBlock(inner, config.heads, config.headDim, config.crossAttentionDim)),
    );
    this.projOut = this.child('proj_out', config.useLinearProjection ? new Linear(inner, c) : new Conv2d(inner, c, 1));
  }

  /** `x`: [B, H, W, C]. */
  forward(x: tf.Tensor, args: UNetBlockArgs): tf.Tensor {
    return tf.tidy(() => {
      const [b, h, w, c] = x.shape as [number, number, number, number];
      const inner = this.config.heads * this.config.headDim;
      const normed = this.norm.forward(x);
      // A 1x1 conv and a linear map are the same computation on NHWC data; only the weight layouts differ.
      let tokens = tf.reshape(this.projIn.forward(normed), [b, h * w, inner]);
      for (const block of this.blocks) tokens = block.forward(tokens, args);
      const out = this.projOut.forward(tf.reshape(tokens, [b, h, w, inner]));
      return tf.add(tf.reshape(out, [b, h, w, c]), x);
    });
  }
}

/** The cross-attention settings of a UNet block. */
export interface BlockAttention {
  heads: number;
  crossAttentionDim: number;
  useLinearProjection: boolean;
}

/** The `Transformer2DModel` a UNet block puts after a resnet: `channels / heads` per head. */
export function blockTransformer(channels: number, att: BlockAttention, groups: number): Transformer2DModel {
  return new Transformer2DModel({
    heads: att.heads,
    headDim: channels / att.heads,
    inChannels: channels,
    crossAttentionDim: att.crossAttentionDim,
    normNumGroups: groups,
    useLinearProjection: att.useLinearProjection,
  });
}

/** A block's `attentions`: one {@link blockTransformer} per layer, or none for a block without cross-attention. */
export function blockTransformers(numLayers: number, channels: number, att: BlockAttention | undefined, groups: number): Transformer2DModel[] {
  return att === undefined ? [] : Array.from({ length: numLayers }, () => blockTransformer(channels, att, groups));
}
