/**
 * transformers' `BlipForConditionalGeneration`: the ViT vision encoder (`vision_model`) and the BERT-style text
 * decoder with cross-attention to the image (`text_decoder`), as blocks whose weight names are the checkpoint's.
 *
 * The decoder runs with a key/value cache ({@link DecoderCache}): the image's cross-attention keys and values are
 * computed once, and each new token costs one position of self-attention.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { activation } from '../layers/activations.js';
import { multiHeadAttention } from '../layers/attention-core.js';
import { Conv2d } from '../layers/conv2d.js';
import { Embedding } from '../layers/embedding.js';
import { LayerNorm } from '../layers/layer-norm.js';
import { Linear } from '../layers/linear.js';
import { Mlp } from '../layers/mlp.js';
import { Module } from '../layers/module.js';
import type { BlipConfig, BlipTextConfig, BlipVisionConfig } from './config.js';

/** A block that only groups others (its `forward` is not used). */
abstract class Container extends Module {
  forward(): tf.Tensor {
    throw new Error(`${this.constructor.name} is called through its own methods, not forward()`);
  }
}

// ---------------------------------------------------------------------------------------------- vision encoder

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

class BlipVisionEncoder extends Container {
  readonly layers: BlipEncoderLayer[];
  constructor(config: BlipVisionConfig) {
    super();
    this.layers = this.childList('layers', Array.from({ length: config.numHiddenLayers }, () => new BlipEncoderLayer(config)));
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
    return tf.tidy(() => {
      let h = this.embeddings.forward(pixels);
      for (const layer of this.encoder.layers) {
        const next = layer.forward(h);
        h = next;
      }
      return this.postLayernorm.forward(h);
    });
  }
}

// ------------------------------------------------------------------------------------------------ text decoder

/** The keys and values of one attention, [B, L, hidden] each. */
interface KeyValues {
  readonly k: tf.Tensor;
  readonly v: tf.Tensor;
}

/**
 * The decoder's key/value cache: per layer, the self-attention keys/values of the positions seen so far and the
 * cross-attention keys/values of the image. Owned by the caller: free it with {@link disposeCache}.
 */
export interface DecoderCache {
  /** The number of positions in the self-attention cache. */
  readonly length: number;
  readonly self: readonly KeyValues[];
  readonly cross: readonly KeyValues[];
}

/** Frees every tensor of a cache. */
export function disposeCache(cache: DecoderCache): void {
  for (const kv of [...cache.self, ...cache.cross]) tf.dispose([kv.k, kv.v]);
}

/** The cache rows `rows` (beam reordering), as a new cache; `cache` is left as it is. */
export function selectCacheRows(cache: DecoderCache, rows: number[]): DecoderCache {
  const idx = tf.tensor1d(rows, 'int32');
  const pick = (kv: KeyValues): KeyValues => ({ k: tf.gather(kv.k, idx), v: tf.gather(kv.v, idx) });
  const out = { length: cache.length, self: cache.self.map(pick), cross: cache.cross.map(pick) };
  idx.dispose();
  return out;
}

class BlipTextSelfAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;

  constructor(hidden: number, kvInput: number) {
    super();
    this.query = this.child('query', new Linear(hidden, hidden));
    this.key = this.child('key', new Linear(kvInput, hidden));
    this.value = this.child('value', new Linear(kvInput, hidden));
  }

  forward(): tf.Tensor {
    throw new Error('BlipTextSelfAttention is called through BlipTextAttention');
  }
}

class BlipTextSelfOutput extends Module {
  readonly dense: Linear;
  readonly layerNorm: LayerNorm;
  constructor(config: BlipTextConfig, inSize = config.hiddenSize) {
    super();
    this.dense = this.child('dense', new Linear(inSize, config.hiddenSize));
    this.layerNorm = this.child('LayerNorm', new LayerNorm(config.hiddenSize, config.layerNormEps));
  }
  /** LayerNorm(dense(x) + residual). */
  forward(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const [x, residual] = inputs as [tf.Tensor, tf.Tensor];
    return tf.tidy(() => this.layerNorm.forward(tf.add(this.dense.forward(x), residual)));
  }
}

class BlipTextAttention extends Container {
  readonly self: BlipTextSelfAttention;
  readonly outputBlock: BlipTextSelfOutput;

  constructor(readonly config: BlipTextConfig, cross: boolean) {
    super();
    this.self = this.child('self', new BlipTextSelfAttention(config.hiddenSize, cross ? config.encoderHiddenSize : config.hiddenSize));
    this.outputBlock = this.child('output', new BlipTextSelfOutput(config));
  }

  /** Keys and values of `states` (the image features for cross-attention). */
  keyValues(states: tf.Tensor): KeyValues {
    return { k: this.self.key.forward(states), v: this.self.value.forward(states) };
  }

