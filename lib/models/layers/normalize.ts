/**
 * Standardisation followed by a per-channel affine map, `(x - mean) / sqrt(var + eps) * gamma + beta`, the
 * computation `GroupNorm` and `LayerNorm` share, as one differentiable op with a hand-written gradient.
 *
 * Why: tfjs differentiates the composite op by op (the mean's gradient alone is a reshape, a tensor of ones, a
 * product, a division and casts; every broadcast adds a reduction and a reshape), about 40 kernels per norm in the
 * backward pass. Small models are bound by per-kernel overhead (the toy-world UNet runs ~5,000 kernels per gradient),
 * and the UNet holds 30 group norms and 21 layer norms. With `xhat = (x - mean) * rstd` and `g = dy * gamma`, the
 * input gradient is
 *
 *     dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
 *
 * (means over the normalised axes), 10 kernels. Only the input gets a gradient: gamma and beta are constants here
 * (this library never trains). Outside a gradient the same forward runs without the custom-gradient wrapper.
 */
import * as tf from '@tensorflow/tfjs-core';
import { tapeIsOn } from './checkpoint.js';

/** How to take the statistics: the shape they are taken in, and the mean over the normalised axes (keeping them). */
export interface Standardization {
  /** `x` reshaped for the statistics (e.g. [N, positions, groups, channels per group]); `x`'s own shape if omitted. */
  view?: number[];
  /** The mean of a `view`-shaped tensor over the normalised axes, with those axes kept (size 1). */
  mean: (t: tf.Tensor) => tf.Tensor;
  eps: number;
}

/**
 * `standardize(x) * gamma + beta`, where `gamma` and `beta` ([C], optional) apply to `x`'s last axis, and the
 * standardisation is over the axes `s.mean` reduces in `s.view`. Same values as the composite; the gradient with
 * respect to `x` is the closed form above.
 */
export function affineNormalize(x: tf.Tensor, s: Standardization, gamma?: tf.Tensor, beta?: tf.Tensor): tf.Tensor {
  const shape = x.shape;
  const view = s.view ?? shape;
  const sameShape = view.length === shape.length && view.every((d, i) => d === shape[i]);
  const toView = (t: tf.Tensor): tf.Tensor => (sameShape ? t : tf.reshape(t, view));
  const toShape = (t: tf.Tensor): tf.Tensor => (sameShape ? t : tf.reshape(t, shape));
  const standardize = (input: tf.Tensor): { xhat: tf.Tensor; rstd: tf.Tensor } => {
    const xv = toView(input);
    const centered = tf.sub(xv, s.mean(xv));
    // square(sub) rather than squaredDifference: one kernel fewer, the same values.
    const rstd = tf.rsqrt(tf.add(s.mean(tf.square(centered)), s.eps));
    return { xhat: tf.mul(centered, rstd), rstd };
  };
  const affine = (xhat: tf.Tensor): tf.Tensor => {
    let y = toShape(xhat);
    if (gamma !== undefined) y = tf.mul(y, gamma);
    if (beta !== undefined) y = tf.add(y, beta);
    return y;
  };
  if (!tapeIsOn()) return tf.tidy(() => affine(standardize(x).xhat));
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const { xhat, rstd } = standardize(input);
    save([xhat, rstd]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor => {
      const [sx, sr] = saved as [tf.Tensor, tf.Tensor];
      const g = toView(gamma !== undefined ? tf.mul(dy, gamma) : dy);
      const inner = tf.sub(tf.sub(g, s.mean(g)), tf.mul(sx, s.mean(tf.mul(g, sx))));
      return toShape(tf.mul(inner, sr));
    };
    return { value: affine(xhat), gradFunc };
  });
  return f(x);
}
