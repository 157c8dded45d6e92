/**
 * The service interfaces of the editing pipeline and their injection tokens. Each long call takes
 * {@link LongCallOptions}: an `onProgress` callback and an `AbortSignal`. Implementations live beside this file
 * and are wired in `lib/container.ts`.
 */
import type * as tf from '@tensorflow/tfjs-core';

/** Injection tokens (inversify service identifiers). */
export const TYPES = {
  Captioner: Symbol.for('pix2pix-zero.Captioner'),
  TextEmbedder: Symbol.for('pix2pix-zero.TextEmbedder'),
  DirectionDiscovery: Symbol.for('pix2pix-zero.DirectionDiscovery'),
  Inverter: Symbol.for('pix2pix-zero.Inverter'),
  GuidedSampler: Symbol.for('pix2pix-zero.GuidedSampler'),
  /** {@link DirectionDiscoverySettings} for the direction discovery service. */
  DirectionDiscoverySettings: Symbol.for('pix2pix-zero.DirectionDiscoverySettings'),
} as const;

/** Progress of a long call: `step` of `total` done in `phase`. */
export interface ProgressEvent {
  /** e.g. `caption`, `direction`, `inversion`, `edit`, `decode`. */
  readonly phase: string;
  readonly step: number;
  readonly total: number;
}

/** Options every long call takes. */
export interface LongCallOptions {
  /** Called after each step. */
  onProgress?: (event: ProgressEvent) => void;
  /** Aborts the call between steps; the call rejects with the signal's reason and frees its tensors. */
  signal?: AbortSignal;
}

/** Throws the signal's reason if it has been aborted. Long loops call it between steps. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) {
    throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
  }
}

/** Writes the caption of an image (BLIP). */
export interface Captioner {
  /** The caption of `image` ([H, W, 3] in [-1, 1] or [0, 255] as documented by the implementation). */
  caption(image: tf.Tensor3D, options?: LongCallOptions): Promise<string>;
}

/** Encodes text with the Stable Diffusion text encoder. */
export interface TextEmbedder {
  /** Embeddings of `prompts`: [n, 77, d] (`last_hidden_state`). The caller disposes the tensor. */
  embed(prompts: readonly string[], options?: LongCallOptions): Promise<tf.Tensor3D>;
  /** The mean embedding of many sentences, [1, 77, d], computed in batches. The caller disposes the tensor. */
  meanEmbedding(sentences: readonly string[], options?: LongCallOptions): Promise<tf.Tensor3D>;
}

/** A concept: a word with a built-in sentence bank, or a name with its own sentences. */
export type Concept = string | { readonly name: string; readonly sentences: readonly string[] };

/** Settings of the direction discovery service. */
export interface DirectionDiscoverySettings {
  /** Fingerprint of the text encoder (keys the embedding cache). */
  readonly modelId: string;
  /** Where mean embeddings are cached; `false` turns the cache off. */
  readonly cacheDir: string | false;
}

/** Finds edit directions in text-embedding space from sentences about two concepts. */
export interface DirectionDiscovery {
  /** `mean(E(target sentences)) - mean(E(source sentences))`, [1, 77, d]. The caller disposes the tensor. */
  direction(source: Concept, target: Concept, options?: LongCallOptions): Promise<tf.Tensor3D>;
  /** The mean embedding of a concept's sentences, [1, 77, d] (cached on disk). The caller disposes it. */
  conceptEmbedding(concept: Concept, options?: LongCallOptions): Promise<tf.Tensor3D>;
}

/** Inverts an image to noise (DDIM inversion with noise regularisation). */
export interface Inverter {
  /** The inverted latent x_T for `image` conditioned on `caption`. The caller disposes the tensor. */
  invert(image: tf.Tensor4D, caption: string, options?: LongCallOptions): Promise<tf.Tensor4D>;
}

/** Regenerates an image from inverted noise with cross-attention guidance (reference and edit passes). */
export interface GuidedSampler {
  /** The edited latent x_0 from `noise`, the caption and an edit direction. The caller disposes the tensor. */
  sample(noise: tf.Tensor4D, caption: string, direction: tf.Tensor3D, options?: LongCallOptions): Promise<tf.Tensor4D>;
}
