/**
 * `Pix2PixZeroCaptioner`: the facade's captioner alone, a BLIP captioning model on the chosen backend without a
 * Stable Diffusion model (what `pix2pix-zero caption` runs). Load it with `Pix2PixZero.loadCaptioner`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type BackendChoice, type BackendInfo, initBackend } from './backend.js';
import { BlipCaptioner, type CaptionOptions, type CaptionResult } from './editing/captioner.js';
import { readImage, tensorToImage } from './io/image.js';
import { readBlipFolder } from './io/model-folder.js';
import type { ImageInput } from './pix2pix-zero.js';

/** Options of `Pix2PixZero.loadCaptioner`. */
export interface Pix2PixZeroCaptionerLoadOptions {
  /** A transformers BLIP captioning folder (config.json, weights, preprocessor and tokenizer files). */
  captioner: string;
  /**
   * Generation settings where a call gives none (default: none, so `generate()`'s own: greedy, at most 20
   * tokens; `AUTHORS_CAPTION_OPTIONS` are the settings `Pix2PixZero` captions with).
   */
  captionOptions?: CaptionOptions;
  /** The tfjs backend (default: `$PIX2PIX_ZERO_BACKEND`, else the best present). */
  backend?: BackendChoice;
  /** Let native TensorFlow's own start-up log lines reach stderr (default false). */
  nativeLogs?: boolean;
}

/** A BLIP captioner and the backend it runs on. Free it with {@link Pix2PixZeroCaptioner.dispose}. */
export class Pix2PixZeroCaptioner {
  private constructor(
    readonly backend: BackendInfo,
    readonly captioner: BlipCaptioner,
  ) {}

  /**
   * Checks the BLIP folder (before the backend starts, so a wrong folder fails at once), starts the backend and
   * loads the model. `Pix2PixZero.loadCaptioner` is the same.
   */
  static async load(options: Pix2PixZeroCaptionerLoadOptions): Promise<Pix2PixZeroCaptioner> {
    readBlipFolder(options.captioner);
    const backend = await initBackend({ backend: options.backend, nativeLogs: options.nativeLogs });
    return new Pix2PixZeroCaptioner(backend, BlipCaptioner.load(options.captioner, options.captionOptions));
  }

  /**
   * The caption of an image (a file path, decoded RGB, or a [1, H, W, 3] tensor in [-1, 1], not disposed) and the
   * token ids it was decoded from; `options` override the load's `captionOptions`.
   */
  async caption(image: ImageInput, options: CaptionOptions = {}): Promise<CaptionResult> {
    const rgb = typeof image === 'string' ? await readImage(image) : image instanceof tf.Tensor ? tensorToImage(image) : image;
    return this.captioner.captionImage(rgb, options);
  }

  /** Frees the model's weights. */
  dispose(): void {
    this.captioner.dispose();
  }
}
