/**
 * Direct Inversion (Ju et al., "PnP Inversion: Boosting Diffusion-based Editing with 3 Lines of Code", ICLR 2024;
 * the pix2pix-zero variant of cure-lab/PnPInversion) as a step hook of the guided sampler.
 *
 * DDIM inversion is inexact, so the reference pass (the reconstruction) drifts away from the input and the edit
 * inherits that drift. With the inversion trajectory z_0..z_T kept, after lock-step step i (from z_{T-i}):
 *
 *     r = the reference pass's DDIM step;  d_i = z_{T-1-i} - r;  reference <- z_{T-1-i}
 *     e = the edit pass's guided DDIM step;                       edit      <- e + d_i
 *
 * so the reference pass walks the inversion trajectory (its attention maps at step i are those of z_{T-i}, its
 * result is z_0, the VAE round trip of the input), and the edit gets the same correction. No extra UNet call.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { InversionTrajectory, StepEndHook } from './services.js';

/**
 * The Direct Inversion hook over `trajectory` (z_0..z_T; borrowed, not disposed). The sampler must start both
 * passes from z_T and walk the inversion's T steps.
 * @throws Error when the trajectory does not have T + 1 latents of the sampler's shape.
 */
export function directInversion(trajectory: InversionTrajectory): StepEndHook {
  const hook: StepEndHook = ({ step, steps, reference, edit }) => {
    if (trajectory.length !== steps + 1) {
      throw new Error(`Direct Inversion needs the inversion trajectory of the edit's ${steps} steps (${steps + 1} latents), got ${trajectory.length}`);
    }
    const target = trajectory[steps - 1 - step]!;
    if (!target.shape.every((d, k) => d === reference.shape[k])) {
      throw new Error(`Direct Inversion: trajectory latent is [${target.shape.join(', ')}], the sampler's is [${reference.shape.join(', ')}]`);
    }
    return tf.tidy(() => ({ reference: tf.clone(target), edit: tf.add(edit, tf.sub(target, reference)) as tf.Tensor4D }));
  };
  // The reference after step i is the trajectory's z_{T-1-i}, known before the step.
  hook.referenceAfter = (step, steps) => (trajectory.length === steps + 1 ? trajectory[steps - 1 - step] : undefined);
  return hook;
}
