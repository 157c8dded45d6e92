/**
 * `Pix2PixZero`: the facade over the editing services. Load a Stable Diffusion folder (and optionally a BLIP
 * folder for captions), then `caption`, `direction`, `invert` and `edit`. Inversions and directions are reusable
 * artefacts: invert an image once, edit it with many directions; compute a direction once, apply it to many
 * images. Every long call takes `onProgress` and an `AbortSignal` and frees its tensors when done.
 *
 * ```ts
 * const p2p = await Pix2PixZero.load({ model: 'converted_models/tiny-sd' });
 * const dir = await p2p.direction('cat', 'dog');
 * const result = await p2p.edit('cat.png', dir, { caption: 'a cat sitting on a sofa' });
 * await writePng('dog.png', result.image);
 * ```
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { Container } from 'inversify';
import { type BackendChoice, type BackendInfo, initBackend } from './backend.js';
import { createContainer } from './container.js';
import { componentFingerprint } from './io/fingerprint.js';
import { type PrepareOptions, type RgbImage, imageToTensor, prepareImage, readImage, tensorToImage } from './io/image.js';
import { type StableDiffusionFolder, readStableDiffusionFolder } from './io/model-folder.js';
import { defaultModel } from './paths.js';
import { type CheckpointModelOptions, withModelFolder } from './models/checkpoint/cache.js';
import { TorchGenerator } from './random/torch-generator.js';
import { Pix2PixZeroCaptioner, type Pix2PixZeroCaptionerLoadOptions } from './pix2pix-zero-captioner.js';
import { Pix2PixZeroTextEmbedder, type Pix2PixZeroTextEmbedderLoadOptions } from './pix2pix-zero-text-embedder.js';
import { assertDdimSteps } from './schedulers/step-limit.js';
import { SETTINGS } from './settings.js';
import { assertFiniteValues } from './io/finite.js';
import { MAX_ARTEFACT_ABS, loadDirection, loadInversion, saveDirection, saveInversion, type DirectionMeta, type InversionMeta } from './editing/artefacts.js';
import { assertRegularizable } from './editing/noise-regularization.js';
import { type ModelPorts, loadModelPorts } from './editing/adapters.js';
import { type CaptionOptions, blipCaptionerFactory } from './editing/captioner.js';
import { defaultCacheDir } from './editing/direction-discovery.js';
import { directInversion } from './editing/direct-inversion.js';
import { assertBlendDilation, assertBlendStart, assertBlendThreshold, localBlend, wordTokenPositions } from './editing/local-blend.js';
import { isAttribute } from './editing/sentence-generator.js';
import { chainStepEndHooks } from './editing/step-end-hooks.js';
import { overlayOutsideMask } from './editing/overlay.js';
import type { AutoencoderPort } from './editing/ports.js';
import {
  type Captioner,
  type Concept,
  type DirectionDiscovery,
  type GuidedSamplerOptions,
  type GuidedSampler,
  type InverterOptions,
  type Inverter,
  type LongCallOptions,
  type TextEmbedder,
  type StepEndHook,
  TYPES,
  throwIfAborted,
} from './editing/services.js';

/** The BLIP folder to use: the one given, else the pipeline folder's own `captioner/` if present. */
function captionerFolder(modelDir: string, given: string | false | undefined): string | undefined {
  if (given === false) return undefined;
  if (given !== undefined) return given;
  const own = path.join(modelDir, 'captioner');
  return fs.existsSync(path.join(own, 'config.json')) || fs.existsSync(path.join(own, 'model.json')) ? own : undefined;
}

