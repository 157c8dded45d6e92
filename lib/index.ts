/**
 * pix2pix-zero for TensorFlow.js: the public API.
 */
export { initBackend, currentBackend, BACKEND_ENV, type BackendName, type BackendChoice, type BackendInfo, type BackendOptions } from './backend.js';
export { SafetensorsFile, SafetensorsError, writeSafetensors, writeSafetensorsBytes, readSafetensorsHeader, type TensorInfo, type TensorData, type TensorToWrite, type TensorBytesToWrite } from './io/safetensors.js';
export type { SafetensorsDType } from './io/dtypes.js';
export { SafetensorsWeights, ShardedSafetensorsWeights, type WeightSource } from './io/weights.js';
export { TfjsWeights, writeTfjsWeights, readTfjsModelJson, type TfjsModelJson, type TfjsWriteOptions, type TfjsWriteResult } from './io/tfjs-weights.js';
export { convertModelFolder, type ConvertOptions, type ConvertReport } from './models/convert-folder.js';
export { convertCheckpoint, readCheckpointInfo, isSingleFileCheckpoint, type CheckpointConvertOptions, type CheckpointConvertReport, type CheckpointInfo } from './models/checkpoint/single-file.js';
export { CheckpointNameMap, type CheckpointLayout, type NamePair, type TensorForm } from './models/checkpoint/names.js';
export { knownConfigs, type CheckpointArchitecture, type PredictionType } from './models/checkpoint/configs.js';
export { checkpointFolder, type CheckpointModelOptions } from './models/checkpoint/cache.js';
export {
  readComponentFolder,
  readStableDiffusionFolder,
  readBlipFolder,
  readTokenizerFolder,
  findWeightFiles,
  type FoundWeights,
  type WeightVariantOptions,
  type ComponentFolder,
  type StableDiffusionFolder,
  type BlipFolder,
  type TokenizerFiles,
} from './io/model-folder.js';
export { createContainer, resolveService, type ServiceOverrides } from './container.js';
export * from './editing/services.js';
export { DEFAULT_MODEL, MODEL_ENV, defaultModel } from './paths.js';
export * from './models/clip-text/index.js';
export * from './models/unet/index.js';
export { CrossAttentionLoss } from './editing/cross-attention-loss.js';
export * from './models/blip/index.js';
export {
  ClipTextEmbedder,
  TEXT_ENCODER_SOURCE,
  TEXT_EMBEDDER_OPTIONS,
  DEFAULT_BATCH_SIZE,
  type TextEncoderSource,
  type TextEmbedderOptions,
  type EmbedOptions,
} from './editing/text-embedder.js';
export { AUTHORS_CAPTION_OPTIONS, BlipCaptioner, blipCaptionerFactory, type CaptionOptions, type CaptionResult } from './editing/captioner.js';
export { SETTINGS, inRange, isStepCount, assertStepCount, rangeText, flagWithDefault, type PipelineSettings, type RangeSetting, type NumberSetting, type ChoiceSetting, type CaptionSettings } from './settings.js';
export { Pix2PixZero, Direction, Inversion, type Pix2PixZeroLoadOptions, type Pix2PixZeroInvertOptions, type Pix2PixZeroEditOptions, type LocalBlendSettings, type InvertOptions, type EditCallOptions, type EditResult, type ImageInput } from './pix2pix-zero.js';
export { Pix2PixZeroCaptioner, type Pix2PixZeroCaptionerLoadOptions } from './pix2pix-zero-captioner.js';
export { Pix2PixZeroTextEmbedder, type Pix2PixZeroTextEmbedderLoadOptions, type Pix2PixZeroEmbedOptions } from './pix2pix-zero-text-embedder.js';
export { readImage, writePng, prepareImage, imageToTensor, tensorToImage, type RgbImage, type PrepareOptions } from './io/image.js';
export { DDIMScheduler } from './schedulers/ddim.js';
export { DDIMInverseScheduler } from './schedulers/ddim-inverse.js';
export type { Scheduler, SchedulerFactory, SchedulerRole, SchedulerStepOutput } from './schedulers/scheduler.js';
export { ConfigSchedulerFactory, registerScheduler, registeredSchedulers, DDIM_COMPATIBLE, type SchedulerEntry } from './schedulers/factory.js';
export { directInversion } from './editing/direct-inversion.js';
export { overlayOutsideMask } from './editing/overlay.js';
export { localBlend, wordTokenPositions, assertBlendThreshold, assertBlendDilation, assertBlendStart, defaultBlendDilation, type LocalBlendOptions, type WordTokenOptions } from './editing/local-blend.js';
export { chainStepEndHooks } from './editing/step-end-hooks.js';
export { TorchGenerator } from './random/torch-generator.js';
export { builtinConcepts, builtinSentences, hasBuiltinBank, readSentenceFile, chatSentences } from './editing/sentences.js';
export { generateSentences, indefiniteArticle, conceptNumber, normalizeConcept, DEFAULT_GENERATED_SENTENCES, type SentenceGeneratorOptions } from './editing/sentence-generator.js';
