/**
 * Noise regularisation of DDIM inversion (pix2pix-zero §3.2): before each inversion step, the predicted noise is
 * pulled towards i.i.d. standard Gaussian noise by gradient steps on two losses,
 *
 * - `L_ac`, the auto-correlation loss: over each batch item and channel, and over a pyramid (2x2 average-pooled
 *   until the side is <= 8), the squared mean of `noise * roll(noise, k)` along the height and along the width,
 *   with one random shift `k` per level;
 * - `L_kl = var + mean^2 - 1 - log(var + 1e-7)` over the whole tensor (unbiased variance).
 *
 * The updates are sequential, as in diffusers' `invert()`: for each of `numRegSteps` rounds, `numAutoCorrRolls`
 * steps of `lambdaAc / numAutoCorrRolls` on `L_ac` (each with fresh shifts), then one step of `lambdaKl` on `L_kl`.
 * Gradients come from `tf.grad`. Tensors are NHWC: [batch, height, width, channels].
 */
import * as tf from '@tensorflow/tfjs-core';
import { SETTINGS } from '../settings.js';

/** Where the roll shifts come from: a seeded {@link TorchGenerator} or a recorded list. */
export interface ShiftSource {
  /** An integer in [0, high). */
  randint(high: number): number;
}

/** Replays recorded shifts (the reference's, in parity tests), failing loudly if they run out. */
export class RecordedShifts implements ShiftSource {
  private i = 0;
  constructor(private readonly shifts: ArrayLike<number>) {}
  randint(high: number): number {
    if (this.i >= this.shifts.length) throw new Error(`RecordedShifts: all ${this.shifts.length} recorded shifts used`);
    const v = this.shifts[this.i++]!;
    if (v < 0 || v >= high) throw new Error(`RecordedShifts: shift ${v} outside [0, ${high})`);
    return v;
  }
  /** How many shifts were used. */
  get used(): number {
    return this.i;
  }
}

/** Hyperparameters of the regularisation (defaults as diffusers' `invert()` and the authors: `SETTINGS` of lib/settings.ts). */
export interface NoiseRegularizationOptions {
  /** Rounds of regularisation per inversion step (default 5). */
  numRegSteps?: number;
  /** Auto-correlation steps per round, each with fresh shifts (default 5). */
  numAutoCorrRolls?: number;
  /** Weight of the auto-correlation loss (default 20; 0 turns it off). */
  lambdaAc?: number;
  /** Weight of the KL loss (default 20; 0 turns it off). */
  lambdaKl?: number;
  /**
   * The smallest shift: 0 draws k in [0, side/2) as diffusers does; 1 draws k in [1, side/2) as the authors'
   * code does since 2024. Default 0.
   */
  minShift?: 0 | 1;
}

/** The defaults of {@link NoiseRegularizationOptions}, as `SETTINGS` (lib/settings.ts) holds them. */
export const NOISE_REGULARIZATION_DEFAULTS: Readonly<Required<NoiseRegularizationOptions>> = Object.freeze({
  numRegSteps: SETTINGS.numRegSteps.default,
  numAutoCorrRolls: SETTINGS.numAutoCorrRolls.default,
  lambdaAc: SETTINGS.lambdaAc.default,
  lambdaKl: SETTINGS.lambdaKl.default,
  minShift: SETTINGS.minShift.default,
});

/**
 * The smallest latent side the regularisation is run on. Both losses are minimised by plain gradient steps of a
 * fixed size (`lambdaAc / numAutoCorrRolls`, `lambdaKl`), while their gradients grow as the latent shrinks (they
 * are means over its h x w values): an auto-correlation step multiplies a channel by `1 - 4 s m / (h w)` (s the
 * step size, m the channel's mean square), which overshoots once `m > h w / (2 s)` (4.5 on a 6 x 6 latent with the
 * defaults, s = 4), and a KL step multiplies the deviations by `1 + 2 lambdaKl (1 / var - 1) / (n - 1)`. On latents
 * below 8 x 8 (images below 64 x 64 for Stable Diffusion) the two feed each other and the noise grows to infinity
 * within a few steps, in diffusers as here (and diffusers' `torch.randint(0)` fails outright on a 1 x 1 latent).
 * 8 is also where the loss's pyramid stops.
 */
export const MIN_REGULARIZED_SIDE = 8;

