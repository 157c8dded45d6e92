/**
 * `Pix2PixZeroTextEmbedder`: the facade's text side alone, the CLIP tokenizer and text encoder of a Stable
 * Diffusion pipeline folder on the chosen backend, without the UNet and the VAE (what `pix2pix-zero embed` runs).
 * Load it with `Pix2PixZero.loadTextEmbedder`.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { type BackendChoice, type BackendInfo, initBackend } from './backend.js';
import { defaultCacheDir } from './editing/direction-discovery.js';
import { ClipTextEmbedder, type EmbedOptions } from './editing/text-embedder.js';
import { type CheckpointModelOptions, withModelFolder } from './models/checkpoint/cache.js';
import { type ClipTextFolder, ClipTextEncoder, readClipTextFolder } from './models/clip-text/text-encoder.js';
import { defaultModel } from './paths.js';

/** Options of `Pix2PixZero.loadTextEmbedder`. */
export interface Pix2PixZeroTextEmbedderLoadOptions {
  /**
   * A diffusers Stable Diffusion pipeline folder (only its `text_encoder/` and `tokenizer/` are read), or a
   * single-file SD 1.x/2.x checkpoint, converted as `Pix2PixZero.load` converts it (once, into `cacheDir`).
   * Default: the shipped model.
   */
  model?: string;
  /** How a single-file checkpoint given as `model` is converted (as `Pix2PixZero.load`'s option). */
  checkpoint?: CheckpointModelOptions;
  /** Where a single-file checkpoint's conversion is cached (default as `Pix2PixZero.load`'s); `false`: a temporary folder. */
  cacheDir?: string | false;
  /** The text encoder's weights variant, as diffusers' `variant=` (default: the plain weights, else the only variant, said through `onNotice`). */
  variant?: string;
  /** Told what was decided for the caller (a folder read in its only variant). */
  onNotice?: (message: string) => void;
  /** The tfjs backend (default: `$PIX2PIX_ZERO_BACKEND`, else the best present). */
  backend?: BackendChoice;
  /** Let native TensorFlow's own start-up log lines reach stderr (default false). */
  nativeLogs?: boolean;
}

/** Options of {@link Pix2PixZeroTextEmbedder.embed}. */
export interface Pix2PixZeroEmbedOptions extends EmbedOptions {
  /** The mean of the texts' embeddings, [1, 77, d] (what edit directions are made of), instead of one per text. */
  mean?: boolean;
}

/** A CLIP text encoder and the backend it runs on. Free it with {@link Pix2PixZeroTextEmbedder.dispose}. */
export class Pix2PixZeroTextEmbedder {
  private readonly embedder: ClipTextEmbedder;

  private constructor(
    /** The folders read. */
    readonly folder: ClipTextFolder,
    readonly backend: BackendInfo,
    readonly encoder: ClipTextEncoder,
  ) {
    this.embedder = new ClipTextEmbedder(encoder);
  }

  /**
   * Checks the pipeline folder's text side (before the backend starts, so a wrong folder fails at once), starts
   * the backend and loads the tokenizer and text encoder. `Pix2PixZero.loadTextEmbedder` is the same.
   */
  static async load(options: Pix2PixZeroTextEmbedderLoadOptions = {}): Promise<Pix2PixZeroTextEmbedder> {
    const checkpoint = { ...options.checkpoint, onNotice: options.onNotice };
    return withModelFolder(options.model ?? defaultModel(), options.cacheDir ?? defaultCacheDir(), checkpoint, async (dir) => {
      const folder = readClipTextFolder(dir, { variant: options.variant, onNotice: options.onNotice });
      const backend = await initBackend({ backend: options.backend, nativeLogs: options.nativeLogs });
      return new Pix2PixZeroTextEmbedder(folder, backend, ClipTextEncoder.fromFolder(folder));
    });
  }

  /** The text encoder's layers (the most `clipSkip` may skip). */
  get numHiddenLayers(): number {
    return this.encoder.model.config.numHiddenLayers;
  }

  /**
   * The text encoder's `last_hidden_state` (or, with `clipSkip`, an earlier layer's, as diffusers' `clip_skip`)
   * for each text, [texts.length, 77, d], or with `mean` their mean, [1, 77, d]. The caller disposes it.
   */
  async embed(texts: readonly string[], options: Pix2PixZeroEmbedOptions = {}): Promise<tf.Tensor3D> {
    const { mean, ...rest } = options;
    return mean === true ? this.embedder.meanEmbedding(texts, rest) : this.embedder.embed(texts, rest);
  }

  /** Frees the text encoder's weights. */
  dispose(): void {
    this.encoder.dispose();
  }
}
