/**
 * Where a `BlipForConditionalGeneration`'s tensors are in its checkpoint, and how they are loaded
 * (`BlipForConditionalGeneration.fromFolder` builds the model from a BLIP folder with them).
 *
 * The LM head's output matrix is tied to the word embeddings (`cls.predictions.decoder.weight`); checkpoints that
 * still store it (or its bias copy), and buffers such as `position_ids`, are not used.
 */
import type { WeightSource } from '../../io/weights.js';
import { type WeightNameMap, loadWeights } from '../load-weights.js';
import { type ShapeBinding, countBinding } from '../config-shapes.js';
import type { BlipConfig } from './config.js';
import type { BlipForConditionalGeneration } from './model.js';

const UNUSED = /(^|\.)position_ids$|^text_decoder\.cls\.predictions\.decoder\.(weight|bias)$/;

/** The weight-name map of BLIP checkpoints (names as the model's; tied and buffer tensors ignored). */
export const BLIP_WEIGHT_MAP: WeightNameMap = { ignore: (name) => UNUSED.test(name) };

/** Copies `source`'s tensors into `model` (strict: anything missing, extra or mis-shaped is one error). */
export function loadBlipWeights(model: BlipForConditionalGeneration, source: WeightSource): void {
  loadWeights(model, source, BLIP_WEIGHT_MAP);
}

/** What the BLIP config says about its checkpoint's shapes (checked before the model is built). */
export function blipShapeBindings(c: BlipConfig): ShapeBinding[] {
  const v = c.vision;
  const t = c.text;
  const text = 'text_decoder.bert';
  return [
    { key: 'vision_config.hidden_size', value: v.hiddenSize, tensor: 'vision_model.embeddings.patch_embedding.weight', dim: 0 },
    { key: 'vision_config.num_channels', value: v.numChannels, tensor: 'vision_model.embeddings.patch_embedding.weight', dim: 1 },
    { key: 'vision_config.patch_size', value: v.patchSize, tensor: 'vision_model.embeddings.patch_embedding.weight', dim: 2 },
    ...(v.numHiddenLayers > 0
      ? [
          { key: 'vision_config.intermediate_size', value: v.intermediateSize, tensor: 'vision_model.encoder.layers.0.mlp.fc1.weight', dim: 0 },
          countBinding('vision_config.num_hidden_layers', v.numHiddenLayers, 'vision_model.encoder.layers', 'mlp.fc1.weight'),
        ]
      : []),
    { key: 'text_config.vocab_size', value: t.vocabSize, tensor: `${text}.embeddings.word_embeddings.weight`, dim: 0 },
    { key: 'text_config.hidden_size', value: t.hiddenSize, tensor: `${text}.embeddings.word_embeddings.weight`, dim: 1 },
    { key: 'text_config.max_position_embeddings', value: t.maxPositionEmbeddings, tensor: `${text}.embeddings.position_embeddings.weight`, dim: 0 },
    ...(t.numHiddenLayers > 0
      ? [
          { key: 'text_config.intermediate_size', value: t.intermediateSize, tensor: `${text}.encoder.layer.0.intermediate.dense.weight`, dim: 0 },
          countBinding('text_config.num_hidden_layers', t.numHiddenLayers, `${text}.encoder.layer`, 'intermediate.dense.weight'),
        ]
      : []),
  ];
}
