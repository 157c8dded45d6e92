/**
 * transformers' `BlipTextLMHeadModel`: BLIP's BERT-style caption decoder (`text_decoder` of
 * `BlipForConditionalGeneration`), causal self-attention over the tokens and cross-attention to the image
 * features, as blocks whose weight names are the checkpoint's.
 *
 * Every block's `forward` is the uncached pass over a whole sequence; generation runs
 * {@link BlipTextLMHeadModel.step} with a key/value cache ({@link DecoderCache}), through the same layers.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { activation } from '../layers/activations.js';
import { attendHeads, headsView } from '../layers/attention-core.js';
import { Embedding } from '../layers/embedding.js';
import { LayerNorm } from '../layers/layer-norm.js';
import { Linear } from '../layers/linear.js';
import { Module } from '../layers/module.js';
import type { BlipTextConfig } from './config.js';
import type { DecoderCache, KeyValues } from './kv-cache.js';

/** Forward arguments of the decoder's attention blocks: an additive attention mask. */
interface MaskArgs {
  mask?: tf.Tensor;
}

/**
 * The additive causal mask of `l` new positions after `past` cached ones, [1, 1, l, past + l] (each position sees
 * the past and itself); none for one position, which sees everything.
 */
function causalMask(past: number, l: number): tf.Tensor | undefined {
  if (l <= 1) return undefined;
  return tf.tidy(() => {
    const rows = tf.reshape(tf.range(past, past + l, 1, 'int32'), [l, 1]);
    const cols = tf.reshape(tf.range(0, past + l, 1, 'int32'), [1, past + l]);
    const keep = tf.lessEqual(cols, rows);
    return tf.reshape(tf.where(keep, tf.zeros(keep.shape), tf.fill(keep.shape, -3.4028234663852886e38)), [1, 1, l, past + l]);
  });
}

/** An attention's `[x, states]` inputs: the queries' input and the keys' and values' (`x` itself when omitted). */
function queryAndStates(inputs: tf.Tensor | tf.Tensor[], who: string): [tf.Tensor, tf.Tensor] {
  const [x, states] = Array.isArray(inputs) ? inputs : [inputs];
  if (x === undefined) throw new Error(`${who}: no input`);
  return [x, states ?? x];
}

