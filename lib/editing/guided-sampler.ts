/**
 * The reference and edit passes of pix2pix-zero (§3.3), run in lock-step. Both start from the inverted noise
 * and use the same timesteps and classifier-free guidance (CFG). At each timestep t:
 *
 * - reference: predict with [negative, caption], recording every cross-attention map M_ref(t); CFG; DDIM step;
 * - edit: x_in = [x_t, x_t]; one gradient step x_in -= lambda_xa * grad L_xa(x_in), where L_xa compares the
 *   edit pass's maps (conditioned on [negative, caption + direction]) with M_ref(t); predict at the moved x_in;
 *   CFG; a DDIM step from x_in's first half — exactly as diffusers' `__call__`.
 *
 * The reference pass never depends on the edit pass, so running them in lock-step gives diffusers' result while
 * holding one timestep of maps instead of all of them (T times less memory). Each pass has its own scheduler
 * instance (from the injected factory: a multistep scheduler keeps state per walk). After each lock-step step the
 * `onStepEnd` hook (diffusers' `callback_on_step_end`, also given the step's reference maps) may replace either
 * latent: Direct Inversion and local blending are such hooks (`chainStepEndHooks` runs several in order).
 */
import * as tf from '@tensorflow/tfjs-core';
import { inject, injectable } from 'inversify';
import type { SchedulerFactory } from '../schedulers/scheduler.js';
import { type RangeSetting, SETTINGS, assertStepCount, inRange, rangeText } from '../settings.js';
import { yieldToEventLoop } from './event-loop.js';
import type { AttentionMaps, DenoiserPort } from './ports.js';
import {
  type EditConditions,
  type EditLatents,
  type GuidedSampler,
  type GuidedSamplerOptions,
  type StepEndCorrection,
  TYPES,
  throwIfAborted,
} from './services.js';

/** Classifier-free guidance: `uncond + scale * (cond - uncond)` of a batch-2 output; the output itself without CFG. */
function guide(output: tf.Tensor4D, scale: number, cfg: boolean): tf.Tensor4D {
  if (!cfg) return output;
  const [uncond, cond] = tf.split(output, 2, 0) as [tf.Tensor4D, tf.Tensor4D];
  return tf.add(uncond, tf.mul(tf.sub(cond, uncond), scale)) as tf.Tensor4D;
}

/** One forward of the reference pass at a step: its guided prediction and its maps (owned by the holder). */
interface StepForward {
  output: tf.Tensor4D;
  maps: AttentionMaps;
  selfMaps?: AttentionMaps;
}

/** Checks that the edit options are usable, naming the bad one. */
export function validateEditOptions(o: GuidedSamplerOptions): void {
  if (o.steps !== undefined) assertStepCount(o.steps);
  if (o.guidanceScale !== undefined && !(Number.isFinite(o.guidanceScale) && o.guidanceScale >= 0)) {
    throw new Error(`guidanceScale must be a non-negative number, got ${o.guidanceScale}`);
  }
  if (o.xaGuidance !== undefined && !(Number.isFinite(o.xaGuidance) && o.xaGuidance >= 0)) {
    throw new Error(`xaGuidance must be a non-negative number, got ${o.xaGuidance}`);
  }
  const ranged: [RangeSetting, number | undefined][] = [
    [SETTINGS.selfAttentionInjection, o.selfAttentionInjection],
    [SETTINGS.selfAttentionMaxQueries, o.selfAttentionMaxQueries],
    [SETTINGS.crossAttentionInjection, o.crossAttentionInjection],
  ];
  for (const [s, v] of ranged) {
    if (v !== undefined && !inRange(s, v)) throw new Error(`${s.option} must be ${rangeText(s)}, got ${String(v)}`);
  }
  for (const [name, v] of [
    ['gradientSplitMinElements', o.gradientSplitMinElements],
    ['jointForwardMaxElements', o.jointForwardMaxElements],
  ] as const) {
    if (v !== undefined && !(v >= 0)) throw new Error(`${name} must be a non-negative number (or Infinity), got ${v}`);
  }
}

/**
 * Latent elements per image from which CFG's gradient is taken one half at a time: 32 x 32 x 4 (a 256 px image).
 * At 512 px it keeps the full-size edit under 8 GiB (docs/benchmarks.md); below, memory is no concern.
 * `SETTINGS.gradientSplitMinElements.default` (lib/settings.ts).
 */
