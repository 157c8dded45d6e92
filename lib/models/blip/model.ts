/**
 * transformers' `BlipForConditionalGeneration`: the ViT vision encoder (`vision_model`, ./vision-model.ts) and the
 * BERT-style text decoder with cross-attention to the image (`text_decoder`, ./text-decoder.ts), as blocks whose
 * weight names are the checkpoint's.
 *
 * Generation runs the decoder with a key/value cache (./kv-cache.ts): the image's cross-attention keys and values
 * are computed once, and each new token costs one position of self-attention.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ComponentFolder } from '../../io/model-folder.js';
import { Module } from '../layers/module.js';
import { loadComponentModel } from '../load-weights.js';
import { type BlipConfig, parseBlipConfig } from './config.js';
import { BlipTextLMHeadModel } from './text-decoder.js';
import { BlipVisionModel } from './vision-model.js';
import { blipShapeBindings, loadBlipWeights } from './weights.js';

/** `BlipForConditionalGeneration`: the captioning model. Free it with `disposeAll()`. */
export class BlipForConditionalGeneration extends Module {
  readonly visionModel: BlipVisionModel;
  readonly textDecoder: BlipTextLMHeadModel;

  constructor(readonly config: BlipConfig) {
    super();
    this.visionModel = this.child('vision_model', new BlipVisionModel(config.vision));
    this.textDecoder = this.child('text_decoder', new BlipTextLMHeadModel(config.text));
  }

  /**
   * Builds the model from a BLIP folder (`config.json` + `model.safetensors`, as a path or an already read
   * {@link ComponentFolder}) and loads its weights. The caller frees it with `disposeAll()`.
   */
  static fromFolder(folder: string | ComponentFolder): BlipForConditionalGeneration {
    return loadComponentModel(folder, { what: 'BLIP', parse: parseBlipConfig, build: (c) => new BlipForConditionalGeneration(c), load: loadBlipWeights, bindings: blipShapeBindings });
  }

  /** Image features [B, 1 + patches, hidden] of normalised pixel values [B, S, S, 3] (NHWC). */
  encodeImage(pixels: tf.Tensor4D): tf.Tensor3D {
    return this.visionModel.forward(pixels) as tf.Tensor3D;
  }

  /** Decoder logits [B, L, vocab] of `ids` [B, L] (int32) given image features (no cache kept). */
  logits(ids: tf.Tensor2D, imageEmbeds: tf.Tensor3D): tf.Tensor3D {
    return this.textDecoder.forward([ids, imageEmbeds]) as tf.Tensor3D;
  }

  /** `inputs` = [pixels [B, S, S, 3], ids [B, L] (int32)]: the decoder logits [B, L, vocab] of the captions `ids`. */
  forward(inputs: tf.Tensor[]): tf.Tensor {
    const [pixels, ids] = inputs as [tf.Tensor4D, tf.Tensor2D];
    return tf.tidy(() => this.logits(ids, this.encodeImage(pixels)));
  }
}

/** @deprecated use {@link BlipForConditionalGeneration.fromFolder} (every model loads through its class's `fromFolder`). */
export function loadBlipModel(folder: string | ComponentFolder): BlipForConditionalGeneration {
  return BlipForConditionalGeneration.fromFolder(folder);
}
