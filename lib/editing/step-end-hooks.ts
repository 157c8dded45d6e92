/**
 * Several step hooks of the guided sampler as one: each runs after the one before it and sees the latents as
 * that one corrected them (Direct Inversion, then local blending towards the corrected reference).
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { StepEndCorrection, StepEndHook } from './services.js';

/**
 * One hook that runs `hooks` in order; latents one hook made and a later one replaced are disposed. Its
 * `referenceAfter` is the last announcement of the hooks that make one (a later hook without one may still change
 * the reference: the sampler checks).
 */
export function chainStepEndHooks(...hooks: readonly StepEndHook[]): StepEndHook {
  if (hooks.length === 1) return hooks[0]!;
  const chained: StepEndHook = (state) => {
    let reference = state.reference;
    let edit = state.edit;
    const made = new Set<tf.Tensor4D>();
    const replace = (old: tf.Tensor4D, next: tf.Tensor4D | undefined): tf.Tensor4D => {
      if (next === undefined || next === old) return old;
      if (made.delete(old)) old.dispose();
      made.add(next);
      return next;
    };
    try {
      for (const hook of hooks) {
        const fix: StepEndCorrection | void = hook({ ...state, reference, edit });
        reference = replace(reference, fix?.reference);
        edit = replace(edit, fix?.edit);
      }
    } catch (err) {
      for (const t of made) t.dispose();
      throw err;
    }
    return { reference: made.has(reference) ? reference : undefined, edit: made.has(edit) ? edit : undefined };
  };
  chained.referenceAfter = (step, steps) => {
    let latent: tf.Tensor4D | undefined;
    for (const hook of hooks) latent = hook.referenceAfter?.(step, steps) ?? latent;
    return latent;
  };
  return chained;
}