/** Options of {@link Pix2PixZero.load}. */
export interface Pix2PixZeroLoadOptions {
  /**
   * A diffusers Stable Diffusion pipeline folder, or a single-file SD 1.x/2.x checkpoint (`*.safetensors` in the
   * original layout: converted once to a diffusers folder under the cache, see `checkpoint`). Default: the shipped model.
   */
  model?: string;
  /** How a single-file checkpoint given as `model` is converted (its prediction type, EMA weights, another architecture's configs). */
  checkpoint?: CheckpointModelOptions;
  /**
   * The weights variant to read, as diffusers' `variant=` (`fp16`: `*.fp16.safetensors`, sharded variant indexes
   * too; components without it read their plain weights). Default: the plain weights, else the only variant a
   * folder has (said through `onNotice`).
   */
  variant?: string;
  /**
   * A transformers BLIP captioning folder (default: the model folder's `captioner/`, if it has one; `false`: none).
   * Without a captioner, calls need a `caption`. It is loaded on the first caption.
   */
  captioner?: string | false;
  /**
   * How the captioner writes captions (default: the authors' settings, `AUTHORS_CAPTION_OPTIONS`: prefix
   * "a picture of" stripped, 3 beams, 10 to 30 tokens).
   */
  captionOptions?: CaptionOptions;
  /** The tfjs backend (default: `$PIX2PIX_ZERO_BACKEND`, else the best present). */
  backend?: BackendChoice;
  /** Let native TensorFlow's own start-up log lines reach stderr (default false; the CLI's `--debug`). */
  nativeLogs?: boolean;
  /** Where mean sentence embeddings are cached (default `$PIX2PIX_ZERO_CACHE` or `~/.cache/pix2pix-zero`); `false` turns it off. */
  cacheDir?: string | false;
  /**
   * Free the captioner after each caption and the text encoder before the UNet's work (an inversion or an edit
   * embeds its prompts first), reading them again from their folders when next needed (default false: keep every
   * model loaded, for many edits in one process). For one edit of a full-size model this keeps their 1.3 GB (BLIP
   * base 0.9 GB, CLIP ViT-L/14 0.5 GB) out of the UNet's peak; a reload costs a read of their weights (a few
   * seconds). The CLI sets it.
   */
  releaseAfterUse?: boolean;
  /**
   * Told what was decided for the caller (one line each): generated sentences standing in for a concept without
   * a bank, a folder read in its fp16 variant. The CLI prints them on stderr. Default: nobody.
   */
  onNotice?: (message: string) => void;
}

/** An image given to the facade: a file path, decoded RGB, or a [1, H, W, 3] tensor in [-1, 1] of the model's size. */
export type ImageInput = string | RgbImage | tf.Tensor4D;

/** Options of {@link Pix2PixZero.invert} (the facade; the inverter service's are `InverterOptions`). */
export interface Pix2PixZeroInvertOptions extends InverterOptions {
  /** The caption; written by the captioner when omitted. */
  caption?: string;
  /** Image size and fit (default: the model's own size, 512 for SD 1.x, as diffusers; stretched as the authors). */
  size?: PrepareOptions['size'];
  fit?: PrepareOptions['fit'];
  /** `mean` (default, deterministic) or `sample` of the VAE posterior (seeded by `seed`). */
  vaeEncode?: 'mean' | 'sample';
}

/** @deprecated use {@link Pix2PixZeroInvertOptions} (the same options, named for the facade). */
export type InvertOptions = Pix2PixZeroInvertOptions;

/** Options of {@link Pix2PixZero.edit} (the facade; the guided sampler's are `GuidedSamplerOptions`). */
export interface Pix2PixZeroEditOptions extends GuidedSamplerOptions, Omit<Pix2PixZeroInvertOptions, keyof LongCallOptions> {
  /** The negative prompt (default: the caption, as the authors, so the reference pass reconstructs the input). */
  negativePrompt?: string;
  /** Multiplies the direction (the authors' "edit multiplier", default 1). */
  directionScale?: number;
  /** Also decode the reference pass (the reconstruction). Default true. */
  reconstruction?: boolean;
  /**
   * Direct Inversion (Ju et al., PnPInversion): keep the reference pass on the inversion trajectory and add the
   * same correction to the edit after every step, so the reconstruction is the VAE round trip of the input and
   * the edit does not inherit the inversion's drift. No extra UNet call; needs an inversion with its trajectory
   * (any made by this version). Default false. A caller's `onStepEnd` runs after it.
   */
  directInversion?: boolean;
  /**
   * Local blending (Prompt-to-Prompt's `LocalBlend`): after every step the edit keeps the reference pass's latent
   * outside a mask made from the reference pass's attention to the words naming the edited object, so the
   * background and the other objects stay. `true` takes the direction's source concept as the word (and, for an
   * attribute such as a colour, the word after it in the caption: "red ball"); `words` names others; `threshold`
   * (default 0.3) sets the mask's extent. No extra UNet call. When the caption names none of the words, the edit
   * runs without it and the load options' `onNotice` is told. A concept given by a sentence file is named by the
   * file's name (`cat.txt`: "cat"). Default: off.
   */
  localBlend?: boolean | LocalBlendSettings;
}

