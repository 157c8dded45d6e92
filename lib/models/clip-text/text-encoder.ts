/**
 * `ClipTextEncoder`: Stable Diffusion's text side as one object, the CLIP tokenizer and text model of a pipeline
 * folder, turning prompts into the embeddings the UNet is conditioned on.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { type ComponentFolder, type TokenizerFiles, type WeightVariantOptions, readComponentFolder, readTokenizerFolder } from '../../io/model-folder.js';
import { configMaxLength } from '../../tokenizers/common.js';
import { ClipTokenizer } from '../../tokenizers/clip-tokenizer.js';
import { CLIPTextModel, type ClipTextEncodeOptions, type ClipTextOutput } from './model.js';

/** The text side of a Stable Diffusion pipeline folder. */
export interface ClipTextFolder {
  readonly dir: string;
  readonly textEncoder: ComponentFolder;
  readonly tokenizer: TokenizerFiles;
}

/**
 * Resolves the `text_encoder/` and `tokenizer/` folders of a diffusers Stable Diffusion pipeline folder (the
 * other components need not be there), the weights in `options.variant` if given (else the plain ones, else the
 * only variant there, which `options.onNotice` is told).
 * @throws Error saying which folder is missing or malformed.
 */
export function readClipTextFolder(dir: string, options: WeightVariantOptions = {}): ClipTextFolder {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`model folder not found: ${dir}`);
  const enc = path.join(dir, 'text_encoder');
  const tok = path.join(dir, 'tokenizer');
  if (!fs.existsSync(enc) || !fs.existsSync(tok)) {
    const missing = [enc, tok].filter((p) => !fs.existsSync(p)).map((p) => path.basename(p) + '/');
    throw new Error(`${dir} is not a Stable Diffusion pipeline folder: it has no ${missing.join(' and no ')} (the CLIP text encoder and its tokenizer)`);
  }
  return { dir, textEncoder: readComponentFolder(enc, 'text encoder', options), tokenizer: readTokenizerFolder(tok) };
}

/** A CLIP tokenizer and text model that belong together. */
export class ClipTextEncoder {
  private disposed = false;

  /** Takes ownership of `model` (freed by {@link dispose}). */
  constructor(
    readonly tokenizer: ClipTokenizer,
    readonly model: CLIPTextModel,
  ) {
    const maxPos = model.config.maxPositionEmbeddings;
    if (tokenizer.modelMaxLength > maxPos) {
      throw new Error(`the tokenizer pads to ${tokenizer.modelMaxLength} tokens but the text encoder has only ${maxPos} positions`);
    }
  }

  /** Loads the tokenizer and text encoder of a Stable Diffusion pipeline folder. */
  static fromFolder(dir: string | ClipTextFolder): ClipTextEncoder {
    const folder = typeof dir === 'string' ? readClipTextFolder(dir) : dir;
    const model = CLIPTextModel.fromFolder(folder.textEncoder);
    try {
      const tokenizer = ClipTokenizer.fromFolder(folder.tokenizer, {
        modelMaxLength: configMaxLength(folder.tokenizer.config) ?? model.config.maxPositionEmbeddings,
      });
      return new ClipTextEncoder(tokenizer, model);
    } catch (err) {
      model.disposeAll();
      throw err;
    }
  }

  /** @deprecated use {@link ClipTextEncoder.fromFolder} (every model loads through its class's `fromFolder`). */
  static load(dir: string | ClipTextFolder): ClipTextEncoder {
    return ClipTextEncoder.fromFolder(dir);
  }

  /** The embedding width (768 for SD 1.x, 1024 for SD 2.x). */
  get hiddenSize(): number {
    return this.model.config.hiddenSize;
  }

  /** The sequence length of every embedding (77). */
  get maxLength(): number {
    return this.tokenizer.modelMaxLength;
  }

  /** Token ids [texts.length, maxLength] as Stable Diffusion pads and truncates them. The caller disposes. */
  tokenize(texts: readonly string[]): tf.Tensor2D {
    const ids = this.tokenizer.encodeBatch(texts);
    const vocab = this.model.config.vocabSize;
    const bad = ids.findIndex((id) => id < 0 || id >= vocab);
    if (bad >= 0) throw new Error(`token id ${ids[bad]} (text ${Math.floor(bad / this.maxLength)}) is outside the text encoder's vocabulary of ${vocab}`);
    return tf.tensor2d(ids, [texts.length, this.maxLength], 'int32');
  }

  /** Encodes `texts` in one batch: `lastHiddenState` [n, 77, d] and (unless `pooled: false`) the pooled output. */
  encode(texts: readonly string[], options: ClipTextEncodeOptions = {}): ClipTextOutput {
    if (this.disposed) throw new Error('this text encoder has been disposed');
    const ids = this.tokenize(texts);
    try {
      return this.model.encode(ids, options);
    } finally {
      ids.dispose();
    }
  }

  /** Frees the model's weights. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.model.disposeAll();
  }
}