  /** Attention of `x` over `kv` with an optional additive `mask`, then the output block. */
  attend(x: tf.Tensor, kv: KeyValues, mask?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const q = this.self.query.forward(x);
      const ctx = multiHeadAttention(q, kv.k, kv.v, this.config.numAttentionHeads, mask === undefined ? {} : { mask });
      return this.outputBlock.forward([ctx, x]);
    });
  }
}

class BlipTextIntermediate extends Module {
  readonly dense: Linear;
  private readonly act: (x: tf.Tensor) => tf.Tensor;
  constructor(config: BlipTextConfig) {
    super();
    this.dense = this.child('dense', new Linear(config.hiddenSize, config.intermediateSize));
    this.act = activation(config.hiddenAct);
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.act(this.dense.forward(x)));
  }
}

class BlipTextLayer extends Container {
  readonly attention: BlipTextAttention;
  readonly crossattention: BlipTextAttention;
  readonly intermediate: BlipTextIntermediate;
  readonly outputBlock: BlipTextSelfOutput;

  constructor(config: BlipTextConfig) {
    super();
    this.attention = this.child('attention', new BlipTextAttention(config, false));
    this.crossattention = this.child('crossattention', new BlipTextAttention(config, true));
    this.intermediate = this.child('intermediate', new BlipTextIntermediate(config));
    this.outputBlock = this.child('output', new BlipTextSelfOutput(config, config.intermediateSize));
  }
}

class BlipTextEmbeddings extends Module {
  readonly wordEmbeddings: Embedding;
  readonly positionEmbeddings: Embedding;
  readonly layerNorm: LayerNorm;

  constructor(readonly config: BlipTextConfig) {
    super();
    this.wordEmbeddings = this.child('word_embeddings', new Embedding(config.vocabSize, config.hiddenSize));
    this.positionEmbeddings = this.child('position_embeddings', new Embedding(config.maxPositionEmbeddings, config.hiddenSize));
    this.layerNorm = this.child('LayerNorm', new LayerNorm(config.hiddenSize, config.layerNormEps));
  }

  /** int32 ids [B, L] at positions `start`.. -> [B, L, hidden]. */
  forward(ids: tf.Tensor, args?: { start?: number }): tf.Tensor {
    return tf.tidy(() => {
      const start = args?.start ?? 0;
      const l = ids.shape[1]!;
      const positions = tf.range(start, start + l, 1, 'int32');
      return this.layerNorm.forward(tf.add(this.wordEmbeddings.forward(ids), this.positionEmbeddings.forward(positions)));
    });
  }
}

class BlipTextEncoder extends Container {
  readonly layer: BlipTextLayer[];
  constructor(config: BlipTextConfig) {
    super();
    this.layer = this.childList('layer', Array.from({ length: config.numHiddenLayers }, () => new BlipTextLayer(config)));
  }
}

class BlipTextModel extends Container {
  readonly embeddings: BlipTextEmbeddings;
  readonly encoder: BlipTextEncoder;
  constructor(config: BlipTextConfig) {
    super();
    this.embeddings = this.child('embeddings', new BlipTextEmbeddings(config));
    this.encoder = this.child('encoder', new BlipTextEncoder(config));
  }
}

class BlipPredictionHeadTransform extends Module {
  readonly dense: Linear;
  readonly layerNorm: LayerNorm;
  private readonly act: (x: tf.Tensor) => tf.Tensor;
  constructor(config: BlipTextConfig) {
    super();
    this.dense = this.child('dense', new Linear(config.hiddenSize, config.hiddenSize));
    this.layerNorm = this.child('LayerNorm', new LayerNorm(config.hiddenSize, config.layerNormEps));
    this.act = activation(config.hiddenAct);
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.layerNorm.forward(this.act(this.dense.forward(x))));
  }
}

/** BERT's LM head: transform, then the (tied) word embeddings transposed plus an output bias. */
class BlipLmPredictionHead extends Container {
  readonly transform: BlipPredictionHeadTransform;
  readonly bias: LayerVariable;
  constructor(config: BlipTextConfig) {
    super();
    this.transform = this.child('transform', new BlipPredictionHeadTransform(config));
    this.bias = this.weight('bias', [config.vocabSize]);
  }
}

class BlipOnlyMlmHead extends Container {
  readonly predictions: BlipLmPredictionHead;
  constructor(config: BlipTextConfig) {
    super();
    this.predictions = this.child('predictions', new BlipLmPredictionHead(config));
  }
}

/** `BlipTextLMHeadModel`: the caption decoder. */
export class BlipTextLMHeadModel extends Container {
  readonly bert: BlipTextModel;
  readonly cls: BlipOnlyMlmHead;

  constructor(readonly config: BlipTextConfig) {
    super();
    this.bert = this.child('bert', new BlipTextModel(config));
    this.cls = this.child('cls', new BlipOnlyMlmHead(config));
  }

