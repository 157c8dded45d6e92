/**
 * What `DDIMScheduler` and `DDIMInverseScheduler` share: the config and its alpha schedule, the timesteps of the
 * last `setTimesteps`, the checks every step makes, and the DDIM update between two alphas. The two schedulers
 * differ only in their timesteps and in which alphas a step goes between (sampling: from t down to t - T/n;
 * inversion: from t - T/n up to t).
 */
import * as tf from '@tensorflow/tfjs-core';
import { type DDIMConfig, alphasCumprod } from './config.js';
import { alphaAt, epsilonOf, predictOriginalSample, previousSampleFrom } from './ddim-step.js';
import type { Scheduler, SchedulerStepOutput } from './scheduler.js';

/**
 * The timesteps `build` makes for `n` steps, after checking `n` and that none reaches past the schedule (as
 * diffusers' `set_timesteps` refuses).
 */
export function checkedTimesteps(cfg: DDIMConfig, n: number, build: (T: number) => number[]): number[] {
  const T = cfg.numTrainTimesteps;
  if (!Number.isInteger(n) || n < 1 || n > T) throw new Error(`number of steps must be an integer in [1, ${T}], got ${n}`);
  const out = build(T);
  const past = out.find((t) => t >= T);
  if (past !== undefined) {
    throw new Error(`${n} '${cfg.timestepSpacing}' steps with steps_offset ${cfg.stepsOffset} reach timestep ${past}, past the schedule's ${T} (use fewer steps or 'trailing' spacing)`);
  }
  return out;
}

/** The base of the DDIM schedulers (see the module's comment). */
export abstract class DDIMWalk implements Scheduler {
  readonly alphasCumprod: Float32Array;
  /** alpha_cumprod outside the schedule (before the inversion's first step, past sampling's last): 1, or alphas_cumprod[0] (`set_alpha_to_one`). */
  protected readonly boundaryAlphaCumprod: number;
  private steps = 0;
  private ts: number[] = [];

  protected constructor(
    readonly config: DDIMConfig,
    /** The class name, for messages. */
    private readonly name: string,
  ) {
    this.alphasCumprod = alphasCumprod(config);
    this.boundaryAlphaCumprod = config.setAlphaToOne ? 1 : this.alphasCumprod[0]!;
  }

  /** The timesteps of `n` steps, in the order the walk takes them. */
  protected abstract timestepsFor(n: number): number[];

  /** One step from `sample` at `timestep` with the model's output. */
  abstract step(modelOutput: tf.Tensor, timestep: number, sample: tf.Tensor): SchedulerStepOutput;

  /** Sets the number of steps; returns the timesteps in walking order. */
  setTimesteps(n: number): number[] {
    this.ts = this.timestepsFor(n);
    this.steps = n;
    return [...this.ts];
  }

  /** The timesteps of the last {@link setTimesteps}. */
  get timesteps(): readonly number[] {
    return this.ts;
  }

  /** The epsilon `modelOutput` stands for at `timestep`, with the alpha_cumprod of `timestep`. */
  epsilon(modelOutput: tf.Tensor, timestep: number, sample: tf.Tensor): tf.Tensor {
    return epsilonOf(this.config.predictionType, alphaAt(this.alphasCumprod, timestep, this.name), modelOutput, sample);
  }

  /** The alpha_cumprod of `t`, or the boundary's for a timestep before the schedule (t < 0). */
  protected alphaOrBoundary(t: number): number {
    return t >= 0 ? this.alphasCumprod[t]! : this.boundaryAlphaCumprod;
  }

  /** Checks a step's timestep (and that the timesteps were set); returns the distance between two steps, T / n rounded down. */
  protected stride(timestep: number): number {
    if (this.steps === 0) throw new Error(`${this.name}: call setTimesteps() before step()`);
    const T = this.config.numTrainTimesteps;
    if (!Number.isInteger(timestep) || timestep < 0 || timestep >= T) throw new Error(`${this.name}: timestep ${timestep} outside [0, ${T})`);
    return Math.floor(T / this.steps);
  }

  /** The DDIM update (eta = 0) of `sample`, whose alpha_cumprod is `alphaFrom`, to the noise level `alphaTo`. */
  protected update(modelOutput: tf.Tensor, sample: tf.Tensor, alphaFrom: number, alphaTo: number): SchedulerStepOutput {
    return tf.tidy(() => {
      const p = predictOriginalSample(this.config, modelOutput, sample, alphaFrom);
      const prevSample = previousSampleFrom(p, alphaTo);
      return { prevSample, predOriginalSample: p.predOriginalSample === modelOutput ? tf.clone(modelOutput) : p.predOriginalSample };
    });
  }
}
