/**
 * transformers' `BlipVisionModel`: the ViT that turns normalised pixel values into the image features BLIP's text
 * decoder attends to (`vision_model` of `BlipForConditionalGeneration`), as blocks whose weight names are the
 * checkpoint's.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { multiHeadAttention } from '../layers/attention-core.js';
import { Conv2d } from '../layers/conv2d.js';
import { LayerNorm } from '../layers/layer-norm.js';
import { Linear } from '../layers/linear.js';
import { Mlp } from '../layers/mlp.js';
import { Module } from '../layers/module.js';
import type { BlipVisionConfig } from './config.js';

class BlipVisionEmbeddings extends Module {
  readonly classEmbedding: LayerVariable;
  readonly positionEmbedding: LayerVariable;
  readonly patchEmbedding: Conv2d;

  constructor(readonly config: BlipVisionConfig) {
    super();
    const c = config.hiddenSize;
    const patches = (config.imageSize / config.patchSize) ** 2;
    this.classEmbedding = this.weight('class_embedding', [1, 1, c]);
    this.patchEmbedding = this.child('patch_embedding', new Conv2d(config.numChannels, c, config.patchSize, config.patchSize));
    this.positionEmbedding = this.weight('position_embedding', [1, patches + 1, c]);
  }

  /** [B, H, W, C] pixel values -> [B, 1 + patches, hidden]. */
  forward(pixels: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const b = pixels.shape[0]!;
      const c = this.config.hiddenSize;
      const patches = tf.reshape(this.patchEmbedding.forward(pixels), [b, -1, c]);
      const cls = tf.tile(this.classEmbedding.read(), [b, 1, 1]);
      return tf.add(tf.concat([cls, patches], 1), this.positionEmbedding.read());
    });
  }
}

class BlipVisionAttention extends Module {
  readonly qkv: Linear;
  readonly projection: Linear;

  constructor(readonly config: BlipVisionConfig) {
    super();
    const c = config.hiddenSize;
    this.qkv = this.child('qkv', new Linear(c, 3 * c));
    this.projection = this.child('projection', new Linear(c, c));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const c = this.config.hiddenSize;
      const [q, k, v] = tf.split(this.qkv.forward(x), [c, c, c], -1) as [tf.Tensor, tf.Tensor, tf.Tensor];
      return this.projection.forward(multiHeadAttention(q, k, v, this.config.numAttentionHeads));
    });
  }
}

class BlipEncoderLayer extends Module {
  readonly selfAttn: BlipVisionAttention;
  readonly layerNorm1: LayerNorm;
  readonly mlp: Mlp;
  readonly layerNorm2: LayerNorm;

  constructor(config: BlipVisionConfig) {
    super();
    this.selfAttn = this.child('self_attn', new BlipVisionAttention(config));
    this.layerNorm1 = this.child('layer_norm1', new LayerNorm(config.hiddenSize, config.layerNormEps));
    this.mlp = this.child('mlp', new Mlp(config.hiddenSize, config.intermediateSize, config.hiddenAct));
    this.layerNorm2 = this.child('layer_norm2', new LayerNorm(config.hiddenSize, config.layerNormEps));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const h = tf.add(x, this.selfAttn.forward(this.layerNorm1.forward(x)));
      return tf.add(h, this.mlp.forward(this.layerNorm2.forward(h)));
    });
  }
}

/** The encoder layers, one after the other. */
class BlipVisionEncoder extends Module {
  readonly layers: BlipEncoderLayer[];
  constructor(config: BlipVisionConfig) {
    super();
    this.layers = this.childList('layers', Array.from({ length: config.numHiddenLayers }, () => new BlipEncoderLayer(config)));
  }

  /** [B, tokens, hidden] -> [B, tokens, hidden]. */
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.layers.reduce((h, layer) => layer.forward(h), x));
  }
}

/** `BlipVisionModel`: pixel values to the image features the decoder attends to (`last_hidden_state`). */
export class BlipVisionModel extends Module {
  readonly embeddings: BlipVisionEmbeddings;
  readonly encoder: BlipVisionEncoder;
  readonly postLayernorm: LayerNorm;

  constructor(readonly config: BlipVisionConfig) {
    super();
    this.embeddings = this.child('embeddings', new BlipVisionEmbeddings(config));
    this.encoder = this.child('encoder', new BlipVisionEncoder(config));
    this.postLayernorm = this.child('post_layernorm', new LayerNorm(config.hiddenSize, config.layerNormEps));
  }

  /**
   * `pixels` [B, imageSize, imageSize, channels] (NHWC; normalised as BlipImageProcessor does) -> the image
   * features [B, 1 + patches, hidden].
   */
  forward(pixels: tf.Tensor): tf.Tensor {
    const { imageSize: s, numChannels: ch } = this.config;
    if (pixels.rank !== 4 || pixels.shape[1] !== s || pixels.shape[2] !== s || pixels.shape[3] !== ch) {
      throw new Error(`BLIP vision model: pixel values must have shape [batch, ${s}, ${s}, ${ch}], got [${pixels.shape.join(', ')}]`);
    }
    return tf.tidy(() => this.postLayernorm.forward(this.encoder.forward(this.embeddings.forward(pixels))));
  }
}
