/**
 * The BLIP captioner: the {@link Captioner} service on transformers' `BlipForConditionalGeneration`, with
 * `BlipProcessor`'s preprocessing, `generate()`'s greedy or beam search, and the folder's BERT tokenizer.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { RgbImage } from '../io/image.js';
import { readBlipFolder } from '../io/model-folder.js';
import { type GenerateOptions, generateCaptionIds } from '../models/blip/generate.js';
import { BlipForConditionalGeneration } from '../models/blip/model.js';
import { type BlipImageProcessorConfig, blipPixelValues, parseBlipImageProcessorConfig, tensorToRgb } from '../models/blip/processor.js';
import { SETTINGS } from '../settings.js';
import { BertTokenizer } from '../tokenizers/bert-tokenizer.js';
import { type Captioner, type LongCallOptions, throwIfAborted } from './services.js';

/** Options of one caption: generation settings, a text prefix, progress and cancellation. */
export interface CaptionOptions extends LongCallOptions, GenerateOptions {
  /**
   * A text the caption continues (BLIP's conditional captioning, e.g. "a picture of"); the caption then starts
   * with it, as transformers decodes it.
   */
  readonly prompt?: string;
  /** Drop the prompt from the returned caption (LAVIS does, transformers does not; default false). */
  readonly stripPrompt?: boolean;
}

/**
 * The authors' caption settings (LAVIS `blip_caption` as pix2pix-zero calls it): the prefix "a picture of",
 * stripped from the result, beam search with 3 beams, at least 10 and at most 30 tokens. The facade's default;
 * the values are `SETTINGS.caption` (lib/settings.ts).
 */
export const AUTHORS_CAPTION_OPTIONS: CaptionOptions = Object.freeze({ ...SETTINGS.caption });

/** A caption and the token ids it was decoded from (prompt included, as `generate()` returns them). */
export interface CaptionResult {
  readonly caption: string;
  readonly ids: readonly number[];
}

/**
 * The caption of generated `ids` (prompt included): the whole sequence decoded as transformers decodes it, and with
 * `stripPrompt` the prompt's own text cut from its start, as the authors' code (LAVIS) and diffusers' users do.
 * Decoding the generated tokens alone is not the same when the first of them continues the prompt's last word (a
 * WordPiece `##` piece: "a picture of" + "##zyn" is "a picture ofzyn", so the caption is "zyn", not "##zyn"). When
 * the text does not start with the prompt's, it is returned whole.
 */
export function captionText(tokenizer: BertTokenizer, ids: readonly number[], promptLength: number, stripPrompt: boolean): string {
  const text = tokenizer.decode(ids).trim();
  if (!stripPrompt) return text;
  const prompt = tokenizer.decode(ids.slice(0, promptLength)).trim();
  return text.startsWith(prompt) ? text.slice(prompt.length).trim() : text;
}

/**
 * Captions images with a BLIP model. Build it with {@link BlipCaptioner.load}; free it with {@link dispose}.
 * Without options a caption is `generate()`'s default: greedy, at most 20 tokens.
 */
export class BlipCaptioner implements Captioner {
  private disposed = false;

  constructor(
    readonly model: BlipForConditionalGeneration,
    readonly tokenizer: BertTokenizer,
    readonly processor: BlipImageProcessorConfig,
    /** Generation settings used where a call gives none. */
    readonly defaults: CaptionOptions = {},
  ) {}

  /** Loads a transformers BLIP captioning folder (config.json, model.safetensors, preprocessor and tokenizer files). */
  static load(dir: string, defaults: CaptionOptions = {}): BlipCaptioner {
    const folder = readBlipFolder(dir);
    const processor = parseBlipImageProcessorConfig(folder.preprocessorConfig, `${dir}/preprocessor_config.json`);
    const tokenizer = BertTokenizer.fromFiles(folder.tokenizer);
    const model = BlipForConditionalGeneration.fromFolder(folder.model);
    return new BlipCaptioner(model, tokenizer, processor, defaults);
  }

