/**
 * The DDIM scheduler configuration as diffusers saves it (`scheduler/scheduler_config.json`), validated, and the
 * noise schedule it defines (betas -> cumulative alphas), computed in float32 as PyTorch does.
 */
import type { JsonObject } from '../io/json.js';
import { ConfigFields, isFiniteNumber, isIntegerAtLeast, isOneOf } from '../io/config-fields.js';

export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';

/** The fields of diffusers' DDIM scheduler config that this library reads. */
export interface DDIMConfig {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: BetaSchedule;
  trainedBetas?: number[];
  clipSample: boolean;
  clipSampleRange: number;
  setAlphaToOne: boolean;
  stepsOffset: number;
  predictionType: PredictionType;
  timestepSpacing: TimestepSpacing;
  rescaleBetasZeroSnr: boolean;
}

/** diffusers' defaults for `DDIMScheduler`. */
export const DDIM_DEFAULTS: DDIMConfig = {
  numTrainTimesteps: 1000,
  betaStart: 0.0001,
  betaEnd: 0.02,
  betaSchedule: 'linear',
  clipSample: true,
  clipSampleRange: 1,
  setAlphaToOne: true,
  stepsOffset: 0,
  predictionType: 'epsilon',
  timestepSpacing: 'leading',
  rescaleBetasZeroSnr: false,
};

/** Reads a diffusers scheduler config (DDIM, DDIM inverse, PNDM, ... share these fields). */
export function parseDDIMConfig(json: JsonObject): DDIMConfig {
  const d = DDIM_DEFAULTS;
  const r = new ConfigFields(json, 'scheduler config');
  if (json.thresholding === true) throw r.error('thresholding', '(dynamic thresholding) is not supported');
  const betas = json.trained_betas;
  if (betas !== undefined && betas !== null && !(Array.isArray(betas) && betas.every(isFiniteNumber))) {
    throw r.error('trained_betas', 'must be a list of numbers');
  }
  const cfg: DDIMConfig = {
    numTrainTimesteps: r.field('num_train_timesteps', isIntegerAtLeast(1), 'a positive integer', d.numTrainTimesteps),
    betaStart: r.field('beta_start', isFiniteNumber, 'a number', d.betaStart),
    betaEnd: r.field('beta_end', isFiniteNumber, 'a number', d.betaEnd),
    betaSchedule: r.field('beta_schedule', isOneOf<BetaSchedule>('linear', 'scaled_linear', 'squaredcos_cap_v2'), "'linear', 'scaled_linear' or 'squaredcos_cap_v2'", d.betaSchedule),
    trainedBetas: Array.isArray(betas) ? (betas as number[]) : undefined,
    clipSample: r.bool('clip_sample', d.clipSample, 'a boolean'),
    clipSampleRange: r.field('clip_sample_range', isFiniteNumber, 'a number', d.clipSampleRange),
    setAlphaToOne: r.bool('set_alpha_to_one', d.setAlphaToOne, 'a boolean'),
    stepsOffset: r.field('steps_offset', isIntegerAtLeast(0), 'a non-negative integer', d.stepsOffset),
    predictionType: r.field('prediction_type', isOneOf<PredictionType>('epsilon', 'v_prediction', 'sample'), "'epsilon', 'v_prediction' or 'sample'", d.predictionType),
    timestepSpacing: r.field('timestep_spacing', isOneOf<TimestepSpacing>('leading', 'trailing', 'linspace'), "'leading', 'trailing' or 'linspace'", d.timestepSpacing),
    rescaleBetasZeroSnr: r.bool('rescale_betas_zero_snr', d.rescaleBetasZeroSnr, 'a boolean'),
  };
  if (cfg.trainedBetas !== undefined && cfg.trainedBetas.length !== cfg.numTrainTimesteps) {
    throw r.error('trained_betas', `has ${cfg.trainedBetas.length} values, expected num_train_timesteps = ${cfg.numTrainTimesteps}`);
  }
  return cfg;
}

/** torch.linspace in float32: the first half counts up from `start`, the second half down from `end`. */
function linspace32(start: number, end: number, n: number): Float32Array {
  const out = new Float32Array(n);
  if (n === 1) {
    out[0] = start;
    return out;
  }
  const step = (end - start) / (n - 1);
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = i < half ? start + step * i : end - step * (n - 1 - i);
  return out;
}

function cosineBetas(n: number, maxBeta = 0.999): Float32Array {
  const alphaBar = (t: number): number => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), maxBeta);
  return out;
}

/** Rescales betas to zero terminal SNR (Lin et al. 2023), as diffusers' `rescale_zero_terminal_snr`. */
function rescaleZeroTerminalSnr(betas: Float32Array): Float32Array {
  const n = betas.length;
  const sqrtBar = new Float32Array(n);
  let prod = 1;
  for (let i = 0; i < n; i++) {
    prod = Math.fround(prod * Math.fround(1 - betas[i]!));
    sqrtBar[i] = Math.sqrt(prod);
  }
  const first = sqrtBar[0]!;
  const last = sqrtBar[n - 1]!;
  const bar = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const s = Math.fround(Math.fround(sqrtBar[i]! - last) * Math.fround(first / (first - last)));
    bar[i] = s * s;
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = 1 - (i === 0 ? bar[0]! : Math.fround(bar[i]! / bar[i - 1]!));
  return out;
}

/** The cumulative products of alphas (`alphas_cumprod`), float32 as in diffusers. */
export function alphasCumprod(cfg: DDIMConfig): Float32Array {
  let betas: Float32Array;
  if (cfg.trainedBetas !== undefined) betas = Float32Array.from(cfg.trainedBetas);
  else if (cfg.betaSchedule === 'linear') betas = linspace32(cfg.betaStart, cfg.betaEnd, cfg.numTrainTimesteps);
  else if (cfg.betaSchedule === 'scaled_linear') {
    betas = linspace32(Math.sqrt(cfg.betaStart), Math.sqrt(cfg.betaEnd), cfg.numTrainTimesteps).map((b) => b * b);
  } else betas = cosineBetas(cfg.numTrainTimesteps);
  if (cfg.rescaleBetasZeroSnr) betas = rescaleZeroTerminalSnr(betas);
  const out = new Float32Array(betas.length);
  let prod = 1;
  for (let i = 0; i < betas.length; i++) {
    prod = Math.fround(prod * Math.fround(1 - betas[i]!));
    out[i] = prod;
  }
  return out;
}

/** NumPy's `round`: halves go to the even neighbour (the timestep rules use it). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
