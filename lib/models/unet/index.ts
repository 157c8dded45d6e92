/** Stable Diffusion's UNet: config, blocks, hooks on the cross-attention maps, weight loading. */
export { parseUNetConfig, type UNetConfig } from './config.js';
export { UNet2DConditionModel, type UNetForwardOptions } from './unet-2d-condition.js';
export { AttentionRecorder, AttentionReplay, attentionPaths, crossAttentionPaths, isSegmentedLossHook, type CrossAttentionHook, type SegmentedLossHook } from './hooks.js';
export { Transformer2DModel } from './transformer-2d.js';
export { BasicTransformerBlock } from './basic-transformer-block.js';
export { DownBlock } from './down-blocks.js';
export { UpBlock } from './up-blocks.js';
export { UNetMidBlock2DCrossAttn } from './mid-block.js';
export { TimestepEmbedding, timestepFeatures } from './embeddings.js';
export { unetWeightMap } from './weights.js';
