/**
 * Several step hooks of the guided sampler as one: each runs after the one before it and sees the latents as
 * that one corrected them (Direct Inversion, then local blending towards the corrected reference).
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { StepEndCorrection, StepEndHook } from './services.js';

/** One hook that runs `hooks` in order; latents one hook made and a later one replaced are disposed. */
export function chainStepEndHooks(...hooks: readonly StepEndHook[]): StepEndHook {
  if (hooks.length === 1) return hooks[0]!;
  return (state) => {
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
}
