/**
 * What the editing services need from the models, as small interfaces: the denoising UNet (with its
 * cross-attention maps) and the VAE. Adapters in `lib/editing/adapters.ts` fit the model classes to them; tests
 * can pass stand-ins. All image-like tensors are NHWC.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { TorchGenerator } from '../random/torch-generator.js';

/** Cross-attention probabilities of one forward pass, by layer path, each [batch * heads, queries, keys]. */
export type AttentionMaps = Map<string, tf.Tensor3D>;

/** The denoising network as the pipeline uses it. */
export interface DenoiserPort {
  /** Channels of the latent (4 for Stable Diffusion). */
  readonly latentChannels: number;
  /**
   * The model output (noise, v or sample, per the scheduler's prediction type) for `latents` [B, h, w, c];
   * `selfAttention` and `crossAttention` replace the self- and cross-attention maps of the layers they name
   * (borrowed).
   */
  predict(latents: tf.Tensor4D, timestep: number, context: tf.Tensor3D, options?: { selfAttention?: AttentionMaps; crossAttention?: AttentionMaps }): tf.Tensor4D;
  /**
   * {@link predict}, also returning every cross-attention map of the pass, and with `selfAttentionMaxQueries` the
   * self-attention maps of the layers with at most that many queries (kept; the caller disposes them). `timestep`
   * may give one timestep per batch item (a batch that joins two passes at different steps).
   */
  predictWithMaps(
    latents: tf.Tensor4D,
    timestep: number | readonly number[],
    context: tf.Tensor3D,
    options?: { selfAttentionMaxQueries?: number },
  ): { output: tf.Tensor4D; maps: AttentionMaps; selfMaps?: AttentionMaps };
  /**
   * The pix2pix-zero cross-attention loss of a forward pass on `latents` against `reference` maps:
   * sum over layers of mean over (batch * heads) of sum over (query, key) of (M - M_ref)^2. Differentiable with
   * respect to `latents` (called inside `tf.grad`).
   */
  crossAttentionLoss(latents: tf.Tensor4D, timestep: number, context: tf.Tensor3D, reference: AttentionMaps): tf.Scalar;
  /**
   * The gradient of {@link crossAttentionLoss} with respect to `latents` (optional: without it the sampler takes
   * `tf.grad` of the loss). A denoiser that can compute it faster than the tape (as one graph) offers it.
   */
  crossAttentionLossGradient?(latents: tf.Tensor4D, timestep: number, context: tf.Tensor3D, reference: AttentionMaps): tf.Tensor4D;
}

/** The VAE as the pipeline uses it. */
export interface AutoencoderPort {
  /** `scaling_factor` of the VAE config. */
  readonly scalingFactor: number;
  /** Spatial downscale from image to latent (8 for Stable Diffusion). */
  readonly downscale: number;
  /**
   * Scaled latents of an image [1, H, W, 3] in [-1, 1]: the posterior mean, or a sample drawn from `generator`
   * (a seed, or a generator that advances, so the inversion's roll shifts can continue from it as in diffusers).
   */
  encode(image: tf.Tensor4D, mode: 'mean' | 'sample', generator?: number | TorchGenerator): tf.Tensor4D;
  /** The image [1, H, W, 3] in [-1, 1] (unclamped) of scaled latents. */
  decode(latents: tf.Tensor4D): tf.Tensor4D;
}
