/**
 * The scheduler contract (diffusers' `SchedulerMixin` as this library needs it): the timesteps of a walk, one
 * step of it, and the noise a model output stands for. `DDIMScheduler` and `DDIMInverseScheduler` implement it;
 * the editing services get schedulers from a {@link SchedulerFactory} (one instance per pass) and never name a
 * scheduler class, so a new scheduler is one file plus its registration in `factory.ts`.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { DDIMConfig } from './config.js';

/** The result of a scheduler step. */
export interface SchedulerStepOutput {
  /** The sample at the next timestep of the walk. */
  prevSample: tf.Tensor;
  /** The model's prediction of x_0. */
  predOriginalSample: tf.Tensor;
}

/** A noise scheduler: timesteps and steps over them. Instances hold state; give each pass its own. */
export interface Scheduler {
  /** The parsed configuration (betas, prediction type, spacing). */
  readonly config: DDIMConfig;
  /** The cumulative products of alphas, one per training timestep. */
  readonly alphasCumprod: Float32Array;
  /** The timesteps of the last {@link setTimesteps}, in walking order. */
  readonly timesteps: readonly number[];
  /** Sets the number of steps of the walk; returns its timesteps in walking order. */
  setTimesteps(numInferenceSteps: number): number[];
  /**
   * One step of the walk: from `sample` with the model's output at `timestep` to the sample at the next
   * timestep of the walk (`prev_sample` in diffusers, whichever way the walk goes). The caller disposes both
   * outputs; the inputs are not disposed.
   */
  step(modelOutput: tf.Tensor, timestep: number, sample: tf.Tensor): SchedulerStepOutput;
  /**
   * The noise (epsilon) that `modelOutput` stands for at `timestep` given `sample`, for any prediction type
   * (diffusers' pix2pix-zero `get_epsilon`: alpha_cumprod of `timestep`). The result may be `modelOutput`
   * itself (epsilon prediction); the caller disposes it only when it is a new tensor.
   */
  epsilon(modelOutput: tf.Tensor, timestep: number, sample: tf.Tensor): tf.Tensor;
}

/** Which walk a scheduler is for: sampling (noise -> image) or inversion (image -> noise). */
export type SchedulerRole = 'sampling' | 'inversion';

/** Makes a fresh scheduler for each pass (the reference and edit passes must not share one). */
export interface SchedulerFactory {
  /** The diffusers scheduler class the config names (`_class_name`), or the default's. */
  readonly className: string;
  /** A new scheduler instance for `role`. */
  create(role: SchedulerRole): Scheduler;
}
