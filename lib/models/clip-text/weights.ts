/**
 * Where a `CLIPTextModel`'s tensors are in its checkpoint, and how they are loaded (`CLIPTextModel.fromFolder`
 * builds a model from a `text_encoder/` folder with them).
 *
 * Checkpoints name the tensors `text_model.<name>` (diffusers pipelines, transformers 4.x) or `<name>`
 * (transformers 5.x saves `CLIPTextModel` without the prefix); both are read. The `position_ids` buffer that older
 * checkpoints hold, and the `text_projection` of a `CLIPTextModelWithProjection`, are not used.
 */
import type { WeightSource } from '../../io/weights.js';
import { type WeightNameMap, loadWeights } from '../load-weights.js';
import { type ShapeBinding, countBinding } from '../config-shapes.js';
import type { ClipTextConfig } from './config.js';
import type { CLIPTextModel } from './model.js';

/** The prefix of the text tower's tensors in transformers 4.x / diffusers checkpoints. */
export const TEXT_MODEL_PREFIX = 'text_model.';

const UNUSED = /^(text_model\.)?embeddings\.position_ids$|^text_projection\.weight$/;

/** The weight-name map for a checkpoint with these tensor names (prefixed or not, decided by the names). */
export function clipTextWeightMap(checkpointNames: readonly string[]): WeightNameMap {
  const prefixed = checkpointNames.some((n) => n.startsWith(TEXT_MODEL_PREFIX));
  return {
    toCheckpoint: (name) => (prefixed ? TEXT_MODEL_PREFIX + name : name),
    ignore: (name) => UNUSED.test(name),
  };
}

/** Copies `source`'s tensors into `model` (strict: anything missing, extra or mis-shaped is one error). */
export function loadClipTextWeights(model: CLIPTextModel, source: WeightSource): void {
  loadWeights(model, source, clipTextWeightMap(source.names()));
}

/** What the text encoder config says about its checkpoint's shapes (checked before the model is built). */
export function clipTextShapeBindings(c: ClipTextConfig): ShapeBinding[] {
  return [
    { key: 'vocab_size', value: c.vocabSize, tensor: 'embeddings.token_embedding.weight', dim: 0 },
    { key: 'hidden_size', value: c.hiddenSize, tensor: 'embeddings.token_embedding.weight', dim: 1 },
    { key: 'max_position_embeddings', value: c.maxPositionEmbeddings, tensor: 'embeddings.position_embedding.weight', dim: 0 },
    { key: 'intermediate_size', value: c.intermediateSize, tensor: 'encoder.layers.0.mlp.fc1.weight', dim: 0 },
    countBinding('num_hidden_layers', c.numHiddenLayers, 'encoder.layers', 'self_attn.q_proj.weight'),
  ];
}
