/**
 * `Attention`: diffusers' attention block (`to_q`, `to_k`, `to_v`, `to_out.0`), used for self- and
 * cross-attention in the UNet's transformer blocks and for the VAE's mid-block self-attention (with its
 * `group_norm`, residual connection and output rescale).
 *
 * Like diffusers' attention processors, a caller can observe the attention probabilities of one forward pass by
 * passing `onProbs` in the forward arguments (see {@link AttentionOptions.onProbs}).
 */
import * as tf from '@tensorflow/tfjs-core';
import { GroupNorm } from './group-norm.js';
import { Linear } from './linear.js';
import { type ForwardArgs, Module } from './module.js';
import { type AttentionOptions, multiHeadAttention } from './attention-core.js';

/** The shape of an {@link Attention} block, as diffusers' `Attention.__init__` takes it. */
export interface AttentionConfig {
  queryDim: number;
  /** Width of the context for cross-attention; omitted for self-attention. */
  crossAttentionDim?: number;
  heads: number;
  dimHead: number;
  /** Bias in the q/k/v projections (diffusers' `bias`, default false). */
  bias?: boolean;
  /** Bias in the output projection (default true). */
  outBias?: boolean;
  /** Group-normalise the input first (the VAE's attention). */
  normNumGroups?: number;
  eps?: number;
  /** Add the input to the output (the VAE's attention). */
  residualConnection?: boolean;
  /** Divide the output by this (default 1). */
  rescaleOutputFactor?: number;
}

/** Forward arguments of {@link Attention}. */
export interface AttentionArgs extends ForwardArgs {
  /** Observer of this call's attention probabilities, [batch * heads, queries, keys]. */
  onProbs?: AttentionOptions['onProbs'];
  /** Probabilities to use instead of this call's own (see {@link AttentionOptions.probs}). */
  probs?: AttentionOptions['probs'];
}

export class Attention extends Module {
  readonly toQ: Linear;
  readonly toK: Linear;
  readonly toV: Linear;
  readonly toOut: Linear;
  readonly groupNorm?: GroupNorm;
  readonly isCrossAttention: boolean;

  constructor(readonly config: AttentionConfig) {
    super();
    const inner = config.heads * config.dimHead;
    const ctx = config.crossAttentionDim ?? config.queryDim;
    const bias = config.bias ?? false;
    this.isCrossAttention = config.crossAttentionDim !== undefined;
    if (config.normNumGroups !== undefined) {
      this.groupNorm = this.child('group_norm', new GroupNorm(config.normNumGroups, config.queryDim, config.eps ?? 1e-5));
    }
    this.toQ = this.child('to_q', new Linear(config.queryDim, inner, bias));
    this.toK = this.child('to_k', new Linear(ctx, inner, bias));
    this.toV = this.child('to_v', new Linear(ctx, inner, bias));
    this.toOut = this.child('to_out.0', new Linear(inner, config.queryDim, config.outBias ?? true));
  }

  /**
   * `inputs`: the hidden states, [B, L, C] or [B, H, W, C] (spatial, as in the VAE), and for cross-attention the
   * context [B, Lk, crossAttentionDim].
   */
  forward(inputs: tf.Tensor | tf.Tensor[], args: AttentionArgs = {}): tf.Tensor {
    return tf.tidy(() => {
      const [x, context] = Array.isArray(inputs) ? inputs : [inputs];
      if (x === undefined) throw new Error('Attention: no input');
      let h = this.groupNorm !== undefined ? this.groupNorm.forward(x) : x;
      const spatial = h.shape.length === 4;
      if (spatial) h = tf.reshape(h, [h.shape[0]!, -1, h.shape[3]!]);
      const ctx = context ?? h;
      const q = this.toQ.forward(h);
      const k = this.toK.forward(ctx);
      const v = this.toV.forward(ctx);
      let out: tf.Tensor = this.toOut.forward(multiHeadAttention(q, k, v, this.config.heads, { onProbs: args.onProbs, probs: args.probs }));
      if (spatial) out = tf.reshape(out, x.shape);
      if (this.config.residualConnection === true) out = tf.add(out, x);
      const rescale = this.config.rescaleOutputFactor ?? 1;
      return rescale !== 1 ? tf.div(out, rescale) : out;
    });
  }
}
