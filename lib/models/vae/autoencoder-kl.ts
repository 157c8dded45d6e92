/**
 * `AutoencoderKL`: Stable Diffusion's VAE (diffusers' `AutoencoderKL`), from images to latents and back.
 *
 * Layout: every tensor is NHWC, as everywhere in this library. Images are [N, H, W, 3] float32 in [-1, 1];
 * latents are [N, H/f, W/f, latentChannels] with f = {@link AutoencoderKL.downscale} (8 for Stable Diffusion).
 * diffusers' NCHW tensors are these transposed by [0, 3, 1, 2].
 *
 * Scaling: as in diffusers, {@link AutoencoderKL.encode} and {@link AutoencoderKL.decode} work on the VAE's own
 * (unscaled) latents `z`; the diffusion model sees `scalingFactor * z`. {@link AutoencoderKL.encodeLatents} and
 * {@link AutoencoderKL.decodeLatents} are the pipeline's conversions that include the scaling.
 *
 * Memory: batch items are encoded and decoded one at a time (as diffusers' `enable_slicing()`; results are
 * the same), and the blocks run inference-only forwards (`*ForInference`, ./inference.ts) that free every
 * intermediate as soon as it is used. Measured for a full-size SD 1.x VAE (83.7M parameters, 319 MB) on wasm, batch 1
 * (spec/vae-memory.spec.ts): decoding a 64x64 latent to 512x512 peaks at 1,024 MB of tensors above the weights,
 * encoding 512x512 at 640 MB (the shared blocks' one-tidy forwards: 1,920 and 1,408 MB).
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { type ComponentFolder, detectFolderKind } from '../../io/model-folder.js';
import type { TorchGenerator } from '../../random/torch-generator.js';
import { Conv2d } from '../layers/conv2d.js';
import { type ForwardArgs, Module } from '../layers/module.js';
import { Decoder } from './decoder.js';
import { DiagonalGaussianDistribution } from './distribution.js';
import { Encoder } from './encoder.js';
import { conv2dForInference } from './inference.js';
import { type VaeConfig, parseVaeConfig, vaeDownscale } from './config.js';
import { loadComponentModel } from '../load-weights.js';
import { loadVaeWeights, vaeShapeBindings, vaeWeightMap } from './weights.js';

/** Options of {@link AutoencoderKL.encodeLatents}. */
export interface EncodeLatentsOptions {
  /** `mean` (default): the posterior mean, deterministic. `sample`: a draw from the posterior. */
  mode?: 'mean' | 'sample';
  /** For `sample`: standard normal noise shaped like the latents (NHWC). */
  noise?: tf.Tensor4D;
  /**
   * For `sample` without `noise`: a seed, or a generator to draw from (it advances). Seed `s` draws the noise of
   * diffusers' `latent_dist.sample(generator=torch.Generator().manual_seed(s))` on the CPU.
   */
  generator?: number | TorchGenerator;
}

/** diffusers' `AutoencoderKL`. Build it with {@link AutoencoderKL.fromFolder}; free its weights with `disposeAll()`. */
export class AutoencoderKL extends Module {
  readonly encoder: Encoder;
  readonly decoder: Decoder;
  readonly quantConv?: Conv2d;
  readonly postQuantConv?: Conv2d;

  /** A model with zero weights, shaped by `config` (load weights with {@link loadVaeWeights}). */
  constructor(readonly config: VaeConfig) {
    super();
    const lc = config.latentChannels;
    this.encoder = this.child('encoder', new Encoder(config));
    this.decoder = this.child('decoder', new Decoder(config));
    if (config.useQuantConv) this.quantConv = this.child('quant_conv', new Conv2d(2 * lc, 2 * lc, 1));
    if (config.usePostQuantConv) this.postQuantConv = this.child('post_quant_conv', new Conv2d(lc, lc, 1));
  }

  /**
   * Builds the VAE of a diffusers folder and loads its weights: a `vae/` folder (`config.json` +
   * `diffusion_pytorch_model.safetensors` or a sharded index), a Stable Diffusion pipeline folder (its `vae/` is
   * used), or an already read {@link ComponentFolder}.
   * @throws Error naming the file and field of a bad config, or listing every missing/unexpected/mis-shaped tensor.
   */
  static fromFolder(folder: string | ComponentFolder): AutoencoderKL {
    const isPipeline = typeof folder === 'string' && detectFolderKind(folder) === 'stable-diffusion';
    return loadComponentModel(isPipeline ? path.join(folder, 'vae') : folder, {
      what: 'VAE',
      parse: parseVaeConfig,
      build: (config) => new AutoencoderKL(config),
      load: (model, source, config) => loadVaeWeights(model, source, config.blockOutChannels.length),
      bindings: vaeShapeBindings,
      map: (config, names) => vaeWeightMap(names, config.blockOutChannels.length),
    });
  }

  /** `scaling_factor` of the config. */
  get scalingFactor(): number {
    return this.config.scalingFactor;
  }

  /** Image side / latent side (8 for Stable Diffusion). */
  get downscale(): number {
    return vaeDownscale(this.config);
  }