  /** An empty cache for `imageEmbeds` [B, patches + 1, encoderHidden] (the image's cross-attention keys/values). */
  startCache(imageEmbeds: tf.Tensor): DecoderCache {
    const self: KeyValues[] = [];
    const cross: KeyValues[] = [];
    tf.tidy(() => {
      const b = imageEmbeds.shape[0]!;
      for (const layer of this.bert.encoder.layer) {
        const empty = (): tf.Tensor => tf.keep(tf.zeros([b, 0, this.config.hiddenSize]));
        self.push({ k: empty(), v: empty() });
        const kv = layer.crossattention.keyValues(imageEmbeds);
        cross.push({ k: tf.keep(kv.k), v: tf.keep(kv.v) });
      }
    });
    return { length: 0, self, cross };
  }

  /**
   * Runs the decoder on new token ids [B, L] (int32) after the cached positions. Returns the logits of every new
   * position [B, L, vocab] and the extended cache (a new object; the tensors of `cache` that are not in the new
   * one are freed, so the caller keeps only the returned cache).
   */
  step(ids: tf.Tensor2D, cache: DecoderCache): { logits: tf.Tensor3D; cache: DecoderCache } {
    const [b, l] = ids.shape;
    const past = cache.length;
    if (past + l > this.config.maxPositionEmbeddings) {
      throw new Error(`BLIP text decoder: ${past + l} positions exceed max_position_embeddings (${this.config.maxPositionEmbeddings})`);
    }
    if (cache.cross[0] !== undefined && cache.cross[0].k.shape[0] !== b) {
      throw new Error(`BLIP text decoder: ${b} sequences for a cache of ${cache.cross[0].k.shape[0]}`);
    }
    const self: KeyValues[] = [];
    const logits = tf.tidy(() => {
      let h = this.bert.embeddings.forward(ids, { start: past });
      // Causal mask for the new positions (each sees the past and itself).
      let mask: tf.Tensor | undefined;
      if (l > 1) {
        const rows = tf.reshape(tf.range(past, past + l, 1, 'int32'), [l, 1]);
        const cols = tf.reshape(tf.range(0, past + l, 1, 'int32'), [1, past + l]);
        const keep = tf.lessEqual(cols, rows);
        mask = tf.reshape(tf.where(keep, tf.zeros(keep.shape), tf.fill(keep.shape, -3.4028234663852886e38)), [1, 1, l, past + l]);
      }
      this.bert.encoder.layer.forEach((layer, i) => {
        const old = cache.self[i]!;
        const kvNew = layer.attention.keyValues(h);
        const kv = { k: tf.keep(tf.concat([old.k, kvNew.k], 1)), v: tf.keep(tf.concat([old.v, kvNew.v], 1)) };
        self.push(kv);
        const a = layer.attention.attend(h, kv, mask);
        const c = layer.crossattention.attend(a, cache.cross[i]!);
        h = layer.outputBlock.forward([layer.intermediate.forward(c), c]);
      });
      const t = this.cls.predictions.transform.forward(h);
      const table = this.bert.embeddings.wordEmbeddings.table.read() as tf.Tensor2D;
      const flat = tf.matMul(tf.reshape(t, [-1, this.config.hiddenSize]) as tf.Tensor2D, table, false, true);
      return tf.reshape(tf.add(flat, this.cls.predictions.bias.read()), [b, l, this.config.vocabSize]) as tf.Tensor3D;
    });
    for (const kv of cache.self) tf.dispose([kv.k, kv.v]);
    return { logits, cache: { length: past + l, self, cross: cache.cross } };
  }
}

/** `BlipForConditionalGeneration`: the captioning model. Free it with `disposeAll()`. */
export class BlipForConditionalGeneration extends Container {
  readonly visionModel: BlipVisionModel;
  readonly textDecoder: BlipTextLMHeadModel;

  constructor(readonly config: BlipConfig) {
    super();
    this.visionModel = this.child('vision_model', new BlipVisionModel(config.vision));
    this.textDecoder = this.child('text_decoder', new BlipTextLMHeadModel(config.text));
  }

  /** Image features [B, 1 + patches, hidden] of normalised pixel values [B, S, S, 3] (NHWC). */
  encodeImage(pixels: tf.Tensor4D): tf.Tensor3D {
    return this.visionModel.forward(pixels) as tf.Tensor3D;
  }

  /** Decoder logits [B, L, vocab] of `ids` [B, L] (int32) given image features (no cache kept). */
  logits(ids: tf.Tensor2D, imageEmbeds: tf.Tensor3D): tf.Tensor3D {
    const cache = this.textDecoder.startCache(imageEmbeds);
    const out = this.textDecoder.step(ids, cache);
    disposeCache(out.cache);
    return out.logits;
  }
}