/**
 * How far below the overshoot the auto-correlation step must stay: `h w >= AC_STEP_MARGIN * s` (s =
 * `lambdaAc / numAutoCorrRolls`), i.e. channels up to twice unit variance do not overshoot. The defaults (s = 4)
 * pass on any latent of {@link MIN_REGULARIZED_SIDE}; one roll (s = 20) needs 80 latent values, more than 8 x 8,
 * where it does diverge.
 */
export const AC_STEP_MARGIN = 4;

/** Whether `options` regularise at all (some round with a loss of non-zero weight). */
function regularizes(o: NoiseRegularizationOptions): boolean {
  const d = NOISE_REGULARIZATION_DEFAULTS;
  const ac = (o.lambdaAc ?? d.lambdaAc) > 0 && (o.numAutoCorrRolls ?? d.numAutoCorrRolls) > 0;
  return (o.numRegSteps ?? d.numRegSteps) > 0 && (ac || (o.lambdaKl ?? d.lambdaKl) > 0);
}

/**
 * Refuses noise regularisation where it diverges: a latent smaller than {@link MIN_REGULARIZED_SIDE} a side, or an
 * auto-correlation step too large for the latent's size ({@link AC_STEP_MARGIN}). `what` describes the input in
 * the error (an image and its size).
 * @throws Error naming the sizes and the ways out.
 */
export function assertRegularizable(height: number, width: number, options: NoiseRegularizationOptions, what = 'the input'): void {
  if (!regularizes(options)) return;
  const off = 'turn the regularisation off (--reg-steps 0, numRegSteps: 0)';
  if (Math.min(height, width) < MIN_REGULARIZED_SIDE) {
    throw new Error(
      `noise regularisation needs latents of at least ${MIN_REGULARIZED_SIDE}x${MIN_REGULARIZED_SIDE} (it diverges to NaN on smaller ones), but ${what} gives ${width}x${height}: use a larger size, or ${off}`,
    );
  }
  const d = NOISE_REGULARIZATION_DEFAULTS;
  const rolls = options.numAutoCorrRolls ?? d.numAutoCorrRolls;
  const step = rolls > 0 ? (options.lambdaAc ?? d.lambdaAc) / rolls : 0;
  if (height * width < AC_STEP_MARGIN * step) {
    throw new Error(
      `noise regularisation: an auto-correlation step of ${step} (lambda-ac / ac-rolls) diverges on the ${width}x${height} latent of ${what} (it needs at least ${AC_STEP_MARGIN * step} values): use more --ac-rolls, a smaller --lambda-ac, a larger size, or ${off}`,
    );
  }
}

/**
 * `sum_m g[m, y, (y - k_m) mod s]` for a batch of [s, s] matrices `g` [n, s, s]: the cyclic diagonal at lag `k_m` of
 * each, as a product with a 0/1 mask (built here from the shifts) and a sum. Returns [n].
 */
function cyclicDiagonalSums(g: tf.Tensor3D, lags: number[]): tf.Tensor1D {
  const [n, s] = g.shape;
  const mask = new Float32Array(n * s * s);
  lags.forEach((k, m) => {
    for (let y = 0; y < s; y++) mask[(m * s + y) * s + ((((y - k) % s) + s) % s)] = 1;
  });
  return tf.sum(tf.mul(g, tf.tensor3d(mask, [n, s, s])), [1, 2]) as tf.Tensor1D;
}

/**
 * The auto-correlation loss `L_ac` of NHWC `noise`, drawing one shift per pyramid level from `shifts`: for every
 * (item, channel) map and pyramid level (the map average-pooled by 2 until its side is at most 8), the squares of
 * `mean(map * roll(map, k, rows))` and `mean(map * roll(map, k, columns))`, summed. Shifts are drawn in the
 * reference's order (item, channel, level), one per map and level for both axes.
 *
 * Computed for all maps of a level at once: `sum_{y,x} M[y,x] M[(y-k) mod H, x]` is the cyclic diagonal at lag k of
 * the Gram matrix `M M^T` (and of `M^T M` for the columns), so a level costs two batched products and two masked
 * sums, whatever the number of maps and shifts (rolling each map, as the reference does, is some 40 kernels per map and level,
 * which is what a small latent's inversion time was made of). The same values up to float summation order.
 */
