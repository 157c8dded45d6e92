/**
 * `ClipTextEmbedder`: the {@link TextEmbedder} service on Stable Diffusion's CLIP text encoder. Prompts become
 * `last_hidden_state` embeddings [n, 77, d]; a sentence bank becomes its mean embedding [1, 77, d], computed in
 * batches so that a bank of 1,000 sentences never holds more than one batch of activations.
 *
 * The text encoder is loaded on first use and kept until {@link ClipTextEmbedder.release} (or after every call
 * with `releaseAfterUse`), so that a pipeline can free it before loading the UNet.
 */
import 'reflect-metadata'; // the decorators below need it, also where the container is not loaded (the CLI)
import { inject, injectable, optional } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import { ClipTextEncoder } from '../models/clip-text/text-encoder.js';
import { defaultModel } from '../paths.js';
import { yieldToEventLoop } from './event-loop.js';
import { type LongCallOptions, type TextEmbedder, throwIfAborted } from './services.js';

/** Injection token of the embedder's {@link TextEncoderSource} (default: the shipped model). */
export const TEXT_ENCODER_SOURCE = Symbol.for('pix2pix-zero.TextEncoderSource');
/** Injection token of the embedder's {@link TextEmbedderOptions}. */
export const TEXT_EMBEDDER_OPTIONS = Symbol.for('pix2pix-zero.TextEmbedderOptions');

/**
 * Where the embedder's text encoder comes from: a Stable Diffusion pipeline folder, an already loaded
 * {@link ClipTextEncoder} (which the embedder then never frees), or a function that loads one (which the embedder
 * owns and frees).
 */
export type TextEncoderSource = string | ClipTextEncoder | (() => ClipTextEncoder | Promise<ClipTextEncoder>);

/** Defaults of a {@link ClipTextEmbedder}. */
export interface TextEmbedderOptions {
  /** Sentences encoded per forward pass (default 16). */
  batchSize?: number;
  /** diffusers' `clip_skip` (default 0: `last_hidden_state`). */
  clipSkip?: number;
  /** Free the text encoder at the end of every call (default false: keep it until `release()`). */
  releaseAfterUse?: boolean;
}

/** Per-call options: the long-call options plus overrides of {@link TextEmbedderOptions}. */
export interface EmbedOptions extends LongCallOptions {
  batchSize?: number;
  clipSkip?: number;
}

/** The default batch size. */
export const DEFAULT_BATCH_SIZE = 16;

function checkTexts(texts: readonly string[], what: string): void {
  if (!Array.isArray(texts) || texts.length === 0) throw new Error(`no ${what} to embed`);
  texts.forEach((t, i) => {
    if (typeof t !== 'string') throw new TypeError(`${what} ${i} is not a string (${typeof t})`);
  });
}

function checkBatchSize(n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new Error(`batchSize must be a positive integer, got ${n}`);
  return n;
}

@injectable()
export class ClipTextEmbedder implements TextEmbedder {
  private readonly source: TextEncoderSource;
  private readonly defaults: Required<TextEmbedderOptions>;
  private loading?: Promise<ClipTextEncoder>;
  /** The tokenizer of the last loaded encoder (no tensors: kept when the encoder is released). */
  private tokenizer?: ClipTextEncoder['tokenizer'];

  constructor(
    @inject(TEXT_ENCODER_SOURCE) @optional() source?: TextEncoderSource,
    @inject(TEXT_EMBEDDER_OPTIONS) @optional() options?: TextEmbedderOptions,
  ) {
    this.source = source ?? defaultModel();
    this.defaults = {
      batchSize: checkBatchSize(options?.batchSize ?? DEFAULT_BATCH_SIZE),
      clipSkip: options?.clipSkip ?? 0,
      releaseAfterUse: options?.releaseAfterUse ?? false,
    };
  }

