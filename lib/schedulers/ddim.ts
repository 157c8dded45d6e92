/**
 * `DDIMScheduler` (Song et al. 2021) as diffusers implements it, deterministic (eta = 0): the timesteps for a
 * number of inference steps, and the step from x_t to x_{t-1}.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { JsonObject } from '../io/json.js';
import { type DDIMConfig, parseDDIMConfig, roundHalfEven } from './config.js';
import { DDIMWalk, checkedTimesteps } from './ddim-walk.js';
import type { SchedulerStepOutput } from './scheduler.js';

export type { SchedulerStepOutput } from './scheduler.js';

/** The timesteps of `n` inference steps, descending, for the config's spacing (diffusers' `set_timesteps`). */
export function ddimTimesteps(cfg: DDIMConfig, n: number): number[] {
  return checkedTimesteps(cfg, n, (T) => {
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
    return out;
  });
}

/** diffusers' `DDIMScheduler` (eta = 0): the sampling walk, descending timesteps. */
export class DDIMScheduler extends DDIMWalk {
  constructor(config: DDIMConfig) {
    super(config, 'DDIMScheduler');
  }

  /** Builds the scheduler from a parsed `scheduler_config.json`. */
  static fromConfig(json: JsonObject): DDIMScheduler {
    return new DDIMScheduler(parseDDIMConfig(json));
  }

  /** alpha_cumprod used past the last step: 1, or alphas_cumprod[0] (`set_alpha_to_one`). */
  get finalAlphaCumprod(): number {
    return this.boundaryAlphaCumprod;
  }

  protected timestepsFor(n: number): number[] {
    return ddimTimesteps(this.config, n);
  }

  /** One deterministic DDIM step from `sample` at `timestep` down to the next timestep of the walk. */
  step(modelOutput: tf.Tensor, timestep: number, sample: tf.Tensor): SchedulerStepOutput {
    const prev = timestep - this.stride(timestep);
    return this.update(modelOutput, sample, this.alphasCumprod[timestep]!, this.alphaOrBoundary(prev));
  }
}
