/**
 * Where a `BlipForConditionalGeneration`'s tensors are in its checkpoint, and loading the model from a BLIP folder.
 *
 * The LM head's output matrix is tied to the word embeddings (`cls.predictions.decoder.weight`); checkpoints that
 * still store it (or its bias copy), and buffers such as `position_ids`, are not used.
 */
import * as path from 'node:path';
import type { WeightSource } from '../../io/weights.js';
import { type ComponentFolder, readComponentFolder } from '../../io/model-folder.js';
import { type WeightNameMap, loadFromComponent, loadWeights } from '../load-weights.js';
import { parseBlipConfig } from './config.js';
import { BlipForConditionalGeneration } from './model.js';

const UNUSED = /(^|\.)position_ids$|^text_decoder\.cls\.predictions\.decoder\.(weight|bias)$/;

/** The weight-name map of BLIP checkpoints (names as the model's; tied and buffer tensors ignored). */
export const BLIP_WEIGHT_MAP: WeightNameMap = { ignore: (name) => UNUSED.test(name) };

/** Copies `source`'s tensors into `model` (strict: anything missing, extra or mis-shaped is one error). */
export function loadBlipWeights(model: BlipForConditionalGeneration, source: WeightSource): void {
  loadWeights(model, source, BLIP_WEIGHT_MAP);
}

/**
 * Builds a `BlipForConditionalGeneration` from a BLIP folder (`config.json` + `model.safetensors`, as a path or an
 * already read {@link ComponentFolder}) and loads its weights. The caller frees it with `disposeAll()`.
 */
export function loadBlipModel(folder: string | ComponentFolder): BlipForConditionalGeneration {
  const component = typeof folder === 'string' ? readComponentFolder(folder, 'BLIP') : folder;
  const config = parseBlipConfig(component.config, path.join(component.dir, 'config.json'));
  return loadFromComponent(new BlipForConditionalGeneration(config), component, loadBlipWeights);
}
