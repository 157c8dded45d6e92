/**
 * `DiagonalGaussianDistribution`: the VAE posterior, a Gaussian per latent element, as diffusers defines it.
 * Tensors are NHWC: [N, h, w, latentChannels].
 */
import * as tf from '@tensorflow/tfjs-core';
import { TorchGenerator } from '../../random/torch-generator.js';
import { torchRandn } from './torch-randn.js';

/** The log-variance is clamped to this range, as diffusers does. */
export const LOGVAR_RANGE: readonly [number, number] = [-30, 20];

/**
 * Where the noise of {@link DiagonalGaussianDistribution.sample} comes from: a tensor of standard normal noise
 * shaped like the mean (NHWC), a seed, or a generator to draw from (it advances).
 *
 * A seed `s` (or `new TorchGenerator(s)`) draws exactly the noise of diffusers'
 * `latent_dist.sample(generator=torch.Generator().manual_seed(s))` on the CPU: `torch.randn` of the NCHW mean's
 * shape, see {@link torchRandn}.
 */
export type NoiseSource = tf.Tensor | number | TorchGenerator;

/**
 * Standard normal noise of NHWC `shape`, drawn in the order PyTorch draws a tensor of the NCHW shape (so a seed
 * gives the reference's noise), returned NHWC.
 */
export function torchRandnNHWC(shape: readonly [number, number, number, number], source: number | TorchGenerator): tf.Tensor4D {
  const gen = typeof source === 'number' ? new TorchGenerator(source) : source;
  const [n, h, w, c] = shape;
  const values = torchRandn(gen, n * h * w * c);
  return tf.tidy(() => tf.transpose(tf.tensor4d(values, [n, c, h, w]), [0, 2, 3, 1]));
}

/**
 * The posterior `N(mean, exp(logvar))`. Owns its tensors: call {@link dispose} when done (or keep the tensors
 * you need with `tf.keep`/`clone` first).
 */
export class DiagonalGaussianDistribution {
  /** [N, h, w, C]. */
  readonly mean: tf.Tensor4D;
  /** [N, h, w, C], clamped to [-30, 20]. */
  readonly logvar: tf.Tensor4D;

  /** Splits the encoder's parameters [N, h, w, 2C] (mean first, as `torch.chunk(2, dim=1)`). Does not take `parameters`. */
  constructor(parameters: tf.Tensor4D) {
    const c2 = parameters.shape[3];
    if (c2 % 2 !== 0) throw new Error(`DiagonalGaussianDistribution: ${c2} channels do not split into mean and log-variance`);
    const [mean, logvar] = tf.tidy(() => {
      const [m, lv] = tf.split(parameters, 2, 3) as [tf.Tensor4D, tf.Tensor4D];
      return [m, tf.clipByValue(lv, LOGVAR_RANGE[0], LOGVAR_RANGE[1]) as tf.Tensor4D];
    });
    this.mean = mean;
    this.logvar = logvar;
  }

  /** The standard deviation `exp(logvar / 2)` (a new tensor). */
  std(): tf.Tensor4D {
    return tf.tidy(() => tf.exp(tf.mul(this.logvar, 0.5)) as tf.Tensor4D);
  }

  /** The variance `exp(logvar)` (a new tensor). */
  variance(): tf.Tensor4D {
    return tf.tidy(() => tf.exp(this.logvar) as tf.Tensor4D);
  }

  /** The mode, i.e. the mean (a new tensor: disposing it leaves the distribution intact). */
  mode(): tf.Tensor4D {
    return this.mean.clone();
  }

  /**
   * A sample `mean + std * noise` (a new tensor). `noise`: a standard normal tensor shaped like the mean, a seed,
   * or a generator (see {@link NoiseSource}).
   */
  sample(noise: NoiseSource): tf.Tensor4D {
    if (noise instanceof tf.Tensor) {
      const same = noise.shape.length === 4 && noise.shape.every((d, i) => d === this.mean.shape[i]);
      if (!same) throw new Error(`sample: noise has shape [${noise.shape.join(', ')}], expected the mean's [${this.mean.shape.join(', ')}] (NHWC)`);
    }
    return tf.tidy(() => {
      const eps = noise instanceof tf.Tensor ? noise : torchRandnNHWC(this.mean.shape, noise);
      return tf.add(this.mean, tf.mul(this.std(), eps)) as tf.Tensor4D;
    });
  }

  /** KL divergence to the standard normal per batch item, `0.5 sum(mean^2 + var - 1 - logvar)`, [N]. */
  kl(): tf.Tensor1D {
    return tf.tidy(() => tf.mul(tf.sum(tf.sub(tf.sub(tf.add(tf.square(this.mean), this.variance()), 1), this.logvar), [1, 2, 3]), 0.5));
  }

  /** Frees the mean and log-variance. */
  dispose(): void {
    this.mean.dispose();
    this.logvar.dispose();
  }
}
