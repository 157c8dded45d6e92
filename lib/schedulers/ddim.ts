/**
 * `DDIMScheduler` (Song et al. 2021) as diffusers implements it, deterministic (eta = 0): the timesteps for a
 * number of inference steps, and the step from x_t to x_{t-1}.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { JsonObject } from '../io/json.js';
import { type DDIMConfig, alphasCumprod, parseDDIMConfig, roundHalfEven } from './config.js';
import { alphaAt, epsilonOf, predictOriginalSample, previousSampleFrom } from './ddim-step.js';
import type { Scheduler, SchedulerStepOutput } from './scheduler.js';

export type { SchedulerStepOutput } from './scheduler.js';

/** The timesteps of `n` inference steps, descending, for the config's spacing (diffusers' `set_timesteps`). */
export function ddimTimesteps(cfg: DDIMConfig, n: number): number[] {
  const T = cfg.numTrainTimesteps;
  if (!Number.isInteger(n) || n < 1 || n > T) throw new Error(`number of steps must be an integer in [1, ${T}], got ${n}`);
  const out: number[] = [];
  if (cfg.timestepSpacing === 'linspace') {
    const step = n === 1 ? 0 : (T - 1) / (n - 1);
    for (let i = n - 1; i >= 0; i--) out.push(i === n - 1 && n > 1 ? T - 1 : roundHalfEven(i * step));
  } else if (cfg.timestepSpacing === 'leading') {
    const ratio = Math.floor(T / n);
    for (let i = n - 1; i >= 0; i--) out.push(i * ratio + cfg.stepsOffset);
  } else {
    const ratio = T / n;
    for (let i = 0; i < n; i++) out.push(roundHalfEven(T - i * ratio) - 1);
  }
  const past = out.find((t) => t >= T);
  if (past !== undefined) {
    throw new Error(`${n} '${cfg.timestepSpacing}' steps with steps_offset ${cfg.stepsOffset} reach timestep ${past}, past the schedule's ${T} (use fewer steps or 'trailing' spacing)`);
  }
  return out;
}

/** diffusers' `DDIMScheduler` (eta = 0): the sampling walk, descending timesteps. */
export class DDIMScheduler implements Scheduler {
  readonly config: DDIMConfig;
  readonly alphasCumprod: Float32Array;
  /** alpha_cumprod used past the last step: 1, or alphas_cumprod[0] (`set_alpha_to_one`). */
  readonly finalAlphaCumprod: number;
  private steps = 0;
  private ts: number[] = [];

  constructor(config: DDIMConfig) {
    this.config = config;
    this.alphasCumprod = alphasCumprod(config);
    this.finalAlphaCumprod = config.setAlphaToOne ? 1 : this.alphasCumprod[0]!;
  }

  /** Builds the scheduler from a parsed `scheduler_config.json`. */
  static fromConfig(json: JsonObject): DDIMScheduler {
    return new DDIMScheduler(parseDDIMConfig(json));
  }

  /** Sets the number of inference steps; returns the timesteps, descending. */
  setTimesteps(n: number): number[] {
    this.ts = ddimTimesteps(this.config, n);
    this.steps = n;
    return [...this.ts];
  }

  /** The timesteps of the last {@link setTimesteps}. */
  get timesteps(): readonly number[] {
    return this.ts;
  }

  /** One deterministic DDIM step from `sample` at `timestep` with the model's output. */
  step(modelOutput: tf.Tensor, timestep: number, sample: tf.Tensor): SchedulerStepOutput {
    if (this.steps === 0) throw new Error('DDIMScheduler: call setTimesteps() before step()');
    const T = this.config.numTrainTimesteps;
    if (!Number.isInteger(timestep) || timestep < 0 || timestep >= T) throw new Error(`DDIMScheduler: timestep ${timestep} outside [0, ${T})`);
    const prev = timestep - Math.floor(T / this.steps);
    const alphaT = this.alphasCumprod[timestep]!;
    const alphaPrev = prev >= 0 ? this.alphasCumprod[prev]! : this.finalAlphaCumprod;
    return tf.tidy(() => {
      const p = predictOriginalSample(this.config, modelOutput, sample, alphaT);
      const prevSample = previousSampleFrom(p, alphaPrev);
      return { prevSample, predOriginalSample: p.predOriginalSample === modelOutput ? tf.clone(modelOutput) : p.predOriginalSample };
    });
  }

  /** The epsilon `modelOutput` stands for at `timestep` (the DDIM step's own epsilon). */
  epsilon(modelOutput: tf.Tensor, timestep: number, sample: tf.Tensor): tf.Tensor {
    return epsilonOf(this.config.predictionType, alphaAt(this.alphasCumprod, timestep, 'DDIMScheduler'), modelOutput, sample);
  }
}

