/**
 * Stable Diffusion's VAE (diffusers' `AutoencoderKL`): config, blocks, posterior, weight names, the model.
 */
export { parseVaeConfig, vaeDownscale, type VaeConfig } from './config.js';
export { DownEncoderBlock2D, UpDecoderBlock2D, UNetMidBlock2D, sequential, VAE_EPS, type Step } from './blocks.js';
export type { DownEncoderBlock2DConfig, UpDecoderBlock2DConfig, UNetMidBlock2DConfig } from './blocks.js';
export { conv2dForInference, downsampleForInference, groupNormForInference, resnetForInference, siluForInference, upsampleForInference } from './inference.js';
export { Encoder } from './encoder.js';
export { Decoder } from './decoder.js';
export { DiagonalGaussianDistribution, LOGVAR_RANGE, torchRandnNHWC, type NoiseSource } from './distribution.js';
export { torchRandn } from './torch-randn.js';
export {
  ConvAsLinearWeights,
  detectVaeCheckpointFormat,
  diffusersToLdmName,
  loadVaeWeights,
  vaeWeightMap,
  type VaeCheckpointFormat,
} from './weights.js';
export { AutoencoderKL, type EncodeLatentsOptions } from './autoencoder-kl.js';