/** The query, key and value projections of one attention, and the multi-head attention over them. */
class BlipTextSelfAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;

  constructor(
    hidden: number,
    kvInput: number,
    readonly heads: number,
  ) {
    super();
    this.query = this.child('query', new Linear(hidden, hidden));
    this.key = this.child('key', new Linear(kvInput, hidden));
    this.value = this.child('value', new Linear(kvInput, hidden));
  }

  /** Keys and values of `states` (the image features for cross-attention), split into heads. */
  keyValues(states: tf.Tensor): KeyValues {
    return tf.tidy(() => ({ k: headsView(this.key.forward(states), this.heads, true), v: headsView(this.value.forward(states), this.heads) }));
  }

  /** The attention context of `x` over `kv`, with an optional additive `mask`. */
  attend(x: tf.Tensor, kv: KeyValues, mask?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const q = headsView(this.query.forward(x), this.heads);
      return attendHeads(q, kv.k, kv.v, 1 / Math.sqrt(q.shape[3]), mask === undefined ? {} : { mask });
    });
  }

  /** `inputs` = [x, states]: the context of `x` over `states` (`x` itself when omitted). */
  forward(inputs: tf.Tensor | tf.Tensor[], args: MaskArgs = {}): tf.Tensor {
    const [x, states] = queryAndStates(inputs, 'BlipTextSelfAttention');
    return tf.tidy(() => this.attend(x, this.keyValues(states), args.mask));
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

/** One attention (self or cross) with its output block. */
class BlipTextAttention extends Module {
  readonly self: BlipTextSelfAttention;
  readonly outputBlock: BlipTextSelfOutput;

  constructor(config: BlipTextConfig, cross: boolean) {
    super();
    this.self = this.child('self', new BlipTextSelfAttention(config.hiddenSize, cross ? config.encoderHiddenSize : config.hiddenSize, config.numAttentionHeads));
    this.outputBlock = this.child('output', new BlipTextSelfOutput(config));
  }

  /** Keys and values of `states` (the image features for cross-attention). */
  keyValues(states: tf.Tensor): KeyValues {
    return this.self.keyValues(states);
  }

  /** Attention of `x` over `kv` with an optional additive `mask`, then the output block. */
  attend(x: tf.Tensor, kv: KeyValues, mask?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.outputBlock.forward([this.self.attend(x, kv, mask), x]));
  }

  /** `inputs` = [x, states]: attention of `x` over `states` (`x` itself when omitted), then the output block. */
  forward(inputs: tf.Tensor | tf.Tensor[], args: MaskArgs = {}): tf.Tensor {
    const [x] = queryAndStates(inputs, 'BlipTextAttention');
    return tf.tidy(() => this.outputBlock.forward([this.self.forward(inputs, args), x]));
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

/** One decoder layer: causal self-attention, cross-attention to the image, the feed-forward. */
class BlipTextLayer extends Module {
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

  /**
   * The layer on the new positions `h`, given the self-attention keys/values of every position they see (the
   * cached ones and their own), the image's cross-attention keys/values and the causal `mask`.
   */
  decode(h: tf.Tensor, selfKv: KeyValues, crossKv: KeyValues, mask?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const a = this.attention.attend(h, selfKv, mask);
      const c = this.crossattention.attend(a, crossKv);
      return this.outputBlock.forward([this.intermediate.forward(c), c]);
    });
  }

  /** `inputs` = [x, imageEmbeds]: the layer on a whole sequence (no cache), with the causal `mask`. */
  forward(inputs: tf.Tensor[], args: MaskArgs = {}): tf.Tensor {
    const [x, image] = inputs as [tf.Tensor, tf.Tensor];
    return tf.tidy(() => this.decode(x, this.attention.keyValues(x), this.crossattention.keyValues(image), args.mask));
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

/** The decoder layers, one after the other. */
class BlipTextEncoder extends Module {
  readonly layer: BlipTextLayer[];
  constructor(config: BlipTextConfig) {
    super();
    this.layer = this.childList('layer', Array.from({ length: config.numHiddenLayers }, () => new BlipTextLayer(config)));
  }

  /** `inputs` = [x, imageEmbeds]: every layer on a whole sequence (no cache), with the causal `mask`. */
  forward(inputs: tf.Tensor[], args: MaskArgs = {}): tf.Tensor {
    const [x, image] = inputs as [tf.Tensor, tf.Tensor];
    return tf.tidy(() => this.layer.reduce((h, layer) => layer.forward([h, image], args), x));
  }
}

/** The embeddings and the decoder layers (transformers' `BlipTextModel`, without a pooler). */
class BlipTextModel extends Module {
  readonly embeddings: BlipTextEmbeddings;
  readonly encoder: BlipTextEncoder;
  constructor(config: BlipTextConfig) {
    super();
    this.embeddings = this.child('embeddings', new BlipTextEmbeddings(config));
    this.encoder = this.child('encoder', new BlipTextEncoder(config));
  }

  /** `inputs` = [ids [B, L] (int32), imageEmbeds]: the hidden states [B, L, hidden] of a whole sequence (no cache). */
  forward(inputs: tf.Tensor[]): tf.Tensor {
    const [ids, image] = inputs as [tf.Tensor, tf.Tensor];
    return tf.tidy(() => this.encoder.forward([this.embeddings.forward(ids), image], { mask: causalMask(0, ids.shape[1]!) }));
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
class BlipLmPredictionHead extends Module {
  readonly transform: BlipPredictionHeadTransform;
  readonly bias: LayerVariable;
  constructor(readonly config: BlipTextConfig) {
    super();
    this.transform = this.child('transform', new BlipPredictionHeadTransform(config));
    this.bias = this.weight('bias', [config.vocabSize]);
  }

  /** `inputs` = [hidden states [B, L, hidden], the word-embedding table [vocab, hidden]]: the logits [B, L, vocab]. */
  forward(inputs: tf.Tensor[]): tf.Tensor {
    const [h, table] = inputs as [tf.Tensor, tf.Tensor2D];
    return tf.tidy(() => {
      const [b, l] = h.shape as [number, number, number];
      const t = this.transform.forward(h);
      const flat = tf.matMul(tf.reshape(t, [-1, this.config.hiddenSize]) as tf.Tensor2D, table, false, true);
      return tf.reshape(tf.add(flat, this.bias.read()), [b, l, this.config.vocabSize]);
    });
  }
}

/** The LM head's wrapper (transformers' `BlipTextOnlyMLMHead`, kept for its weight names `cls.predictions.*`). */
class BlipOnlyMlmHead extends Module {
  readonly predictions: BlipLmPredictionHead;
  constructor(config: BlipTextConfig) {
    super();
    this.predictions = this.child('predictions', new BlipLmPredictionHead(config));
  }

  /** `inputs` = [hidden states, the word-embedding table]: the logits (see {@link BlipLmPredictionHead.forward}). */
  forward(inputs: tf.Tensor[]): tf.Tensor {
    return this.predictions.forward(inputs);
  }
}

/** `BlipTextLMHeadModel`: the caption decoder. */
export class BlipTextLMHeadModel extends Module {
  readonly bert: BlipTextModel;
  readonly cls: BlipOnlyMlmHead;

  constructor(readonly config: BlipTextConfig) {
    super();
    this.bert = this.child('bert', new BlipTextModel(config));
    this.cls = this.child('cls', new BlipOnlyMlmHead(config));
  }

  /**
   * `inputs` = [ids [B, L] (int32), imageEmbeds [B, patches + 1, encoderHidden]]: the logits [B, L, vocab] of
   * every position of a whole sequence, without a cache.
   */
  forward(inputs: tf.Tensor[]): tf.Tensor {
    this.checkPositions(inputs[0]!.shape[1]!);
    return tf.tidy(() => this.cls.forward([this.bert.forward(inputs), this.wordTable()]));
  }

  /**
   * An empty cache for `imageEmbeds` [B, patches + 1, encoderHidden]: the image's cross-attention keys/values,
   * computed once, each image's repeated `copies` times in a row (the beams of beam search: [B * copies, ...]).
   */
  startCache(imageEmbeds: tf.Tensor, copies = 1): DecoderCache {
    if (!Number.isInteger(copies) || copies < 1) throw new Error(`BLIP text decoder: copies must be a positive integer, got ${copies}`);
    const self: KeyValues[] = [];
    const cross: KeyValues[] = [];
    tf.tidy(() => {
      const b = imageEmbeds.shape[0]! * copies;
      const heads = this.config.numAttentionHeads;
      const d = this.config.hiddenSize / heads;
      const repeat = (x: tf.Tensor4D): tf.Tensor4D => {
        if (copies === 1) return x;
        const [n, ...rest] = x.shape;
        return tf.reshape(tf.tile(tf.expandDims(x, 1), [1, copies, 1, 1, 1]), [n * copies, ...rest]);
      };
      for (const layer of this.bert.encoder.layer) {
        self.push({ k: tf.keep(tf.zeros([b, heads, d, 0])), v: tf.keep(tf.zeros([b, heads, 0, d])) });
        const kv = layer.crossattention.keyValues(imageEmbeds);
        cross.push({ k: tf.keep(repeat(kv.k)), v: tf.keep(repeat(kv.v)) });
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
    this.checkPositions(past + l);
    if (cache.cross[0] !== undefined && cache.cross[0].k.shape[0] !== b) {
      throw new Error(`BLIP text decoder: ${b} sequences for a cache of ${cache.cross[0].k.shape[0]}`);
    }
    const self: KeyValues[] = [];
    const logits = tf.tidy(() => {
      let h = this.bert.embeddings.forward(ids, { start: past });
      const mask = causalMask(past, l);
      this.bert.encoder.layer.forEach((layer, i) => {
        const old = cache.self[i]!;
        const kvNew = layer.attention.keyValues(h);
        const kv = { k: tf.keep(tf.concat([old.k, kvNew.k], 3)), v: tf.keep(tf.concat([old.v, kvNew.v], 2)) };
        self.push(kv);
        h = layer.decode(h, kv, cache.cross[i]!, mask);
      });
      return this.cls.forward([h, this.wordTable()]) as tf.Tensor3D;
    });
    for (const kv of cache.self) tf.dispose([kv.k, kv.v]);
    return { logits, cache: { length: past + l, self, cross: cache.cross } };
  }

  /** Refuses sequences longer than the position embeddings. */
  private checkPositions(positions: number): void {
    if (positions > this.config.maxPositionEmbeddings) {
      throw new Error(`BLIP text decoder: ${positions} positions exceed max_position_embeddings (${this.config.maxPositionEmbeddings})`);
    }
  }

  /** The word-embedding table the LM head's output matrix is tied to, [vocab, hidden]. */
  private wordTable(): tf.Tensor2D {
    return this.bert.embeddings.wordEmbeddings.table.read() as tf.Tensor2D;
  }
}