export function autoCorrLoss(noise: tf.Tensor4D, shifts: ShiftSource, minShift: 0 | 1 = 0): tf.Scalar {
  return tf.tidy(() => {
    const [b, height, , c] = noise.shape;
    const sides: number[] = [];
    for (let side = height; ; side = Math.floor(side / 2)) {
      sides.push(side);
      if (side <= 8) break;
    }
    const lags = sides.map(() => new Array<number>(b * c));
    for (let m = 0; m < b * c; m++) {
      sides.forEach((side, level) => {
        const half = Math.floor(side / 2);
        lags[level]![m] = minShift === 1 ? 1 + shifts.randint(Math.max(half - 1, 1)) : shifts.randint(Math.max(half, 1));
      });
    }
    const terms: tf.Tensor[] = [];
    let level: tf.Tensor4D = noise;
    sides.forEach((_, l) => {
      if (l > 0) level = tf.avgPool(level, 2, 2, 'valid');
      const [, h, w] = level.shape;
      const maps = tf.reshape(tf.transpose(level, [0, 3, 1, 2]), [b * c, h, w]) as tf.Tensor3D;
      const rows = cyclicDiagonalSums(tf.matMul(maps, maps, false, true), lags[l]!);
      const cols = cyclicDiagonalSums(tf.matMul(maps, maps, true, false), lags[l]!);
      terms.push(tf.div(tf.concat([rows, cols]), h * w));
    });
    return tf.sum(tf.square(terms.length === 1 ? terms[0]! : tf.concat(terms))) as tf.Scalar;
  });
}

/** The KL loss `L_kl = var + mean^2 - 1 - log(var + 1e-7)` over the whole tensor, unbiased variance. */
export function klDivergence(x: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const n = x.size;
    const mean = tf.mean(x);
    const variance = tf.div(tf.sum(tf.square(tf.sub(x, mean))), n - 1);
    return tf.sub(tf.add(variance, tf.square(mean)), tf.add(1, tf.log(tf.add(variance, 1e-7)))) as tf.Scalar;
  });
}

/**
 * Regularises a noise prediction. `toEpsilon` maps the model output to the epsilon the losses act on (the
 * identity for epsilon-prediction models; for v-prediction, the epsilon derived from v and the sample).
 * Returns a new tensor; `modelOutput` is not disposed.
 */
export function regularizeNoise(
  modelOutput: tf.Tensor4D,
  shifts: ShiftSource,
  options: NoiseRegularizationOptions = {},
  toEpsilon: (v: tf.Tensor4D) => tf.Tensor4D = (v) => v,
): tf.Tensor4D {
  const d = NOISE_REGULARIZATION_DEFAULTS;
  const o = {
    numRegSteps: options.numRegSteps ?? d.numRegSteps,
    numAutoCorrRolls: options.numAutoCorrRolls ?? d.numAutoCorrRolls,
    lambdaAc: options.lambdaAc ?? d.lambdaAc,
    lambdaKl: options.lambdaKl ?? d.lambdaKl,
    minShift: options.minShift ?? d.minShift,
  };
  for (const [name, v] of [['numRegSteps', o.numRegSteps], ['numAutoCorrRolls', o.numAutoCorrRolls]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`noise regularisation: ${name} must be a non-negative integer, got ${v}`);
  }
  for (const [name, v] of [['lambdaAc', o.lambdaAc], ['lambdaKl', o.lambdaKl]] as const) {
    if (!Number.isFinite(v) || v < 0) throw new Error(`noise regularisation: ${name} must be a non-negative number, got ${v}`);
  }
  // The facade refuses latents it diverges on up front (assertRegularizable); the regulariser itself does what it
  // is asked, as diffusers' does (which stays finite at 4x4 for some settings: the Direct Inversion fixture).
  const acGrad = tf.grad((v: tf.Tensor) => autoCorrLoss(toEpsilon(v as tf.Tensor4D), shifts, o.minShift));
  const klGrad = tf.grad((v: tf.Tensor) => klDivergence(toEpsilon(v as tf.Tensor4D)));
  let x = tf.clone(modelOutput);
  const update = (next: () => tf.Tensor4D): void => {
    const prev = x;
    x = tf.tidy(next);
    prev.dispose();
  };
  for (let r = 0; r < o.numRegSteps; r++) {
    if (o.lambdaAc > 0) {
      for (let k = 0; k < o.numAutoCorrRolls; k++) {
        update(() => tf.sub(x, tf.mul(acGrad(x), o.lambdaAc / o.numAutoCorrRolls)) as tf.Tensor4D);
      }
    }
    if (o.lambdaKl > 0) update(() => tf.sub(x, tf.mul(klGrad(x), o.lambdaKl)) as tf.Tensor4D);
  }
  return x;
}
