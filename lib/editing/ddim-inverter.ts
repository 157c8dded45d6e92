/**
 * DDIM inversion with noise regularisation (pix2pix-zero §3.2), step for step as diffusers'
 * `StableDiffusionPix2PixZeroPipeline.invert()`: over the inverse scheduler's ascending timesteps, predict the
 * noise conditioned on the caption (no classifier-free guidance), regularise it towards i.i.d. Gaussian noise,
 * and take an inverse DDIM step. Every latent of the walk is kept: the trajectory z_0..z_T (Direct Inversion
 * puts the reference pass back on it).
 */
import * as tf from '@tensorflow/tfjs-core';
import { inject, injectable } from 'inversify';
import { TorchGenerator } from '../random/torch-generator.js';
import type { SchedulerFactory } from '../schedulers/scheduler.js';
import { SETTINGS } from '../settings.js';
import { regularizeNoise } from './noise-regularization.js';
import type { DenoiserPort } from './ports.js';
import { yieldToEventLoop } from './event-loop.js';
import { type InverterOptions, type Inverter, TYPES, throwIfAborted } from './services.js';

@injectable()
export class DDIMInverter implements Inverter {
  constructor(
    @inject(TYPES.Denoiser) private readonly unet: DenoiserPort,
    @inject(TYPES.SchedulerFactory) private readonly schedulers: SchedulerFactory,
  ) {}

  async invert(latents: tf.Tensor4D, context: tf.Tensor3D, options: InverterOptions = {}): Promise<tf.Tensor4D[]> {
    const scheduler = this.schedulers.create('inversion');
    const timesteps = scheduler.setTimesteps(options.steps ?? SETTINGS.steps.default);
    const shifts = options.shifts ?? new TorchGenerator(options.seed ?? SETTINGS.seed.default);
    const reg = {
      numRegSteps: options.numRegSteps,
      numAutoCorrRolls: options.numAutoCorrRolls,
      lambdaAc: options.lambdaAc,
      lambdaKl: options.lambdaKl,
      minShift: options.minShift,
    };
    const trajectory: tf.Tensor4D[] = [tf.clone(latents)];
    try {
      for (let i = 0; i < timesteps.length; i++) {
        throwIfAborted(options.signal);
        const t = timesteps[i]!;
        const x = trajectory[i]!;
        const next = tf.tidy(() => {
          const output = this.unet.predict(x, t, context);
          const regularized = regularizeNoise(output, shifts, reg, (v) => scheduler.epsilon(v, t, x) as tf.Tensor4D);
          return scheduler.step(regularized, t, x).prevSample as tf.Tensor4D;
        });
        trajectory.push(next);
        options.onProgress?.({ phase: 'inversion', step: i + 1, total: timesteps.length });
        // Let timers, progress output and abort signals through between steps.
        await yieldToEventLoop();
      }
      return trajectory;
    } catch (err) {
      tf.dispose(trajectory);
      throw err;
    }
  }
}
