/**
 * The most DDIM steps a scheduler config allows. `num_train_timesteps` bounds it, but with `leading` spacing and
 * a `steps_offset` the last timestep of n = T steps is T - 1 + offset, past the schedule (diffusers fails there
 * with an index error): Stable Diffusion 1.x's config (T = 1000, offset 1) allows 999 steps, not 1000.
 */
import type { JsonObject } from '../io/json.js';
import { SETTINGS, isStepCount } from '../settings.js';
import { type DDIMConfig, parseDDIMConfig } from './config.js';
import { ddimTimesteps } from './ddim.js';
import { ddimInverseTimesteps } from './ddim-inverse.js';

/** Whether every timestep of n steps, forward and inverse, lies in [0, T) (the schedulers refuse the others). */
function fits(cfg: DDIMConfig, n: number): boolean {
  const T = cfg.numTrainTimesteps;
  try {
    return [...ddimTimesteps(cfg, n), ...ddimInverseTimesteps(cfg, n)].every((t) => Number.isInteger(t) && t >= 0 && t < T);
  } catch {
    return false;
  }
}

/**
 * The largest step count (at most `cap`, by default `SETTINGS.steps.max`) whose forward and inverse DDIM
 * timesteps all exist in the schedule.
 */
export function maxDdimSteps(config: JsonObject, cap = SETTINGS.steps.max): number {
  const cfg = parseDDIMConfig(config);
  for (let n = Math.min(cap, cfg.numTrainTimesteps); n >= 1; n--) if (fits(cfg, n)) return n;
  return 0;
}

/**
 * Checks a step count against the scheduler before any work.
 * @throws Error naming the count and the scheduler's limit.
 */
export function assertDdimSteps(config: JsonObject, steps: number): void {
  const max = maxDdimSteps(config);
  if (!isStepCount(steps, max)) {
    throw new Error(`steps ${steps}: this model's scheduler allows ${SETTINGS.steps.min} to ${max} DDIM steps (num_train_timesteps and steps_offset of scheduler_config.json)`);
  }
}
