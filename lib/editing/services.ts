/**
 * The service interfaces of the editing pipeline and their injection tokens. Each long call takes
 * {@link LongCallOptions}: an `onProgress` callback and an `AbortSignal`. Implementations live beside this file
 * and are wired in `lib/container.ts`.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { ProgressEvent } from '../progress.js';

/** Injection tokens (inversify service identifiers). */
export const TYPES = {
  Captioner: Symbol.for('pix2pix-zero.Captioner'),
  TextEmbedder: Symbol.for('pix2pix-zero.TextEmbedder'),
  DirectionDiscovery: Symbol.for('pix2pix-zero.DirectionDiscovery'),
  Inverter: Symbol.for('pix2pix-zero.Inverter'),
  GuidedSampler: Symbol.for('pix2pix-zero.GuidedSampler'),
  /** The denoising UNet ({@link DenoiserPort}). */
  Denoiser: Symbol.for('pix2pix-zero.Denoiser'),
  /** The parsed scheduler config (a `JsonObject`). */
  SchedulerConfig: Symbol.for('pix2pix-zero.SchedulerConfig'),
  /** The {@link SchedulerFactory} the inverter and the sampler take one scheduler per pass from. */
  SchedulerFactory: Symbol.for('pix2pix-zero.SchedulerFactory'),
  /** {@link DirectionDiscoverySettings} for the direction discovery service. */
  DirectionDiscoverySettings: Symbol.for('pix2pix-zero.DirectionDiscoverySettings'),
} as const;

export type { ProgressEvent } from '../progress.js';

/** Options every long call takes. */
export interface LongCallOptions {
  /** Called after each step. */
  onProgress?: (event: ProgressEvent) => void;
  /** Aborts the call between steps; the call rejects with the signal's reason and frees its tensors. */
  signal?: AbortSignal;
}

/**
 * Throws the signal's reason if it has been aborted (an Error with `message` where the reason is not an Error).
 * Long loops call it between steps.
 */
export function throwIfAborted(signal: AbortSignal | undefined, message = 'aborted'): void {
  if (signal?.aborted === true) {
    throw signal.reason instanceof Error ? signal.reason : new Error(message);
  }
}

/**
 * Writes the caption of an image (BLIP). Every implementation takes the image in one range, 8-bit RGB values:
 * a [height, width, 3] float32 tensor in [0, 255] (the bytes of a decoded image as floats, what the pipeline
 * facade passes; not the model's [-1, 1] input, which a captioner computes with its own preprocessing).
 */
export interface Captioner {
  /** The caption of `image`, [H, W, 3] RGB in [0, 255] (see {@link Captioner}). The tensor is not disposed. */
  caption(image: tf.Tensor3D, options?: LongCallOptions): Promise<string>;
}

/** Encodes text with the Stable Diffusion text encoder. */
export interface TextEmbedder {
  /** Embeddings of `prompts`: [n, 77, d] (`last_hidden_state`). The caller disposes the tensor. */
  embed(prompts: readonly string[], options?: LongCallOptions): Promise<tf.Tensor3D>;
  /** The mean embedding of many sentences, [1, 77, d], computed in batches. The caller disposes the tensor. */
  meanEmbedding(sentences: readonly string[], options?: LongCallOptions): Promise<tf.Tensor3D>;
  /**
   * The tokens of `text` as the encoder reads them, without the start and end tokens (token k is embedding row
   * k + 1). Optional: local blending finds the edited object's words with it.
   */
  tokenize?(text: string): Promise<readonly string[]>;
}

/** A concept: a word with a built-in sentence bank, or a name with its own sentences. */
export type Concept = string | { readonly name: string; readonly sentences: readonly string[] };

/** Settings of the direction discovery service. */
export interface DirectionDiscoverySettings {
  /** Fingerprint of the text encoder (keys the embedding cache). */
  readonly modelId: string;
  /** Where mean embeddings are cached; `false` turns the cache off. */
  readonly cacheDir: string | false;
  /** Told once about each cache entry that cannot be used and is recomputed (default: `process.emitWarning`). */
  readonly onWarning?: (message: string) => void;
  /** Told what was decided for the user, e.g. that generated sentences stand in for a missing bank (default: nobody). */
  readonly onNotice?: (message: string) => void;
}

