/** The DDIM update shared by the forward and inverse schedulers (eta = 0, deterministic). */
import * as tf from '@tensorflow/tfjs-core';
import type { DDIMConfig, PredictionType } from './config.js';

/** The model's output turned into predictions of x_0 and of the noise. */
export interface Predictions {
  predOriginalSample: tf.Tensor;
  predEpsilon: tf.Tensor;
}

/**
 * The epsilon a model output stands for, given the sample it was predicted from and that sample's cumulative
 * alpha (diffusers' pix2pix-zero `get_epsilon`, and the epsilon of the DDIM step). Epsilon prediction returns
 * `modelOutput` itself.
 */
export function epsilonOf(predictionType: PredictionType, alphaProdT: number, modelOutput: tf.Tensor, sample: tf.Tensor): tf.Tensor {
  switch (predictionType) {
    case 'epsilon':
      return modelOutput;
    case 'v_prediction':
      return tf.add(tf.mul(modelOutput, Math.sqrt(alphaProdT)), tf.mul(sample, Math.sqrt(1 - alphaProdT)));
    case 'sample':
      return tf.div(tf.sub(sample, tf.mul(modelOutput, Math.sqrt(alphaProdT))), Math.sqrt(1 - alphaProdT));
  }
}

/**
 * Converts the model output at a timestep with cumulative alpha `alphaProdT` into (x_0, epsilon) predictions,
 * for the config's `prediction_type`, with `clip_sample` applied to x_0.
 */
export function predictOriginalSample(cfg: DDIMConfig, modelOutput: tf.Tensor, sample: tf.Tensor, alphaProdT: number): Predictions {
  const a = Math.sqrt(alphaProdT);
  const b = Math.sqrt(1 - alphaProdT);
  const eps = epsilonOf(cfg.predictionType, alphaProdT, modelOutput, sample);
  let x0: tf.Tensor;
  switch (cfg.predictionType) {
    case 'epsilon':
      x0 = tf.div(tf.sub(sample, tf.mul(modelOutput, b)), a);
      break;
    case 'sample':
      x0 = modelOutput;
      break;
    case 'v_prediction':
      x0 = tf.sub(tf.mul(sample, a), tf.mul(modelOutput, b));
      break;
  }
  if (cfg.clipSample) x0 = tf.clipByValue(x0, -cfg.clipSampleRange, cfg.clipSampleRange);
  return { predOriginalSample: x0, predEpsilon: eps };
}

/**
 * The sample at the next timestep of the walk from the (x_0, epsilon) predictions:
 * `sqrt(alphaNext) * x0 + sqrt(1 - alphaNext) * eps` (diffusers' `prev_sample`; for the inverse walk the next
 * timestep is the noisier one).
 */
export function previousSampleFrom(p: Predictions, alphaProdNext: number): tf.Tensor {
  return tf.add(tf.mul(p.predOriginalSample, Math.sqrt(alphaProdNext)), tf.mul(p.predEpsilon, Math.sqrt(1 - alphaProdNext)));
}

/** alphas_cumprod[timestep], with an error naming the scheduler when the timestep is outside the schedule. */
export function alphaAt(alphasCumprod: Float32Array, timestep: number, who: string): number {
  const a = alphasCumprod[timestep];
  if (!Number.isInteger(timestep) || a === undefined) throw new Error(`${who}: timestep ${timestep} outside [0, ${alphasCumprod.length})`);
  return a;
}