/** The settings of {@link Pix2PixZeroEditOptions.localBlend}. */
export interface LocalBlendSettings {
  /** The words naming the edited object in the caption (default: the direction's source concept). */
  readonly words?: readonly string[];
  /** Where the normalised map exceeds this the edit is kept (default `SETTINGS.blendThreshold`, 0.3). */
  readonly threshold?: number;
  /**
   * The mask's reach past the attention, in latent pixels (default Prompt-to-Prompt's: max(1, round(latent side /
   * 16)); 0 when every word is an attribute: a colour or material edit keeps the thing's outline); 0: none.
   */
  readonly dilation?: number;
  /**
   * The fraction of the first steps left unblended (Prompt-to-Prompt's `start_blend`, 0.2 in its notebook): the new
   * object forms freely before the mask holds the rest. Default `SETTINGS.blendStart` (0: every step is blended).
   */
  readonly start?: number;
  /**
   * After decoding, put the input image's own pixels back outside the last step's mask (resized bilinearly to the
   * image; as inpainting pipelines' `apply_overlay`): the background is then the input's pixels, not their VAE round
   * trip. Needs the image: the source is the image, or an inversion made by this version (it keeps the image, in
   * memory and in its file). Default false.
   */
  readonly overlay?: boolean;
}

/** @deprecated use {@link Pix2PixZeroEditOptions} (the same options, named for the facade). */
export type EditCallOptions = Pix2PixZeroEditOptions;

/**
 * An inverted image: x_T with its caption and settings, and the whole inversion trajectory z_0..z_T (T + 1
 * latents; absent in files saved by earlier versions) that Direct Inversion walks. Reusable for many edits;
 * save it with {@link save}.
 */
export class Inversion {
  constructor(
    readonly latent: tf.Tensor4D,
    readonly meta: InversionMeta,
    readonly trajectory?: readonly tf.Tensor4D[],
    /**
     * The input image as the model saw it ([1, H, W, 3] in [-1, 1]), kept by {@link Pix2PixZero.invert} and in saved
     * files for local blending's overlay (files of earlier versions have none).
     */
    readonly image?: tf.Tensor4D,
  ) {}
  /** The caption the image was inverted with. */
  get caption(): string {
    return this.meta.caption;
  }
  /** Saves it as safetensors (`latent`, `trajectory` and `image` when present, and metadata). */
  save(file: string): void {
    saveInversion(file, this.latent, this.meta, this.trajectory, 'inversion', this.image);
  }
  /** Loads an inversion saved by {@link save} (or by an earlier version, without a trajectory). */
  static load(file: string): Inversion {
    const { latent, meta, trajectory, image } = loadInversion(file);
    return new Inversion(latent, meta, trajectory, image);
  }
  dispose(): void {
    tf.dispose([...new Set([this.latent, ...(this.trajectory ?? []), ...(this.image !== undefined ? [this.image] : [])])]);
  }
}