  /**
   * The caption of `image`: a [height, width, 3] tensor of RGB values in [0, 255], the {@link Captioner} contract
   * (values are rounded and clamped to bytes, as the PIL image transformers reads). The tensor is not disposed.
   */
  async caption(image: tf.Tensor3D, options: CaptionOptions = {}): Promise<string> {
    return (await this.captionImage(tensorToRgb(image, 'caption image'), options)).caption;
  }

  /** The caption of an 8-bit RGB image, with its token ids. */
  async captionImage(image: RgbImage, options: CaptionOptions = {}): Promise<CaptionResult> {
    if (this.disposed) throw new Error('BLIP captioner: used after dispose()');
    const o: CaptionOptions = { ...this.defaults, ...options };
    throwIfAborted(o.signal, 'caption aborted');
    const bos = this.model.config.text.bosTokenId;
    let promptIds = [bos];
    if (o.prompt !== undefined && o.prompt.trim() !== '') {
      // BLIP: the tokenizer's [CLS] becomes bos, and the final [SEP] is dropped.
      const ids = this.tokenizer.encode(o.prompt);
      promptIds = [bos, ...ids.slice(1, -1)];
    }
    const feats = tf.tidy(() => {
      const pixels = blipPixelValues(image, this.processor);
      return this.model.encodeImage(pixels);
    });
    try {
      o.onProgress?.({ phase: 'caption', step: 1, total: 2 });
      await Promise.resolve();
      throwIfAborted(o.signal, 'caption aborted');
      const ids = generateCaptionIds(this.model, feats, promptIds, o);
      o.onProgress?.({ phase: 'caption', step: 2, total: 2 });
      return { caption: captionText(this.tokenizer, ids, promptIds.length, o.stripPrompt === true), ids };
    } finally {
      feats.dispose();
    }
  }

  /** Frees the model's weights (later calls fail). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.model.disposeAll();
  }
}

/**
 * A captioner that loads its BLIP folder on first use, so a pipeline that ships a captioner costs nothing when
 * the caller gives the caption. With `releaseAfterUse` it frees the model after every caption and reads the folder
 * again for the next (a one-shot edit then never holds BLIP and the UNet's work at once).
 */
export class LazyBlipCaptioner implements Captioner {
  private inner: BlipCaptioner | undefined;
  private disposed = false;

  constructor(
    readonly dir: string,
    readonly defaults: CaptionOptions = AUTHORS_CAPTION_OPTIONS,
    readonly releaseAfterUse = false,
  ) {
    readBlipFolder(dir); // fail fast on a broken folder, without reading the weights
  }

  /** The loaded captioner (loading it now if needed). */
  get captioner(): BlipCaptioner {
    if (this.disposed) throw new Error('BLIP captioner: used after dispose()');
    this.inner ??= BlipCaptioner.load(this.dir, this.defaults);
    return this.inner;
  }

  /** The caption of `image`, [H, W, 3] RGB in [0, 255] (the {@link Captioner} contract). The tensor is not disposed. */
  async caption(image: tf.Tensor3D, options: CaptionOptions = {}): Promise<string> {
    try {
      return await this.captioner.caption(image, options);
    } finally {
      if (this.releaseAfterUse) this.release();
    }
  }

  /** Frees the model's weights if they were loaded; the next caption loads them again. */
  release(): void {
    this.inner?.dispose();
    this.inner = undefined;
  }

  /** Frees the model's weights if they were loaded; later captions fail. */
  dispose(): void {
    this.disposed = true;
    this.release();
  }
}

/**
 * The captioner factory the pipeline facade passes to `loadModelPorts` (`captionerFactory`); its captions follow
 * `defaults` (the authors' settings, {@link AUTHORS_CAPTION_OPTIONS}, unless given).
 */
export function blipCaptionerFactory(dir: string, defaults: CaptionOptions = AUTHORS_CAPTION_OPTIONS, releaseAfterUse = false): LazyBlipCaptioner {
  return new LazyBlipCaptioner(dir, defaults, releaseAfterUse);
}
