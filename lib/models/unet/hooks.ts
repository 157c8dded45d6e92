/**
 * Cross-attention hooks, in the spirit of diffusers' attention processors: a hook given to the UNet's forward
 * sees the attention probabilities of every cross-attention layer (`attn2` of each transformer block), named by
 * its diffusers module path (`down_blocks.0.attentions.0.transformer_blocks.0.attn2`), shaped
 * [batch * heads, queries, keys]. Without a hook nothing is recorded.
 *
 * The probabilities are made inside the layer's `tf.tidy`; a hook that keeps something must `tf.keep` it (and
 * dispose it later).
 *
 * This file holds only the mechanism (the hook contracts and a recorder); what a hook computes from the maps
 * belongs to its user, e.g. pix2pix-zero's guidance loss (`lib/editing/cross-attention-loss.ts`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Attention } from '../layers/attention.js';
import type { Module } from '../layers/module.js';

/**
 * Receives each cross-attention layer's probabilities during one forward pass; optionally also sees the
 * self-attention layers' (`attn1`), and may replace them (Prompt-to-Prompt's self-attention replacement).
 */
export interface CrossAttentionHook {
  crossAttention(layer: string, probs: tf.Tensor3D): void;
  /** Told a self-attention layer's probabilities of `queries` queries, when {@link wantsSelfAttention} says so. */
  selfAttention?(layer: string, probs: tf.Tensor3D): void;
  /** Whether {@link selfAttention} wants the probabilities of this layer (default: none). */
  wantsSelfAttention?(layer: string, queries: number): boolean;
  /** Probabilities to use in this self-attention layer instead of its own, or undefined to keep its own. */
  selfAttentionProbs?(layer: string, queries: number): tf.Tensor3D | undefined;
  /**
   * Probabilities to use in this cross-attention layer instead of its own, or undefined to keep its own
   * (Prompt-to-Prompt's cross-attention replacement); {@link crossAttention} is then told the replacement.
   */
  crossAttentionProbs?(layer: string): tf.Tensor3D | undefined;
}

/**
 * A hook that accumulates a differentiable loss and can be split over recomputed segments of the forward pass
 * (gradient checkpointing, `layers/checkpoint.ts`): a segment runs with a {@link fork} of it and returns the fork's
 * {@link segmentLoss} as one of its outputs, which the hook then {@link absorb}s.
 */
export interface SegmentedLossHook extends CrossAttentionHook {
  /** An empty hook of the same kind, for one segment. */
  fork(): SegmentedLossHook;
  /** The loss accumulated by this hook so far (0 when no layer reported), as a tensor of the graph. */
  segmentLoss(): tf.Scalar;
  /** Adds a segment's loss to this hook's. */
  absorb(loss: tf.Scalar): void;
}

/**
 * Every cross-attention layer under `root`, with the module path its hook reports it by: the path of the tree
 * `root` registered with `child()` ({@link Module.namedModules}), as diffusers' `attn_processors` names them.
 * The UNet computes this once for its whole tree; a block run on its own names its layers relative to itself.
 */
export function crossAttentionPaths(root: Module): Map<Module, string> {
  const paths = new Map<Module, string>();
  for (const [path, m] of root.namedModules()) if (m instanceof Attention && m.isCrossAttention) paths.set(m, path);
  return paths;
}

/**
 * Every attention layer of the transformer blocks under `root` (`attn1`, self-, and `attn2`, cross-attention),
 * with its module path; {@link crossAttentionPaths} is its cross-attention part.
 */
export function attentionPaths(root: Module): Map<Module, string> {
  const paths = new Map<Module, string>();
  for (const [path, m] of root.namedModules()) if (m instanceof Attention) paths.set(m, path);
  return paths;
}

/** Whether a hook can be split over checkpointed segments. */
export function isSegmentedLossHook(hook: CrossAttentionHook): hook is SegmentedLossHook {
  const h = hook as Partial<SegmentedLossHook>;
  return typeof h.fork === 'function' && typeof h.segmentLoss === 'function' && typeof h.absorb === 'function';
}

/**
 * Records every cross-attention map of a forward pass, and, given `selfAttentionMaxQueries`, the self-attention
 * maps of the layers with at most that many queries (kept copies; call {@link take} or {@link dispose}).
 */
export class AttentionRecorder implements CrossAttentionHook {
  readonly maps = new Map<string, tf.Tensor3D>();
  readonly selfMaps = new Map<string, tf.Tensor3D>();
  constructor(readonly selfAttentionMaxQueries = 0) {}
  crossAttention(layer: string, probs: tf.Tensor3D): void {
    AttentionRecorder.put(this.maps, layer, probs);
  }
  wantsSelfAttention(_layer: string, queries: number): boolean {
    return queries <= this.selfAttentionMaxQueries;
  }
  selfAttention(layer: string, probs: tf.Tensor3D): void {
    AttentionRecorder.put(this.selfMaps, layer, probs);
  }
  /** Hands the cross-attention maps over to the caller (who disposes them). */
  take(): Map<string, tf.Tensor3D> {
    const out = new Map(this.maps);
    this.maps.clear();
    return out;
  }
  /** Hands the self-attention maps over to the caller (who disposes them). */
  takeSelf(): Map<string, tf.Tensor3D> {
    const out = new Map(this.selfMaps);
    this.selfMaps.clear();
    return out;
  }
  dispose(): void {
    for (const m of [...this.maps.values(), ...this.selfMaps.values()]) m.dispose();
    this.maps.clear();
    this.selfMaps.clear();
  }
  private static put(maps: Map<string, tf.Tensor3D>, layer: string, probs: tf.Tensor3D): void {
    maps.get(layer)?.dispose();
    maps.set(layer, tf.keep(tf.clone(probs)));
  }
}

/**
 * A hook that replays attention maps (by layer path; borrowed) in the layers they name: self-attention maps in
 * `attn1` layers, cross-attention maps in `attn2` layers.
 */
export class AttentionReplay implements CrossAttentionHook {
  constructor(
    readonly selfMaps: ReadonlyMap<string, tf.Tensor3D> = new Map(),
    readonly crossMaps: ReadonlyMap<string, tf.Tensor3D> = new Map(),
  ) {}
  crossAttention(): void {}
  selfAttentionProbs(layer: string): tf.Tensor3D | undefined {
    return this.selfMaps.get(layer);
  }
  crossAttentionProbs(layer: string): tf.Tensor3D | undefined {
    return this.crossMaps.get(layer);
  }
}
