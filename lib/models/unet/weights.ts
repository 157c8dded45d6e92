/**
 * The UNet's weight-name map. diffusers' state-dict names are the block tree's own names, so the map is the
 * identity; it exists so that checkpoints in other namings have one place to be translated.
 */
import type { WeightNameMap } from '../load-weights.js';

export const unetWeightMap: WeightNameMap = {
  toCheckpoint: (name) => name,
};
