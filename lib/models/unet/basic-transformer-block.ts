/**
 * diffusers' `BasicTransformerBlock` (layer-norm variant): self-attention, cross-attention to the text, GEGLU
 * feed-forward, each pre-normalised and residual. The cross-attention (`attn2`) reports its probabilities to the
 * forward's hook under its module path in the model's tree (`UNetBlockArgs.layerPaths`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Attention } from '../layers/attention.js';
import { LayerNorm } from '../layers/layer-norm.js';
import { type ForwardArgs, Module } from '../layers/module.js';
import { FeedForward } from './feed-forward.js';
import type { CrossAttentionHook } from './hooks.js';

/** What every UNet block's forward receives besides its input. */
export interface UNetBlockArgs extends ForwardArgs {
  /** The time embedding [B, temb]. */
  temb: tf.Tensor;
  /** The text context [B, keys, crossAttentionDim]. */
  context: tf.Tensor;
  /** Observer of the cross-attention maps. */
  hook?: CrossAttentionHook;
  /**
   * The module path of each cross-attention layer, the names the hook receives (`crossAttentionPaths` of the
   * model run; the UNet passes its own). Needed with a hook.
   */
  layerPaths?: ReadonlyMap<Module, string>;
  /** Recompute each layer's activations in the backward pass instead of keeping them (`recompute.ts`). */
  checkpoint?: boolean;
}

export class BasicTransformerBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn1: Attention;
  readonly norm2: LayerNorm;
  readonly attn2: Attention;
  readonly norm3: LayerNorm;
  readonly ff: FeedForward;

  constructor(dim: number, heads: number, headDim: number, crossAttentionDim: number) {
    super();
    this.norm1 = this.child('norm1', new LayerNorm(dim));
    this.attn1 = this.child('attn1', new Attention({ queryDim: dim, heads, dimHead: headDim }));
    this.norm2 = this.child('norm2', new LayerNorm(dim));
    this.attn2 = this.child('attn2', new Attention({ queryDim: dim, crossAttentionDim, heads, dimHead: headDim }));
    this.norm3 = this.child('norm3', new LayerNorm(dim));
    this.ff = this.child('ff', new FeedForward(dim));
  }

  forward(x: tf.Tensor, args: UNetBlockArgs): tf.Tensor {
    return tf.tidy(() => {
      let h = tf.add(this.attn1.forward(this.norm1.forward(x), this.selfAttentionArgs(args, x.shape[1]!)), x);
      h = tf.add(this.attn2.forward([this.norm2.forward(h), args.context], this.crossAttentionArgs(args)), h);
      return tf.add(this.ff.forward(this.norm3.forward(h)), h);
    });
  }

  /** What `attn1` tells the hook and takes from it (`queries`: its query count), under its module path. */
  private selfAttentionArgs(args: UNetBlockArgs, queries: number): { onProbs?: (probs: tf.Tensor3D) => void; probs?: tf.Tensor3D } {
    const hook = args.hook;
    if (hook === undefined || (hook.selfAttention === undefined && hook.selfAttentionProbs === undefined)) return {};
    const layer = args.layerPaths?.get(this.attn1);
    if (layer === undefined) throw new Error('BasicTransformerBlock: a self-attention hook needs the module paths of the attention layers (UNetBlockArgs.layerPaths)');
    const probs = hook.selfAttentionProbs?.(layer, queries);
    const observe = hook.selfAttention !== undefined && hook.wantsSelfAttention?.(layer, queries) === true;
    return { probs, onProbs: observe ? (p) => hook.selfAttention!(layer, p) : undefined };
  }

  /** What `attn2` tells the hook and takes from it, under its module path; nothing without a hook. */
  private crossAttentionArgs(args: UNetBlockArgs): { onProbs?: (probs: tf.Tensor3D) => void; probs?: tf.Tensor3D } {
    const hook = args.hook;
    if (hook === undefined) return {};
    const layer = args.layerPaths?.get(this.attn2);
    if (layer === undefined) throw new Error('BasicTransformerBlock: a hook needs the module paths of the cross-attention layers (UNetBlockArgs.layerPaths)');
    return { onProbs: (probs) => hook.crossAttention(layer, probs), probs: hook.crossAttentionProbs?.(layer) };
  }
}
