/**
 * The configuration of a CLIP text encoder, read from a transformers `text_encoder/config.json`
 * (`CLIPTextConfig`), with every value this implementation cannot honour rejected by name.
 */
import type { JsonObject } from '../../io/json.js';
import { ConfigFields, isInteger } from '../../io/config-fields.js';
import { activation } from '../layers/activations.js';
import type { TokenTransformerConfig } from '../transformer-config.js';

/** The fields of `CLIPTextConfig` that shape the model. */
export interface ClipTextConfig extends TokenTransformerConfig {
  /** `quick_gelu` (CLIP ViT-L/14, SD 1.x) or `gelu` (OpenCLIP ViT-H/14, SD 2.x), or another known activation. */
  readonly hiddenAct: string;
  /**
   * The end token for the pooled output. `2` is the value of configs written before transformers PR #24773, and
   * means "the position of the largest id" (the end token has the largest id in CLIP's vocabulary).
   */
  readonly eosTokenId: number;
  readonly bosTokenId?: number;
  readonly padTokenId?: number;
}

/** Architectures whose text tower this class reads (`text_projection` of the latter is not used). */
const ARCHITECTURES = ['CLIPTextModel', 'CLIPTextModelWithProjection'];
const MODEL_TYPES = ['clip_text_model', 'clip'];

/**
 * Parses and checks a CLIP text encoder config. Missing fields take `CLIPTextConfig`'s defaults (as transformers
 * does); `source` names the file in errors.
 * @throws Error naming the field for a wrong type, an impossible value or an unsupported feature.
 */
export function parseClipTextConfig(json: JsonObject, source = 'text encoder config'): ClipTextConfig {
  const r = new ConfigFields(json, source);
  const optInt = (field: string): number | undefined => r.optional(field, isInteger, 'an integer or null');

  const type = json.model_type;
  if (type !== undefined && !(typeof type === 'string' && MODEL_TYPES.includes(type))) {
    throw r.error('model_type', `is ${JSON.stringify(type)}; expected "clip_text_model" (a CLIP text encoder)`);
  }
  const arch = json.architectures;
  if (Array.isArray(arch) && arch.length > 0 && !arch.some((a) => typeof a === 'string' && ARCHITECTURES.includes(a))) {
    throw r.error('architectures', `is ${JSON.stringify(arch)}; expected one of ${ARCHITECTURES.join(', ')}`);
  }
  if (type === 'clip' || json.text_config !== undefined) {
    throw r.error('model_type', 'is a full CLIP model config; point at the text encoder folder (a CLIPTextConfig)');
  }

  const hiddenSize = r.int('hidden_size', 512);
  const numAttentionHeads = r.int('num_attention_heads', 8);
  r.assertMultiple('hidden_size', hiddenSize, 'num_attention_heads', numAttentionHeads);
  const hiddenAct = r.string('hidden_act', 'quick_gelu');
  activation(hiddenAct, `${source}: hidden_act`); // throws for an unknown activation
  const eps = r.positive('layer_norm_eps', 1e-5);

  const eos = json.eos_token_id ?? 49407;
  let eosTokenId: number;
  if (typeof eos === 'number' && Number.isInteger(eos)) eosTokenId = eos;
  else if (Array.isArray(eos) && eos.length === 1 && typeof eos[0] === 'number' && Number.isInteger(eos[0])) eosTokenId = eos[0];
  else throw r.error('eos_token_id', `must be one integer, got ${JSON.stringify(eos)}`);

  for (const field of ['position_embedding_type', 'rope_scaling', 'rope_theta']) {
    if (json[field] !== undefined && json[field] !== null && json[field] !== 'absolute') {
      throw r.error(field, `(${JSON.stringify(json[field])}) is not supported: CLIP uses learned absolute positions`);
    }
  }

  return {
    vocabSize: r.int('vocab_size', 49408),
    hiddenSize,
    intermediateSize: r.int('intermediate_size', 2048),
    numHiddenLayers: r.int('num_hidden_layers', 12),
    numAttentionHeads,
    maxPositionEmbeddings: r.int('max_position_embeddings', 77),
    hiddenAct,
    layerNormEps: eps,
    eosTokenId,
    bosTokenId: optInt('bos_token_id'),
    padTokenId: optInt('pad_token_id'),
  };
}
