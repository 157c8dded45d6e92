/**
 * `DDIMInverseScheduler` as diffusers implements it: DDIM run backwards, from x_0 towards noise, over ascending
 * timesteps. Used to invert an image to the noise that regenerates it.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { JsonObject } from '../io/json.js';
import { type DDIMConfig, alphasCumprod, parseDDIMConfig, roundHalfEven } from './config.js';
import { alphaAt, epsilonOf, predictOriginalSample, previousSampleFrom } from './ddim-step.js';
import type { Scheduler, SchedulerStepOutput } from './scheduler.js';

/** The ascending timesteps of `n` inverse steps (diffusers' `DDIMInverseScheduler.set_timesteps`). */
export function ddimInverseTimesteps(cfg: DDIMConfig, n: number): number[] {
  const T = cfg.numTrainTimesteps;
  if (!Number.isInteger(n) || n < 1 || n > T) throw new Error(`number of steps must be an integer in [1, ${T}], got ${n}`);
  const out: number[] = [];
  if (cfg.timestepSpacing === 'leading') {
    const ratio = Math.floor(T / n);
    for (let i = 0; i < n; i++) out.push(i * ratio + cfg.stepsOffset);
  } else if (cfg.timestepSpacing === 'trailing') {
    const ratio = T / n;
    for (let i = n - 1; i >= 0; i--) out.push(roundHalfEven(T - i * ratio) - 1);
  } else {
    throw new Error(`DDIMInverseScheduler: timestep_spacing '${cfg.timestepSpacing}' is not supported (diffusers supports 'leading' and 'trailing')`);
  }
  const past = out.find((t) => t >= T);
  if (past !== undefined) {
    throw new Error(`${n} '${cfg.timestepSpacing}' steps with steps_offset ${cfg.stepsOffset} reach timestep ${past}, past the schedule's ${T} (use fewer steps or 'trailing' spacing)`);
  }
  return out;
}

/** diffusers' `DDIMInverseScheduler`: the inversion walk, ascending timesteps. */
export class DDIMInverseScheduler implements Scheduler {
  readonly config: DDIMConfig;
  readonly alphasCumprod: Float32Array;
  /** alpha_cumprod before the first step: 1, or alphas_cumprod[0] (`set_alpha_to_one`). */
  readonly initialAlphaCumprod: number;
  private steps = 0;
  private ts: number[] = [];

  constructor(config: DDIMConfig) {
    this.config = config;
    this.alphasCumprod = alphasCumprod(config);
    this.initialAlphaCumprod = config.setAlphaToOne ? 1 : this.alphasCumprod[0]!;
  }

  /** Builds the scheduler from a scheduler config (diffusers builds it from the pipeline's DDIM config). */
  static fromConfig(json: JsonObject): DDIMInverseScheduler {
    return new DDIMInverseScheduler(parseDDIMConfig(json));
  }

  /** Sets the number of inversion steps; returns the timesteps, ascending. */
  setTimesteps(n: number): number[] {
    this.ts = ddimInverseTimesteps(this.config, n);
    this.steps = n;
    return [...this.ts];
  }

  get timesteps(): readonly number[] {
    return this.ts;
  }

  /** One inverse step: from `sample` at the previous (lower) timestep to `timestep`. */
  step(modelOutput: tf.Tensor, timestep: number, sample: tf.Tensor): SchedulerStepOutput {
    if (this.steps === 0) throw new Error('DDIMInverseScheduler: call setTimesteps() before step()');
    const T = this.config.numTrainTimesteps;
    if (!Number.isInteger(timestep) || timestep < 0 || timestep >= T) throw new Error(`DDIMInverseScheduler: timestep ${timestep} outside [0, ${T})`);
    const from = Math.min(timestep - Math.floor(T / this.steps), T - 1);
    const alphaFrom = from >= 0 ? this.alphasCumprod[from]! : this.initialAlphaCumprod;
    const alphaTo = this.alphasCumprod[timestep]!;
    return tf.tidy(() => {
      const p = predictOriginalSample(this.config, modelOutput, sample, alphaFrom);
      const prevSample = previousSampleFrom(p, alphaTo);
      return { prevSample, predOriginalSample: p.predOriginalSample === modelOutput ? tf.clone(modelOutput) : p.predOriginalSample };
    });
  }

  /**
   * The epsilon `modelOutput` stands for at `timestep`, with alpha_cumprod of `timestep` as diffusers'
   * pix2pix-zero `invert()` regularises it (its step itself uses the alpha of the timestep it walks from).
   */
  epsilon(modelOutput: tf.Tensor, timestep: number, sample: tf.Tensor): tf.Tensor {
    return epsilonOf(this.config.predictionType, alphaAt(this.alphasCumprod, timestep, 'DDIMInverseScheduler'), modelOutput, sample);
  }
}