export const CFG_GRADIENT_SPLIT_MIN_ELEMENTS = SETTINGS.gradientSplitMinElements.default;

/** Whether two tensors hold the same values (the same shape and every element equal). */
function sameValues(a: tf.Tensor, b: tf.Tensor): boolean {
  if (a === b) return true;
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) return false;
  return tf.tidy(() => tf.all(tf.equal(a, b)).dataSync()[0] === 1);
}

@injectable()
export class CrossAttentionGuidedSampler implements GuidedSampler {
  constructor(
    @inject(TYPES.Denoiser) private readonly unet: DenoiserPort,
    @inject(TYPES.SchedulerFactory) private readonly schedulers: SchedulerFactory,
  ) {}

  async sample(noise: tf.Tensor4D, c: EditConditions, options: GuidedSamplerOptions = {}): Promise<EditLatents> {
    validateEditOptions(options);
    const scale = options.guidanceScale ?? SETTINGS.guidanceScale.default;
    const lambda = options.xaGuidance ?? SETTINGS.xaGuidance.default;
    const cfg = scale > 1;
    const refScheduler = this.schedulers.create('sampling');
    const editScheduler = this.schedulers.create('sampling');
    const steps = options.steps ?? SETTINGS.steps.default;
    const timesteps = refScheduler.setTimesteps(steps);
    editScheduler.setTimesteps(steps);

    const [refContext, editContext] = tf.tidy(() => {
      const edited = tf.add(c.caption, c.direction) as tf.Tensor3D;
      return cfg
        ? [tf.concat([c.negative, c.caption], 0) as tf.Tensor3D, tf.concat([c.negative, edited], 0) as tf.Tensor3D]
        : [tf.clone(c.caption), edited];
    });
    const gradient = (x: tf.Tensor4D, t: number, context: tf.Tensor3D, maps: AttentionMaps): tf.Tensor4D =>
      this.unet.crossAttentionLossGradient?.(x, t, context, maps) ??
      (tf.grad((v: tf.Tensor) => this.unet.crossAttentionLoss(v as tf.Tensor4D, t, context, maps))(x) as tf.Tensor4D);
    // The loss is a mean over batch x heads and the UNet treats batch items apart, so CFG's batch-2 gradient is
    // each half's own batch-1 gradient times 1/2 (as diffusers computes it: one backward pass of both halves).
    // Taken one half at a time, the backward pass holds one half's activations: half the peak, the same values,
    // twice the kernels (which a small model, bound by per-kernel overhead, would pay for nothing).
    const splitFrom = options.gradientSplitMinElements ?? CFG_GRADIENT_SPLIT_MIN_ELEMENTS;
    const lossGrad = (x: tf.Tensor4D, t: number, maps: AttentionMaps): tf.Tensor4D => {
      if (!cfg || x.size / x.shape[0] < splitFrom) return gradient(x, t, editContext, maps);
      const halves = [0, 1].map((i) =>
        tf.tidy(() => {
          const half = <T extends tf.Tensor>(m: T): T => {
            const n = m.shape[0]! / 2;
            return tf.slice(m, [i * n, ...m.shape.slice(1).map(() => 0)], [n, ...m.shape.slice(1).map(() => -1)]) as T;
          };
          const halfMaps: AttentionMaps = new Map([...maps].map(([k, m]) => [k, half(m)]));
          return tf.mul(gradient(half(x), t, half(editContext), halfMaps), 0.5) as tf.Tensor4D;
        }),
      );
      return tf.concat(halves, 0) as tf.Tensor4D;
    };
    const batch = (x: tf.Tensor4D): tf.Tensor4D => (cfg ? (tf.concat([x, x], 0) as tf.Tensor4D) : x);
    // With the caption as the negative prompt (the authors' default), the reference pass's two CFG halves are the
    // same computation: one batch-1 forward gives both (its output is the guided prediction, uncond + s (cond -
    // uncond) with cond = uncond, and its maps are both halves' maps).
    const sameHalves = cfg && sameValues(c.negative, c.caption);
    // Self-attention injection: the reference pass records its self-attention maps in the first steps.
    const injectSteps = Math.floor((options.selfAttentionInjection ?? SETTINGS.selfAttentionInjection.default) * steps + 1e-9);
    const maxQueries = options.selfAttentionMaxQueries ?? SETTINGS.selfAttentionMaxQueries.default;
    // Cross-attention injection: the edit pass's prediction uses the reference maps of its step in the first steps.
    const crossSteps = Math.floor((options.crossAttentionInjection ?? SETTINGS.crossAttentionInjection.default) * steps + 1e-9);
    const doubled = (maps: AttentionMaps): AttentionMaps => {
      const out: AttentionMaps = new Map([...maps].map(([k, m]) => [k, tf.concat([m, m], 0) as tf.Tensor3D]));
      tf.dispose([...maps.values()]);
      return out;
    };
    const referencePass = (x: tf.Tensor4D, t: number, inject: boolean): StepForward => {
      const record = inject ? { selfAttentionMaxQueries: maxQueries } : {};
      if (!sameHalves) {
        const input = batch(x);
        const r = this.unet.predictWithMaps(input, t, refContext, record);
        if (input !== x) input.dispose();
        const output = tf.tidy(() => guide(r.output, scale, cfg));
        if (output !== r.output) r.output.dispose();
        return { output, maps: r.maps, selfMaps: r.selfMaps };
      }
      const r = this.unet.predictWithMaps(x, t, c.caption, record);
      return { output: r.output, maps: doubled(r.maps), selfMaps: r.selfMaps !== undefined ? doubled(r.selfMaps) : undefined };
    };

    // A small latent's forward costs per-kernel overhead, which one batched forward pays once, so passes that do
    // not wait for each other run as one batch [reference part, edit part], each part with its own context and
    // timestep:
    // - without guidance, the edit pass does not wait for this step's reference maps: both passes of step i;
    // - with guidance, the edit pass's prediction at step i (after its gradient step) runs with the reference pass's
    //   forward of step i + 1, from the reference latent the step's hooks will leave (`referenceAfter`, e.g. Direct
    //   Inversion's trajectory; else the DDIM step's). After the hooks that latent is checked, value for value; a
    //   hook that left another one gets its reference forward run again.
    // Self- and cross-attention injection replay maps per pass, so their steps run apart. The maps' rows are batch-major
    // ([batch * heads, ...]): the reference's are the first rows.
    const jointFrom = options.jointForwardMaxElements ?? SETTINGS.jointForwardMaxElements.default;
    const small = noise.size / noise.shape[0] < jointFrom;
    const joint = lambda === 0 && small;
    const pipelined = lambda > 0 && small && injectSteps === 0 && crossSteps === 0;
    const refPart = sameHalves ? 1 : cfg ? 2 : 1;
    const jointContext =
      joint || pipelined ? tf.tidy(() => tf.concat([sameHalves ? c.caption : refContext, editContext], 0) as tf.Tensor3D) : undefined;
    /** One forward of the reference pass at `x`, `refT` and the edit pass's (batched) input `editInput` at `editT`. */
    const jointPass = (x: tf.Tensor4D, editInput: tf.Tensor4D, refT: number, editT: number): StepForward & { editOutput: tf.Tensor4D } => {
      const input = tf.tidy(() => tf.concat([sameHalves ? x : batch(x), editInput], 0) as tf.Tensor4D);
      const total = input.shape[0];
      const times = refT === editT ? refT : Array.from({ length: total }, (_, k) => (k < refPart ? refT : editT));
      const r = this.unet.predictWithMaps(input, times, jointContext!);
      input.dispose();
      const [output, editOutput] = tf.tidy(() => {
        const [refOut, editOut] = tf.split(r.output, [refPart, total - refPart], 0) as [tf.Tensor4D, tf.Tensor4D];
        return [sameHalves ? refOut : guide(refOut, scale, cfg), editOut];
      });
      r.output.dispose();
      const maps: AttentionMaps = new Map(
        [...r.maps].map(([k, m]) => [k, tf.tidy(() => tf.slice(m, [0, 0, 0], [(m.shape[0] / total) * refPart, -1, -1]) as tf.Tensor3D)]),
      );
      tf.dispose([...r.maps.values()]);
      return { output, maps: sameHalves ? doubled(maps) : maps, editOutput };
    };
    const disposeForward = (f: StepForward | undefined): void => {
      if (f === undefined) return;
      f.output.dispose();
      for (const m of [...f.maps.values(), ...(f.selfMaps?.values() ?? [])]) m.dispose();
    };

    let ref = tf.clone(noise);
    let edit = tf.clone(noise);
    // The reference forward of the next step, run with this step's edit prediction, and the latent it ran at.
    let ahead: { forward: StepForward; latent: tf.Tensor4D } | undefined;
    try {
      for (let i = 0; i < timesteps.length; i++) {
        throwIfAborted(options.signal);
        const t = timesteps[i]!;
        const last = i === timesteps.length - 1;
        // Reference pass: records M_ref(t); `output` is the guided prediction.
        let together: (StepForward & { editOutput: tf.Tensor4D }) | undefined;
        if (joint && i >= injectSteps && i >= crossSteps) {
          const editInput = batch(edit);
          together = jointPass(ref, editInput, t, t);
          if (editInput !== edit) editInput.dispose();
        }
        const current: StepForward = ahead?.forward ?? together ?? referencePass(ref, t, i < injectSteps);
        ahead = undefined;
        const { output, maps, selfMaps } = current;
        let editOutput: tf.Tensor4D | undefined;
        let xIn: tf.Tensor4D | undefined;
        try {
          const nextRef = tf.tidy(() => refScheduler.step(output, t, ref).prevSample as tf.Tensor4D);
          options.onReferenceMaps?.(i, maps);
          // Edit pass: one gradient step on the latent towards the reference maps, then a DDIM step.
          // The edit pass's input (after its gradient step); a joint forward of both passes has already run on it.
          xIn =
            together !== undefined
              ? edit
              : tf.tidy(() => {
                  const x = batch(edit);
                  return lambda > 0 ? (tf.sub(x, tf.mul(lossGrad(x, t, maps), lambda)) as tf.Tensor4D) : x;
                });
          const input = xIn;
          if (together !== undefined) {
            editOutput = together.editOutput;
          } else if (pipelined && !last) {
            const latent = options.onStepEnd?.referenceAfter?.(i, timesteps.length) ?? nextRef;
            const { editOutput: out, ...forward } = jointPass(latent, input, timesteps[i + 1]!, t);
            ahead = { forward, latent };
            editOutput = out;
          } else {
            editOutput = this.unet.predict(input, t, editContext, { selfAttention: selfMaps, crossAttention: i < crossSteps ? maps : undefined });
          }
          const nextEdit = tf.tidy(() => {
            const first = cfg && input !== edit ? (tf.slice(input, [0, 0, 0, 0], [1, -1, -1, -1]) as tf.Tensor4D) : input;
            return editScheduler.step(guide(editOutput!, scale, cfg), t, first).prevSample as tf.Tensor4D;
          });
          ref.dispose();
          edit.dispose();
          ref = nextRef;
          edit = nextEdit;
          if (options.onStepEnd !== undefined) {
            const state = { step: i, steps: timesteps.length, timestep: t, reference: ref, edit, referenceMaps: maps, guidanceBatch: cfg ? 2 : 1 } as const;
            const fix: StepEndCorrection | void = options.onStepEnd(state);
            const nextReference = fix?.reference ?? ref;
            // The reference forward ran ahead from the latent the hooks were expected to leave: keep it only if they did.
            if (ahead !== undefined && nextReference !== ahead.latent && !sameValues(nextReference, ahead.latent)) {
              disposeForward(ahead.forward);
              ahead = undefined;
            }
            if (nextReference !== ref) {
              ref.dispose();
              ref = nextReference;
            }
            if (fix?.edit !== undefined && fix.edit !== edit) {
              edit.dispose();
              edit = fix.edit;
            }
          }
        } finally {
          disposeForward(current);
          editOutput?.dispose();
          // The edit input may be the edit latent itself (a joint step, or neither CFG nor guidance): the loop owns it.
          if (xIn !== undefined && xIn !== edit) xIn.dispose();
        }
        options.onProgress?.({ phase: 'edit', step: i + 1, total: timesteps.length });
        await yieldToEventLoop();
      }
      return { edited: edit, reconstruction: ref };
    } catch (err) {
      ref.dispose();
      edit.dispose();
      disposeForward(ahead?.forward);
      throw err;
    } finally {
      refContext.dispose();
      editContext.dispose();
      jointContext?.dispose();
    }
  }
}
