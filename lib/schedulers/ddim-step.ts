/** The DDIM update shared by the forward and inverse schedulers (eta = 0, deterministic). */
import * as tf from '@tensorflow/tfjs-core';
import type { DDIMConfig } from './config.js';

/** The model's output turned into predictions of x_0 and of the noise. */
export interface Predictions {
  predOriginalSample: tf.Tensor;
  predEpsilon: tf.Tensor;
}

/**
 * Converts the model output at a timestep with cumulative alpha `alphaProdT` into (x_0, epsilon) predictions,
 * for the config's `prediction_type`, with `clip_sample` applied to x_0.
 */
export function predict(cfg: DDIMConfig, modelOutput: tf.Tensor, sample: tf.Tensor, alphaProdT: number): Predictions {
  const a = Math.sqrt(alphaProdT);
  const b = Math.sqrt(1 - alphaProdT);
  let x0: tf.Tensor;
  let eps: tf.Tensor;
  switch (cfg.predictionType) {
    case 'epsilon':
      x0 = tf.div(tf.sub(sample, tf.mul(modelOutput, b)), a);
      eps = modelOutput;
      break;
    case 'sample':
      x0 = modelOutput;
      eps = tf.div(tf.sub(sample, tf.mul(x0, a)), b);
      break;
    case 'v_prediction':
      x0 = tf.sub(tf.mul(sample, a), tf.mul(modelOutput, b));
      eps = tf.add(tf.mul(modelOutput, a), tf.mul(sample, b));
      break;
  }
  if (cfg.clipSample) x0 = tf.clipByValue(x0, -cfg.clipSampleRange, cfg.clipSampleRange);
  return { predOriginalSample: x0, predEpsilon: eps };
}

/** `sqrt(alphaPrev) * x0 + sqrt(1 - alphaPrev) * eps`: the sample at the next timestep of the walk. */
export function recombine(p: Predictions, alphaProdNext: number): tf.Tensor {
  return tf.add(tf.mul(p.predOriginalSample, Math.sqrt(alphaProdNext)), tf.mul(p.predEpsilon, Math.sqrt(1 - alphaProdNext)));
}