/** An edit direction in text-embedding space, [1, 77, d]. Scale and add them to compose edits. */
export class Direction {
  constructor(
    readonly tensor: tf.Tensor3D,
    readonly meta: DirectionMeta,
  ) {}
  /** This direction times `k` (a new direction). */
  scaled(k: number): Direction {
    if (!Number.isFinite(k)) throw new Error(`direction scale must be a finite number, got ${k}`);
    return new Direction(tf.mul(this.tensor, k) as tf.Tensor3D, { ...this.meta, target: `${k}*(${this.meta.target})` });
  }
  /** The sum of two directions (both edits at once; a new direction). */
  plus(other: Direction): Direction {
    if (!this.tensor.shape.every((d, i) => d === other.tensor.shape[i])) {
      throw new Error(`cannot add directions of shapes [${this.tensor.shape.join(', ')}] and [${other.tensor.shape.join(', ')}]`);
    }
    if (this.meta.model !== undefined && other.meta.model !== undefined && this.meta.model !== other.meta.model) {
      throw new Error(`cannot add directions of two text encoders (${this.meta.model} and ${other.meta.model})`);
    }
    return new Direction(tf.add(this.tensor, other.tensor) as tf.Tensor3D, {
      source: `${this.meta.source} + ${other.meta.source}`,
      target: `${this.meta.target} + ${other.meta.target}`,
      model: this.meta.model,
    });
  }
  save(file: string): void {
    saveDirection(file, this.tensor, this.meta);
  }
  /** Loads a direction, checking it fits `tokens` x `width` embeddings when given. */
  static load(file: string, expect?: { tokens: number; width: number }): Direction {
    const { direction, meta } = loadDirection(file, expect);
    return new Direction(direction, meta ?? { source: '?', target: '?' });
  }
  dispose(): void {
    this.tensor.dispose();
  }
}

/** What {@link Pix2PixZero.edit} returns. */
export interface EditResult {
  /** The edited image. */
  image: RgbImage;
  /** The reference pass's image (the input reconstructed), unless turned off. */
  reconstruction?: RgbImage;
  /** The caption used. */
  caption: string;
  /** The inversion used (reuse it for more edits; the caller disposes it). */
  inversion: Inversion;
  /** The edited x_0 latents [1, h, w, c] (the caller disposes them). */
  latents: tf.Tensor4D;
}

export class Pix2PixZero {
  private constructor(
    readonly folder: StableDiffusionFolder,
    readonly backend: BackendInfo,
    readonly container: Container,
    private readonly ports: ModelPorts,
    private readonly unetFingerprint: string,
    private readonly textEncoderFingerprint: string,
    private readonly onNotice?: (message: string) => void,
  ) {}

  /** Loads a Stable Diffusion pipeline folder (and a BLIP folder, if given) on the chosen backend. */
  static async load(options: Pix2PixZeroLoadOptions = {}): Promise<Pix2PixZero> {
    const backend = await initBackend({ backend: options.backend, nativeLogs: options.nativeLogs });
    const model = options.model ?? defaultModel();
    const cacheDir = options.cacheDir ?? defaultCacheDir();
    return withModelFolder(model, cacheDir, { ...options.checkpoint, onNotice: options.onNotice }, (dir) => Pix2PixZero.loadFolder(dir, backend, options, cacheDir));
  }

  /**
   * A BLIP captioner alone, without a Stable Diffusion model (`pix2pix-zero caption`): the folder checked, the
   * backend started, the model loaded.
   */
  static loadCaptioner(options: Pix2PixZeroCaptionerLoadOptions): Promise<Pix2PixZeroCaptioner> {
    return Pix2PixZeroCaptioner.load(options);
  }

  /**
   * A pipeline folder's CLIP tokenizer and text encoder alone, without the UNet and the VAE (`pix2pix-zero embed`):
   * the folder checked, the backend started, the text encoder loaded.
   */
  static loadTextEmbedder(options: Pix2PixZeroTextEmbedderLoadOptions = {}): Promise<Pix2PixZeroTextEmbedder> {
    return Pix2PixZeroTextEmbedder.load(options);
  }