/** Finds edit directions in text-embedding space from sentences about two concepts. */
export interface DirectionDiscovery {
  /** `mean(E(target sentences)) - mean(E(source sentences))`, [1, 77, d]. The caller disposes the tensor. */
  direction(source: Concept, target: Concept, options?: LongCallOptions): Promise<tf.Tensor3D>;
  /** The mean embedding of a concept's sentences, [1, 77, d] (cached on disk). The caller disposes it. */
  conceptEmbedding(concept: Concept, options?: LongCallOptions): Promise<tf.Tensor3D>;
}

/** Options of {@link Inverter.invert} (the service; the facade's are `Pix2PixZeroInvertOptions`). */
export interface InverterOptions extends LongCallOptions {
  /** DDIM inversion steps (default 50). */
  steps?: number;
  /** Rounds of noise regularisation per step (default 5). */
  numRegSteps?: number;
  /** Auto-correlation steps per round (default 5). */
  numAutoCorrRolls?: number;
  /** Weight of the auto-correlation loss (default 20). */
  lambdaAc?: number;
  /** Weight of the KL loss (default 20). */
  lambdaKl?: number;
  /** Smallest roll shift: 0 as diffusers (default), 1 as the authors' current code. */
  minShift?: 0 | 1;
  /** Seed of the roll shifts (a generator that draws what torch's does with the same seed). Default 0. */
  seed?: number;
  /** Roll shifts to replay instead of drawing them (parity tests feed the reference's). */
  shifts?: { randint(high: number): number };
}

/** @deprecated use {@link InverterOptions} (the same options, named for the service). */
export type InversionOptions = InverterOptions;

/**
 * The latents of an inversion walk: `[z_0, z_1, ..., z_T]`, where z_0 is the encoded image
 * (`scaling_factor * VAE(image)`) and z_k the latent after inversion step k; z_T is the inverted noise x_T.
 */
export type InversionTrajectory = readonly tf.Tensor4D[];

/** Inverts latents to noise (DDIM inversion with noise regularisation). */
export interface Inverter {
  /**
   * The inversion trajectory z_0..z_T (T + 1 latents, the last is x_T) of the scaled VAE latents `latents`
   * [1, h, w, c] of an image, conditioned on `context` [1, 77, d] (the caption's embedding), without
   * classifier-free guidance. z_0 is a copy of `latents`. The caller disposes every latent.
   */
  invert(latents: tf.Tensor4D, context: tf.Tensor3D, options?: InverterOptions): Promise<tf.Tensor4D[]>;
}

/** The text conditions of an edit. */
export interface EditConditions {
  /** The caption's embedding c, [1, 77, d]. */
  readonly caption: tf.Tensor3D;
  /** The negative prompt's embedding (the caption itself by default, as the authors), [1, 77, d]. */
  readonly negative: tf.Tensor3D;
  /** The edit direction delta, [1, 77, d]: the edit pass is conditioned on c + delta. */
  readonly direction: tf.Tensor3D;
}

