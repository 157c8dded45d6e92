/**
 * The configuration of a transformers `BlipForConditionalGeneration` (`BlipConfig` with its `vision_config` and
 * `text_config`), read from a BLIP folder's `config.json`, with every value this implementation cannot honour
 * rejected by name.
 */
import type { JsonObject } from '../../io/json.js';
import { isJsonObject } from '../../io/json.js';
import { ConfigFields } from '../../io/config-fields.js';
import { activation } from '../layers/activations.js';
import type { TokenTransformerConfig, TransformerStackConfig } from '../transformer-config.js';

/** The fields of `BlipVisionConfig` that shape the vision encoder. */
export interface BlipVisionConfig extends TransformerStackConfig {
  readonly imageSize: number;
  readonly patchSize: number;
  readonly numChannels: number;
}

/** The fields of `BlipTextConfig` that shape the text decoder and its generation. */
export interface BlipTextConfig extends TokenTransformerConfig {
  readonly encoderHiddenSize: number;
  /** The first token of every caption (`[DEC]`). */
  readonly bosTokenId: number;
  /** The token that ends a caption (BLIP generates until `sep_token_id`). */
  readonly sepTokenId: number;
  readonly padTokenId: number;
}

/** A parsed `BlipConfig`. */
export interface BlipConfig {
  readonly vision: BlipVisionConfig;
  readonly text: BlipTextConfig;
}

/** The activation named by `key` (checked against those implemented). */
function activationField(r: ConfigFields, key: string, fallback: string): string {
  const v = r.string(key, fallback);
  activation(v, `${r.source}: ${key}`);
  return v;
}

/** Parses `vision_config` (missing fields take `BlipVisionConfig`'s defaults). */
export function parseBlipVisionConfig(json: JsonObject, source = 'BLIP vision_config'): BlipVisionConfig {
  const r = new ConfigFields(json, source);
  const hiddenSize = r.int('hidden_size', 768);
  const numAttentionHeads = r.int('num_attention_heads', 12);
  r.assertMultiple('hidden_size', hiddenSize, 'num_attention_heads', numAttentionHeads);
  const imageSize = r.int('image_size', 384);
  const patchSize = r.int('patch_size', 16);
  r.assertMultiple('image_size', imageSize, 'patch_size', patchSize);
  return {
    hiddenSize,
    intermediateSize: r.int('intermediate_size', 3072),
    numHiddenLayers: r.int('num_hidden_layers', 12, 0),
    numAttentionHeads,
    imageSize,
    patchSize,
    numChannels: r.int('num_channels', 3),
    hiddenAct: activationField(r, 'hidden_act', 'gelu'),
    layerNormEps: r.positive('layer_norm_eps', 1e-5),
  };
}

/** Parses `text_config` (missing fields take `BlipTextConfig`'s defaults). */
export function parseBlipTextConfig(json: JsonObject, source = 'BLIP text_config'): BlipTextConfig {
  const r = new ConfigFields(json, source);
  const hiddenSize = r.int('hidden_size', 768);
  const numAttentionHeads = r.int('num_attention_heads', 8);
  r.assertMultiple('hidden_size', hiddenSize, 'num_attention_heads', numAttentionHeads);
  const vocabSize = r.int('vocab_size', 30524);
  const token = (field: string, fallback: number): number => {
    const v = r.int(field, fallback, 0);
    if (v >= vocabSize) throw r.error(field, `(${v}) is not below vocab_size (${vocabSize})`);
    return v;
  };
  for (const field of ['position_embedding_type']) {
    const v = json[field];
    if (v !== undefined && v !== null && v !== 'absolute') throw r.error(field, `is ${JSON.stringify(v)}; only "absolute" is supported`);
  }
  return {
    vocabSize,
    hiddenSize,
    encoderHiddenSize: r.int('encoder_hidden_size', 768),
    intermediateSize: r.int('intermediate_size', 3072),
    numHiddenLayers: r.int('num_hidden_layers', 12, 0),
    numAttentionHeads,
    maxPositionEmbeddings: r.int('max_position_embeddings', 512),
    hiddenAct: activationField(r, 'hidden_act', 'gelu'),
    layerNormEps: r.positive('layer_norm_eps', 1e-12),
    bosTokenId: token('bos_token_id', 30522),
    sepTokenId: token('sep_token_id', 102),
    padTokenId: token('pad_token_id', 0),
  };
}

/**
 * Parses a BLIP captioning model's `config.json`; `source` names the file in errors.
 * @throws Error naming the field for a wrong type, an impossible value or an unsupported feature.
 */
export function parseBlipConfig(json: JsonObject, source = 'BLIP config'): BlipConfig {
  const r = new ConfigFields(json, source);
  if (json.model_type !== undefined && json.model_type !== 'blip') {
    throw r.error('model_type', `is ${JSON.stringify(json.model_type)}; expected "blip"`);
  }
  const arch = json.architectures;
  if (Array.isArray(arch) && arch.length > 0 && !arch.includes('BlipForConditionalGeneration')) {
    throw r.error('architectures', `is ${JSON.stringify(arch)}; expected BlipForConditionalGeneration (a captioning model)`);
  }
  const part = (field: string): JsonObject => r.field(field, isJsonObject, 'an object', {});
  const vision = parseBlipVisionConfig(part('vision_config'), `${source}: vision_config`);
  // BlipConfig sets the decoder's cross-attention input size to the vision width, whatever text_config says.
  const text = { ...parseBlipTextConfig(part('text_config'), `${source}: text_config`), encoderHiddenSize: vision.hiddenSize };
  return { vision, text };
}