  /** Channels of the latent (4 for Stable Diffusion). */
  get latentChannels(): number {
    return this.config.latentChannels;
  }

  /**
   * The posterior of images [N, H, W, inChannels] in [-1, 1] (H and W multiples of {@link downscale}): its
   * `mean` and `logvar` are [N, H/f, W/f, latentChannels]. The caller disposes the distribution.
   */
  encode(image: tf.Tensor4D): DiagonalGaussianDistribution {
    this.checkInput(image, 'image', this.config.inChannels, this.downscale);
    const params = this.perItem(image, (x) => {
      const h = this.encoder.forward(x);
      if (this.quantConv === undefined) return h;
      const q = conv2dForInference(this.quantConv, h);
      h.dispose();
      return q;
    });
    try {
      return new DiagonalGaussianDistribution(params);
    } finally {
      params.dispose();
    }
  }

  /**
   * Scaled latents of images (see {@link encode}): `scalingFactor` times the posterior mean (default) or a sample
   * (`mode: 'sample'` with `noise` or a `generator`), as the pipeline feeds the diffusion model.
   */
  encodeLatents(image: tf.Tensor4D, options: EncodeLatentsOptions = {}): tf.Tensor4D {
    const mode = options.mode ?? 'mean';
    if (mode !== 'mean' && mode !== 'sample') throw new Error(`encodeLatents: mode must be 'mean' or 'sample', got '${String(mode)}'`);
    if (mode === 'sample' && options.noise === undefined && options.generator === undefined) {
      throw new Error("encodeLatents: mode 'sample' needs noise (a tensor) or a generator (a seed or TorchGenerator)");
    }
    const posterior = this.encode(image);
    try {
      return tf.tidy(() => {
        const z = mode === 'mean' ? posterior.mean : posterior.sample(options.noise ?? options.generator!);
        return tf.mul(z, this.scalingFactor);
      });
    } finally {
      posterior.dispose();
    }
  }

  /**
   * Images [N, h*f, w*f, outChannels] of unscaled latents `z` [N, h, w, latentChannels], as diffusers'
   * `vae.decode(z).sample`: nominally in [-1, 1], not clamped.
   */
  decode(z: tf.Tensor4D): tf.Tensor4D {
    this.checkInput(z, 'latents', this.config.latentChannels, 1);
    return this.perItem(z, (x) => {
      if (this.postQuantConv === undefined) return this.decoder.forward(x);
      const h = conv2dForInference(this.postQuantConv, x);
      try {
        return this.decoder.forward(h);
      } finally {
        h.dispose();
      }
    });
  }

  /** Images of scaled latents (what the diffusion model produces): `decode(latents / scalingFactor)`. */
  decodeLatents(latents: tf.Tensor4D): tf.Tensor4D {
    this.checkInput(latents, 'latents', this.config.latentChannels, 1);
    const z = tf.div(latents, this.scalingFactor) as tf.Tensor4D;
    try {
      return this.decode(z);
    } finally {
      z.dispose();
    }
  }

  /** diffusers' `forward(sample_posterior=False)`: the images decoded from the posterior means of `image`. */
  forward(image: tf.Tensor, _args?: ForwardArgs): tf.Tensor {
    const posterior = this.encode(image as tf.Tensor4D);
    try {
      return this.decode(posterior.mean);
    } finally {
      posterior.dispose();
    }
  }

  /** Runs `f` on each batch item alone and stacks the results (the whole batch at once when it has one item). */
  private perItem(x: tf.Tensor4D, f: (item: tf.Tensor4D) => tf.Tensor): tf.Tensor4D {
    const n = x.shape[0];
    if (n === 1) return f(x) as tf.Tensor4D;
    const outs: tf.Tensor[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const item = tf.slice(x, [i, 0, 0, 0], [1, -1, -1, -1]);
        try {
          outs.push(f(item));
        } finally {
          item.dispose();
        }
      }
      return tf.concat(outs, 0) as tf.Tensor4D;
    } finally {
      for (const t of outs) t.dispose();
    }
  }

  private checkInput(x: tf.Tensor, what: string, channels: number, multiple: number): void {
    const shape = `[${x.shape.join(', ')}]`;
    if (x.rank !== 4) throw new Error(`AutoencoderKL: ${what} must be NHWC [N, H, W, ${channels}], got shape ${shape}`);
    const [n, h, w, c] = x.shape as [number, number, number, number];
    if (c !== channels) throw new Error(`AutoencoderKL: ${what} must have ${channels} channels (NHWC, channels last), got shape ${shape}`);
    if (n < 1 || h < 1 || w < 1) throw new Error(`AutoencoderKL: ${what} is empty, shape ${shape}`);
    if (h % multiple !== 0 || w % multiple !== 0) {
      throw new Error(`AutoencoderKL: ${what} height and width must be multiples of ${multiple}, got shape ${shape}`);
    }
    if (x.dtype !== 'float32') throw new Error(`AutoencoderKL: ${what} must be float32, got ${x.dtype}`);
  }
}