  private static async loadFolder(dir: string, backend: BackendInfo, options: Pix2PixZeroLoadOptions, cacheDir: string | false): Promise<Pix2PixZero> {
    const folder = readStableDiffusionFolder(dir, { variant: options.variant, onNotice: options.onNotice });
    const releaseAfterUse = options.releaseAfterUse === true;
    const ports = await loadModelPorts(folder, {
      captioner: captionerFolder(folder.dir, options.captioner),
      captionerFactory: (dir) => blipCaptionerFactory(dir, options.captionOptions, releaseAfterUse),
      releaseAfterUse,
    });
    const textEncoderFingerprint = componentFingerprint(folder.textEncoder);
    const container = createContainer({
      textEmbedder: ports.textEmbedder,
      captioner: ports.captioner,
      denoiser: ports.denoiser,
      schedulerConfig: folder.schedulerConfig,
      directionSettings: { modelId: textEncoderFingerprint, cacheDir, onNotice: options.onNotice },
    });
    return new Pix2PixZero(folder, backend, container, ports, componentFingerprint(folder.unet), textEncoderFingerprint, options.onNotice);
  }

  private get embedder(): TextEmbedder {
    return this.container.get<TextEmbedder>(TYPES.TextEmbedder);
  }
  private get vae(): AutoencoderPort {
    return this.ports.vae;
  }

  /** The text embeddings' [tokens, width]. */
  get embeddingShape(): { tokens: number; width: number } {
    return this.ports.embeddingShape;
  }

  /** Reads and prepares an image as the model's input tensor [1, H, W, 3] in [-1, 1]. */
  async prepare(image: ImageInput, options: Pick<Pix2PixZeroInvertOptions, 'size' | 'fit'> = {}): Promise<tf.Tensor4D> {
    if (image instanceof tf.Tensor) return tf.clone(image);
    const rgb = typeof image === 'string' ? await readImage(image) : image;
    return imageToTensor(prepareImage(rgb, { size: options.size ?? this.ports.defaultImageSize, fit: options.fit ?? SETTINGS.fit.default }));
  }

  /** The BLIP caption of an image. Needs a captioner folder at load time. */
  async caption(image: ImageInput, options: LongCallOptions = {}): Promise<string> {
    if (!this.container.isBound(TYPES.Captioner)) {
      throw new Error('no captioner loaded: pass a BLIP folder (captioner option / --captioner) or give the caption yourself');
    }
    const captioner = this.container.get<Captioner>(TYPES.Captioner);
    const rgb = typeof image === 'string' ? await readImage(image) : image instanceof tf.Tensor ? tensorToImage(image) : image;
    const t = tf.tensor3d(Float32Array.from(rgb.data), [rgb.height, rgb.width, 3]);
    try {
      return await captioner.caption(t, options);
    } finally {
      t.dispose();
    }
  }

  /** The edit direction from `source` to `target` (concept words with built-in banks, or sentences). */
  async direction(source: Concept, target: Concept, options: LongCallOptions = {}): Promise<Direction> {
    const dd = this.container.get<DirectionDiscovery>(TYPES.DirectionDiscovery);
    const t = await dd.direction(source, target, options);
    const name = (c: Concept): string => (typeof c === 'string' ? c : c.name);
    return new Direction(t, { source: name(source), target: name(target), model: this.textEncoderFingerprint });
  }

  /** Inverts an image to noise (x_T), with its caption (written by the captioner if not given). */
  async invert(image: ImageInput, options: Pix2PixZeroInvertOptions = {}): Promise<Inversion> {
    const { inversion, prompts } = await this.invertImage(image, options, []);
    tf.dispose(prompts);
    return inversion;
  }