/** Options of {@link GuidedSampler.sample} (the service; the facade's are `Pix2PixZeroEditOptions`). */
export interface GuidedSamplerOptions extends LongCallOptions {
  /** DDIM steps (default 50). */
  steps?: number;
  /** Classifier-free guidance scale (default 5, as the authors; 1 or less turns CFG off). */
  guidanceScale?: number;
  /** Step size of the cross-attention guidance, lambda_xa (default 0.1; 0 turns guidance off). */
  xaGuidance?: number;
  /**
   * From how many latent elements per image CFG's gradient is taken one half at a time (half the backward pass's
   * memory, the same values, twice the kernels): default `CFG_GRADIENT_SPLIT_MIN_ELEMENTS` (32 x 32 x 4 latents, a
   * 256 px image); 0 always, `Infinity` never.
   */
  gradientSplitMinElements?: number;
  /**
   * Below how many latent elements per image a step without a gradient (`xaGuidance` 0, no self-attention
   * injection at that step) runs the reference and edit passes as one batched UNet forward instead of two: the same
   * values, half the kernel launches, which is what a small model's step costs. Default
   * `SETTINGS.jointForwardMaxElements` (32 x 32 x 4 latents); 0 never.
   */
  jointForwardMaxElements?: number;
  /**
   * Self-attention injection (Prompt-to-Prompt's self-attention replacement): in the first `floor(fraction * T)`
   * steps the edit pass's noise prediction uses the reference pass's self-attention maps in the layers with at
   * most `selfAttentionMaxQueries` queries, which keeps the layout of the input. Default 0 (off), in [0, 1].
   */
  selfAttentionInjection?: number;
  /** Default 256 (Prompt-to-Prompt's 16 x 16). */
  selfAttentionMaxQueries?: number;
  /**
   * Cross-attention injection (Prompt-to-Prompt's cross-attention replacement): in the first `floor(fraction * T)`
   * steps the edit pass's noise prediction uses the reference pass's cross-attention maps in every layer, so each
   * word of the caption keeps the place it has in the input and the direction changes only what is drawn there.
   * The guidance step's forward keeps its own maps. Default 0 (off), in [0, 1].
   */
  crossAttentionInjection?: number;
  /** Called after each timestep with the reference pass's attention maps (tests and visualisation). */
  onReferenceMaps?: (step: number, maps: ReadonlyMap<string, tf.Tensor3D>) => void;
  /**
   * Called after each lock-step step (both passes stepped), as diffusers' `callback_on_step_end`; may correct
   * the latents the next step starts from (Direct Inversion is such a hook).
   */
  onStepEnd?: StepEndHook;
}

/** @deprecated use {@link GuidedSamplerOptions} (the same options, named for the service). */
export type EditOptions = GuidedSamplerOptions;

/** What a {@link StepEndHook} is given after lock-step step `step`. */
export interface StepEndState {
  /** The step index i, 0..T-1. */
  readonly step: number;
  /** The number of steps T. */
  readonly steps: number;
  /** The timestep t of this step (the walk's timesteps descend). */
  readonly timestep: number;
  /** The reference pass's latent after its step (borrowed: do not dispose). */
  readonly reference: tf.Tensor4D;
  /** The edit pass's latent after its step (borrowed: do not dispose). */
  readonly edit: tf.Tensor4D;
  /**
   * The reference pass's cross-attention maps of this step, by module path: [guidanceBatch * heads, queries,
   * tokens] each, batch-major (borrowed, valid during the call only).
   */
  readonly referenceMaps: ReadonlyMap<string, tf.Tensor3D>;
  /** The batch of those maps: 2 with classifier-free guidance (unconditional, then the caption's), else 1. */
  readonly guidanceBatch: 1 | 2;
}

/** New latents for the next step; the sampler owns and disposes what it is given, and the latents it replaces. */
export interface StepEndCorrection {
  readonly reference?: tf.Tensor4D;
  readonly edit?: tf.Tensor4D;
}

/** A per-step hook of the guided sampler: returns corrected latents, or nothing to keep them. */
export interface StepEndHook {
  (state: StepEndState): StepEndCorrection | void;
  /**
   * The reference latent this hook will leave after step `step` of `steps`, when it is known before the step runs
   * (Direct Inversion: the inversion trajectory's latent), else undefined. The sampler may run the next step's
   * reference forward from it ahead of time (for small latents, batched with the edit pass); it checks the latent
   * the hook actually returns, so a wrong answer costs time, never correctness. Borrowed: not disposed.
   */
  referenceAfter?(step: number, steps: number): tf.Tensor4D | undefined;
}

/** The outcome of the two lock-step passes. */
export interface EditLatents {
  /** The edited x_0 latents. */
  readonly edited: tf.Tensor4D;
  /** The reference pass's x_0 latents (the reconstruction of the input). */
  readonly reconstruction: tf.Tensor4D;
}

/** Regenerates from inverted noise with cross-attention guidance: reference and edit passes in lock-step. */
export interface GuidedSampler {
  /** Both passes from `noise` [1, h, w, c]. The caller disposes the results. */
  sample(noise: tf.Tensor4D, conditions: EditConditions, options?: GuidedSamplerOptions): Promise<EditLatents>;
}
