/**
 * `DDIMInverseScheduler` as diffusers implements it: DDIM run backwards, from x_0 towards noise, over ascending
 * timesteps. Used to invert an image to the noise that regenerates it.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { JsonObject } from '../io/json.js';
import { type DDIMConfig, parseDDIMConfig, roundHalfEven } from './config.js';
import { DDIMWalk, checkedTimesteps } from './ddim-walk.js';
import type { SchedulerStepOutput } from './scheduler.js';

/** The ascending timesteps of `n` inverse steps (diffusers' `DDIMInverseScheduler.set_timesteps`). */
export function ddimInverseTimesteps(cfg: DDIMConfig, n: number): number[] {
  return checkedTimesteps(cfg, n, (T) => {
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
    return out;
  });
}

/** diffusers' `DDIMInverseScheduler`: the inversion walk, ascending timesteps. */
export class DDIMInverseScheduler extends DDIMWalk {
  constructor(config: DDIMConfig) {
    super(config, 'DDIMInverseScheduler');
  }

  /** Builds the scheduler from a scheduler config (diffusers builds it from the pipeline's DDIM config). */
  static fromConfig(json: JsonObject): DDIMInverseScheduler {
    return new DDIMInverseScheduler(parseDDIMConfig(json));
  }

  /** alpha_cumprod before the first step: 1, or alphas_cumprod[0] (`set_alpha_to_one`). */
  get initialAlphaCumprod(): number {
    return this.boundaryAlphaCumprod;
  }

  protected timestepsFor(n: number): number[] {
    return ddimInverseTimesteps(this.config, n);
  }

  /**
   * One inverse step: from `sample` at the previous (lower) timestep up to `timestep`. Its `epsilon` uses the
   * alpha_cumprod of `timestep`, as diffusers' pix2pix-zero `invert()` regularises it (the step itself uses the
   * alpha of the timestep it walks from).
   */
  step(modelOutput: tf.Tensor, timestep: number, sample: tf.Tensor): SchedulerStepOutput {
    const from = Math.min(timestep - this.stride(timestep), this.config.numTrainTimesteps - 1);
    return this.update(modelOutput, sample, this.alphaOrBoundary(from), this.alphasCumprod[timestep]!);
  }
}