  /**
   * {@link invert}, also embedding the caption followed by `extraPrompts` before the UNet's work (the caption's
   * embedding first, then one per extra prompt; the caller disposes them), so that with `releaseAfterUse` the text
   * encoder is freed once, before the inversion, and an edit needs no second load of it.
   */
  private async invertImage(image: ImageInput, options: Pix2PixZeroInvertOptions, extraPrompts: readonly string[]): Promise<{ inversion: Inversion; prompts: tf.Tensor3D[] }> {
    const steps = options.steps ?? SETTINGS.steps.default;
    assertDdimSteps(this.folder.schedulerConfig, steps);
    const input = await this.prepare(image, options);
    let latents: tf.Tensor4D | undefined;
    let kept = false;
    const prompts: tf.Tensor3D[] = [];
    try {
      const [, h, w] = input.shape;
      const down = this.vae.downscale;
      assertRegularizable(Math.floor(h / down), Math.floor(w / down), options, `a ${w}x${h} image (${down}x smaller latents)`);
      const caption = options.caption ?? (await this.caption(tensorToImage(input), { signal: options.signal, onProgress: options.onProgress }));
      throwIfAborted(options.signal);
      for (const prompt of [caption, ...extraPrompts]) prompts.push(await this.embedder.embed([prompt], { signal: options.signal }));
      await this.ports.releaseTextEncoder();
      const mode = options.vaeEncode ?? SETTINGS.vaeEncode.default;
      options.onProgress?.({ phase: 'encode', step: 0, total: 1 });
      // One generator for the posterior sample and then the roll shifts, as diffusers' invert(generator=...).
      const generator = new TorchGenerator(options.seed ?? SETTINGS.seed.default);
      latents = tf.tidy(() => this.vae.encode(input, mode, generator));
      throwIfAborted(options.signal);
      options.onProgress?.({ phase: 'encode', step: 1, total: 1 });
      const inverter = this.container.get<Inverter>(TYPES.Inverter);
      const trajectory = await inverter.invert(latents, prompts[0]!, { ...options, shifts: options.shifts ?? generator });
      const latent = trajectory[trajectory.length - 1]!;
      try {
        assertFiniteValues(latent.dataSync(), 'the inversion', MAX_ARTEFACT_ABS);
      } catch (err) {
        tf.dispose(trajectory);
        throw new Error(`${(err as Error).message}: the inversion diverged; try fewer regularisation steps, smaller lambdas or a larger image`);
      }
      const inversion = new Inversion(latent, {
        caption,
        steps,
        imageSize: [h, w],
        model: this.unetFingerprint,
        settings: {
          vaeEncode: mode,
          seed: options.seed ?? SETTINGS.seed.default,
          numRegSteps: options.numRegSteps ?? SETTINGS.numRegSteps.default,
          numAutoCorrRolls: options.numAutoCorrRolls ?? SETTINGS.numAutoCorrRolls.default,
          lambdaAc: options.lambdaAc ?? SETTINGS.lambdaAc.default,
          lambdaKl: options.lambdaKl ?? SETTINGS.lambdaKl.default,
          minShift: options.minShift ?? SETTINGS.minShift.default,
        },
      }, trajectory, input);
      kept = true;
      return { inversion, prompts };
    } catch (err) {
      tf.dispose(prompts);
      throw err;
    } finally {
      tf.dispose(kept ? [latents] : [input, latents]);
    }
  }