  /** The text encoder, loading it on first use. */
  async encoder(): Promise<ClipTextEncoder> {
    if (this.loading === undefined) {
      const src = this.source;
      this.loading = Promise.resolve()
        .then(() => (typeof src === 'string' ? ClipTextEncoder.fromFolder(src) : typeof src === 'function' ? src() : src))
        .then((encoder) => {
          this.tokenizer = encoder.tokenizer;
          return encoder;
        });
      this.loading.catch(() => {
        this.loading = undefined; // a failed load can be retried
      });
    }
    return this.loading;
  }

  /** Frees the text encoder if the embedder loaded it; the next call loads it again. */
  async release(): Promise<void> {
    const loading = this.loading;
    this.loading = undefined;
    if (loading === undefined || this.source instanceof ClipTextEncoder) return;
    try {
      (await loading).dispose();
    } catch {
      // it never loaded: nothing to free
    }
  }

  /** The BPE tokens of `text` as the encoder reads them (without the start and end tokens, untruncated). */
  async tokenize(text: string): Promise<readonly string[]> {
    if (this.tokenizer === undefined) {
      await this.encoder();
      await this.afterCall();
    }
    return this.tokenizer!.tokenize(text);
  }

  /** Embeddings of `prompts`, [n, 77, d] (`last_hidden_state`, or clip-skipped). The caller disposes. */
  async embed(prompts: readonly string[], options: EmbedOptions = {}): Promise<tf.Tensor3D> {
    checkTexts(prompts, 'prompts');
    const parts: tf.Tensor3D[] = [];
    try {
      await this.forEachBatch(prompts, options, (out) => {
        parts.push(out);
        return false;
      });
      return parts.length === 1 ? parts.pop()! : tf.tidy(() => tf.concat(parts, 0));
    } finally {
      for (const p of parts) p.dispose();
      await this.afterCall();
    }
  }

  /**
   * The mean embedding of `sentences`, [1, 77, d]: each batch's embeddings are added, in sentence order and in
   * float64, to one running sum, so the result does not depend on the batch size. The caller disposes.
   */
  async meanEmbedding(sentences: readonly string[], options: EmbedOptions = {}): Promise<tf.Tensor3D> {
    checkTexts(sentences, 'sentences');
    let sum: Float64Array | undefined;
    let shape: [number, number] = [0, 0];
    try {
      await this.forEachBatch(sentences, options, (out) => {
        const [b, l, d] = out.shape;
        const values = out.dataSync();
        if (sum === undefined) {
          sum = new Float64Array(l * d);
          shape = [l, d];
        }
        for (let i = 0; i < b; i++) {
          const offset = i * l * d;
          for (let j = 0; j < l * d; j++) sum[j]! += values[offset + j]!;
        }
        return true;
      });
      const n = sentences.length;
      const mean = Float32Array.from(sum!, (v) => v / n);
      return tf.tensor3d(mean, [1, shape[0], shape[1]]);
    } finally {
      await this.afterCall();
    }
  }

  /**
   * Runs the encoder over `texts` in batches, handing each batch's [b, 77, d] output to `use`, which returns
   * whether the tensor may be freed. Checks the abort signal before each batch and reports progress after it.
   */
  private async forEachBatch(texts: readonly string[], options: EmbedOptions, use: (out: tf.Tensor3D) => boolean): Promise<void> {
    const batchSize = checkBatchSize(options.batchSize ?? this.defaults.batchSize);
    const clipSkip = options.clipSkip ?? this.defaults.clipSkip;
    throwIfAborted(options.signal);
    const encoder = await this.encoder();
    for (let start = 0; start < texts.length; start += batchSize) {
      throwIfAborted(options.signal);
      const batch = texts.slice(start, start + batchSize);
      const { lastHiddenState } = encoder.encode(batch, { clipSkip, pooled: false });
      let free = true;
      try {
        free = use(lastHiddenState);
      } finally {
        if (free) lastHiddenState.dispose();
      }
      options.onProgress?.({ phase: 'embed', step: start + batch.length, total: texts.length });
      // An abort or other work can come in between batches.
      if (start + batchSize < texts.length) await yieldToEventLoop();
    }
  }

  private async afterCall(): Promise<void> {
    if (this.defaults.releaseAfterUse) await this.release();
  }
}
