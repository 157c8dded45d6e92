/**
 * DDIM inversion with noise regularisation (pix2pix-zero §3.2), step for step as diffusers'
 * `StableDiffusionPix2PixZeroPipeline.invert()`: over the inverse scheduler's ascending timesteps, predict the
 * noise conditioned on the caption (no classifier-free guidance), regularise it towards i.i.d. Gaussian noise,
 * and take an inverse DDIM step.
 */
import * as tf from '@tensorflow/tfjs-core';
import { inject, injectable } from 'inversify';
import type { JsonObject } from '../io/json.js';
import { TorchGenerator } from '../random/torch-generator.js';
import { DDIMInverseScheduler } from '../schedulers/ddim-inverse.js';
import { regularizeNoise } from './noise-regularization.js';
import type { DenoiserPort } from './ports.js';
import { type InversionOptions, type Inverter, TYPES, throwIfAborted } from './services.js';

/** The epsilon a model output stands for, for the regulariser (diffusers' `get_epsilon`). */
export function epsilonOf(
  predictionType: 'epsilon' | 'v_prediction' | 'sample',
  alphaProdT: number,
  output: tf.Tensor4D,
  sample: tf.Tensor4D,
): tf.Tensor4D {
  switch (predictionType) {
    case 'epsilon':
      return output;
    case 'v_prediction':
      return tf.add(tf.mul(output, Math.sqrt(alphaProdT)), tf.mul(sample, Math.sqrt(1 - alphaProdT))) as tf.Tensor4D;
    case 'sample':
      return tf.div(tf.sub(sample, tf.mul(output, Math.sqrt(alphaProdT))), Math.sqrt(1 - alphaProdT)) as tf.Tensor4D;
  }
}

@injectable()
export class DDIMInverter implements Inverter {
  constructor(
    @inject(TYPES.Denoiser) private readonly unet: DenoiserPort,
    @inject(TYPES.SchedulerConfig) private readonly schedulerConfig: JsonObject,
  ) {}

  async invert(latents: tf.Tensor4D, context: tf.Tensor3D, options: InversionOptions = {}): Promise<tf.Tensor4D> {
    const scheduler = DDIMInverseScheduler.fromConfig(this.schedulerConfig);
    const timesteps = scheduler.setTimesteps(options.steps ?? 50);
    const shifts = options.shifts ?? new TorchGenerator(options.seed ?? 0);
    const reg = {
      numRegSteps: options.numRegSteps,
      numAutoCorrRolls: options.numAutoCorrRolls,
      lambdaAc: options.lambdaAc,
      lambdaKl: options.lambdaKl,
      minShift: options.minShift,
    };
    const predictionType = scheduler.config.predictionType;
    let x = tf.clone(latents);
    try {
      for (let i = 0; i < timesteps.length; i++) {
        throwIfAborted(options.signal);
        const t = timesteps[i]!;
        const next = tf.tidy(() => {
          const output = this.unet.predict(x, t, context);
          const alpha = scheduler.alphasCumprod[t]!;
          const regularized = regularizeNoise(output, shifts, reg, (v) => epsilonOf(predictionType, alpha, v, x));
          const step = scheduler.step(regularized, t, x);
          return step.prevSample as tf.Tensor4D;
        });
        x.dispose();
        x = next;
        options.onProgress?.({ phase: 'inversion', step: i + 1, total: timesteps.length });
        // Let timers, progress output and abort signals through between steps.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      return x;
    } catch (err) {
      x.dispose();
      throw err;
    }
  }
}
