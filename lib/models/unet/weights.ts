/**
 * The UNet's weight-name map. diffusers' state-dict names are the block tree's own names, so the map is the
 * identity; it exists so that checkpoints in other namings have one place to be translated.
 */
import { type ShapeBinding, countBinding } from '../config-shapes.js';
import type { WeightNameMap } from '../load-weights.js';
import type { UNetConfig } from './config.js';

export const unetWeightMap: WeightNameMap = {
  toCheckpoint: (name) => name,
};

/** What the UNet config says about its checkpoint's shapes (checked before the model is built). */
export function unetShapeBindings(c: UNetConfig): ShapeBinding[] {
  const n = c.blockOutChannels.length;
  return [
    { key: 'in_channels', value: c.inChannels, tensor: 'conv_in.weight', dim: 1 },
    { key: 'out_channels', value: c.outChannels, tensor: 'conv_out.weight', dim: 0 },
    { key: 'time_embedding_dim', value: c.timeEmbeddingDim, tensor: 'time_embedding.linear_1.weight', dim: 0 },
    { key: 'cross_attention_dim', value: c.crossAttentionDim, tensor: 'mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight', dim: 1 },
    countBinding('the length of block_out_channels', n, 'down_blocks', 'resnets.0.conv1.weight'),
    countBinding('layers_per_block', c.layersPerBlock, 'down_blocks.0.resnets', 'conv1.weight'),
    ...c.blockOutChannels.map((ch, i) => ({ key: `block_out_channels[${i}]`, value: ch, tensor: `down_blocks.${i}.resnets.0.conv2.weight`, dim: 0 })),
  ];
}