  /**
   * Edits an image (inverting it first) or an existing inversion along `direction`. The reference and edit
   * passes run in lock-step; the result never comes back silently blank: NaNs are an error.
   */
  async edit(source: ImageInput | Inversion, direction: Direction, options: Pix2PixZeroEditOptions = {}): Promise<EditResult> {
    const expected = this.embeddingShape;
    const [, tokens, width] = direction.tensor.shape;
    if (tokens !== expected.tokens || width !== expected.width) {
      throw new Error(`the direction is [1, ${tokens}, ${width}] but this model's text embeddings are [1, ${expected.tokens}, ${expected.width}]`);
    }
    if (direction.meta.model !== undefined && direction.meta.model !== this.textEncoderFingerprint) {
      throw new Error(`the direction was made with another text encoder (${direction.meta.model}, this model's is ${this.textEncoderFingerprint}): compute it again with this model`);
    }
    const blend = options.localBlend === true ? {} : options.localBlend === false ? undefined : options.localBlend;
    if (blend?.threshold !== undefined) assertBlendThreshold(blend.threshold);
    if (blend?.dilation !== undefined) assertBlendDilation(blend.dilation);
    if (blend?.start !== undefined) assertBlendStart(blend.start);
    if (blend?.words !== undefined && (blend.words.length === 0 || blend.words.some((w) => typeof w !== 'string' || w.trim() === ''))) {
      throw new Error(`localBlend.words must be non-empty words, got ${JSON.stringify(blend.words)}`);
    }
    if (blend?.overlay !== undefined && typeof blend.overlay !== 'boolean') throw new Error(`localBlend.overlay must be true or false, got ${JSON.stringify(blend.overlay)}`);
    const overlay = blend?.overlay === true;
    if (overlay && source instanceof Inversion && source.image === undefined) {
      throw new Error(
        'localBlend.overlay puts the input image\'s pixels back outside the mask, and this inversion does not have them (saved by an earlier version): edit the image itself, or invert it again',
      );
    }
    if (options.directInversion === true) {
      if (source instanceof Inversion && source.trajectory === undefined) {
        throw new Error(
          'Direct Inversion needs the inversion trajectory (z_0..z_T), and this inversion has only x_T (saved by an earlier version): invert the image again to edit it with Direct Inversion, or edit without it',
        );
      }
    }
    if (source instanceof Inversion) this.checkInversion(source, options.steps);
    const ownInversion = !(source instanceof Inversion);
    const extra = options.negativePrompt === undefined ? [] : [options.negativePrompt];
    // The caption's (and the negative prompt's) embeddings: made with the inversion's, before the UNet's work.
    const { inversion, prompts } = source instanceof Inversion ? { inversion: source, prompts: await this.embedPrompts([source.caption, ...extra], options.signal) } : await this.invertImage(source, options, extra);
    const input = overlay ? inversion.image : undefined;
    // The last blended step's mask (latent pixels, host copy), for the overlay.
    let lastMask: { data: Float32Array; shape: [number, number, number, number] } | undefined;
    try {
      const caption = inversion.caption;
      const c = prompts[0]!;
      const negative = prompts[1] ?? tf.clone(c);
      const delta = options.directionScale !== undefined ? (tf.mul(direction.tensor, options.directionScale) as tf.Tensor3D) : tf.clone(direction.tensor);
      let latents: { edited: tf.Tensor4D; reconstruction: tf.Tensor4D };
      try {
        const sampler = this.container.get<GuidedSampler>(TYPES.GuidedSampler);
        // An inversion is walked back over its own timesteps: the step count is the inversion's.
        const steps = inversion.meta.steps;
        const trajectory = inversion.trajectory;
        const hooks: StepEndHook[] = [];
        let noise = inversion.latent;
        if (options.directInversion === true && trajectory !== undefined) {
          if (trajectory.length !== steps + 1) throw new Error(`Direct Inversion: the inversion has ${trajectory.length} trajectory latents for ${steps} steps (expected ${steps + 1})`);
          noise = trajectory[steps]!;
          hooks.push(directInversion(trajectory));
        }
        if (blend !== undefined) {
          // A concept given by a sentence file is named by its path: its word is the file's name.
          const words = blend.words ?? [path.basename(direction.meta.source, path.extname(direction.meta.source))];
          const tokens = await this.blendTokens(caption, words, expected.tokens);
          // An attribute edit (a colour, a material) keeps the thing's outline: its mask needs no room for a new one.
          const dilation = blend.dilation ?? (words.every((w) => isAttribute(w.trim())) ? 0 : undefined);
          const onMask = overlay ? (_step: number, mask: tf.Tensor4D): void => void (lastMask = { data: (mask.dataSync() as Float32Array).slice(), shape: mask.shape }) : undefined;
          if (tokens.length > 0) hooks.push(localBlend({ tokens, threshold: blend.threshold, dilation, start: blend.start, onMask }));
          else this.onNotice?.(`local blending: the caption '${caption}' names none of ${words.map((w) => `'${w}'`).join(', ')}: edited without it (name the object with localBlend.words, --blend-words)`);
        }
        if (options.onStepEnd !== undefined) hooks.push(options.onStepEnd);
        const onStepEnd = hooks.length === 0 ? undefined : chainStepEndHooks(...hooks);
        latents = await sampler.sample(noise, { caption: c, negative, direction: delta }, { ...options, steps, onStepEnd });
      } finally {
        tf.dispose([c, negative, delta]);
      }
      try {
        options.onProgress?.({ phase: 'decode', step: 0, total: 1 });
        throwIfAborted(options.signal);
        const image = this.decode(latents.edited, 'edited image', input !== undefined && lastMask !== undefined ? { input, mask: lastMask } : undefined);
        throwIfAborted(options.signal);
        const reconstruction = options.reconstruction === false ? undefined : this.decode(latents.reconstruction, 'reconstruction');
        options.onProgress?.({ phase: 'decode', step: 1, total: 1 });
        throwIfAborted(options.signal);
        return { image, reconstruction, caption, inversion, latents: latents.edited };
      } catch (err) {
        latents.edited.dispose();
        throw err;
      } finally {
        latents.reconstruction.dispose();
      }
    } catch (err) {
      if (ownInversion) inversion.dispose();
      throw err;
    }
  }

  /**
   * The caption's token positions (0 = the start token, below `maxPositions`) of each of `words`; for an attribute
   * word (a colour, material or pattern), of the caption word after it instead (the thing it is said of: an
   * attribute's own attention spreads over the whole image).
   */
  private async blendTokens(caption: string, words: readonly string[], maxPositions: number): Promise<number[]> {
    const embedder = this.embedder;
    if (embedder.tokenize === undefined) throw new Error('local blending needs a text embedder that can tokenize (the injected one cannot)');
    const captionTokens = await embedder.tokenize(caption);
    const found = new Set<number>();
    for (const word of words) {
      const positions = wordTokenPositions(captionTokens, await embedder.tokenize(word), { nextOnly: isAttribute(word.trim()), maxPositions });
      for (const p of positions) found.add(p);
    }
    return [...found].sort((a, b) => a - b);
  }

  /** Embeddings of each prompt ([1, 77, d] each; the caller disposes them), then the text encoder released. */
  private async embedPrompts(texts: readonly string[], signal: AbortSignal | undefined): Promise<tf.Tensor3D[]> {
    const out: tf.Tensor3D[] = [];
    try {
      for (const t of texts) out.push(await this.embedder.embed([t], { signal }));
      await this.ports.releaseTextEncoder();
      return out;
    } catch (err) {
      tf.dispose(out);
      throw err;
    }
  }

  /** Refuses an inversion this model cannot edit: another UNet, other latents, or other steps than asked for. */
  private checkInversion(inversion: Inversion, steps: number | undefined): void {
    const { meta, latent } = inversion;
    if (steps !== undefined && steps !== meta.steps) {
      throw new Error(`the inversion was made with ${meta.steps} steps; edit it with the same number (got steps ${steps}), or invert again`);
    }
    if (meta.model !== this.unetFingerprint) {
      throw new Error(`the inversion was made with another model (UNet ${meta.model}, this one is ${this.unetFingerprint})`);
    }
    const [, lh, lw, c] = latent.shape;
    const down = this.vae.downscale;
    if (c !== this.ports.denoiser.latentChannels || meta.imageSize[0] !== lh * down || meta.imageSize[1] !== lw * down) {
      throw new Error(
        `the inversion's ${lh}x${lw}x${c} latent does not fit its image size ${meta.imageSize.join('x')} with this model (${this.ports.denoiser.latentChannels} channels, ${down}x downscale)`,
      );
    }
    assertDdimSteps(this.folder.schedulerConfig, meta.steps);
  }

  /** Decodes latents to an image; with `overlay`, the input's pixels outside the (latent-sized) mask. */
  private decode(latents: tf.Tensor4D, what: string, overlay?: { input: tf.Tensor4D; mask: { data: Float32Array; shape: [number, number, number, number] } }): RgbImage {
    const img = tf.tidy(() => {
      const decoded = this.vae.decode(latents);
      return overlay === undefined ? decoded : overlayOutsideMask(decoded, overlay.input, tf.tensor4d(overlay.mask.data, overlay.mask.shape));
    });
    try {
      const out = tensorToImage(img);
      if (out.nanCount > 0) throw new Error(`the ${what} has ${out.nanCount} non-finite values: the model or settings are numerically broken (try the float32 weights or fewer guidance)`);
      return out;
    } finally {
      img.dispose();
    }
  }

  /** Frees every model's weights. */
  dispose(): void {
    this.ports.dispose();
  }
}
