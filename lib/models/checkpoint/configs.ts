/**
 * The diffusers/transformers configs of the known Stable Diffusion architectures that single-file checkpoints
 * come in (what diffusers' `from_single_file` takes from the Hub for them): SD 1.x (the v1-5 configs) and SD 2.x
 * (the 2-1 configs; 768 px v-prediction, or 512 px epsilon for the base models). A checkpoint does not store
 * the attention heads, group-norm groups or activations; these configs do.
 */
import type { JsonObject } from '../../io/json.js';

/** The architectures a checkpoint may be. */
export type CheckpointArchitecture = 'sd1' | 'sd2';

/** What the noise predictor predicts (diffusers' scheduler `prediction_type`). */
export type PredictionType = 'epsilon' | 'v_prediction';

const DIFFUSERS_VERSION = '0.42.1';

const SD1_UNET: JsonObject = {
  _class_name: 'UNet2DConditionModel',
  _diffusers_version: DIFFUSERS_VERSION,
  act_fn: 'silu',
  addition_embed_type: null,
  addition_embed_type_num_heads: 64,
  addition_time_embed_dim: null,
  attention_head_dim: 8,
  attention_type: 'default',
  block_out_channels: [320, 640, 1280, 1280],
  center_input_sample: false,
  class_embed_type: null,
  class_embeddings_concat: false,
  conv_in_kernel: 3,
  conv_out_kernel: 3,
  cross_attention_dim: 768,
  cross_attention_norm: null,
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  downsample_padding: 1,
  dropout: 0.0,
  dual_cross_attention: false,
  encoder_hid_dim: null,
  encoder_hid_dim_type: null,
  flip_sin_to_cos: true,
  freq_shift: 0,
  in_channels: 4,
  layers_per_block: 2,
  mid_block_only_cross_attention: null,
  mid_block_scale_factor: 1,
  mid_block_type: 'UNetMidBlock2DCrossAttn',
  norm_eps: 1e-5,
  norm_num_groups: 32,
  num_attention_heads: null,
  num_class_embeds: null,
  only_cross_attention: false,
  out_channels: 4,
  projection_class_embeddings_input_dim: null,
  resnet_out_scale_factor: 1.0,
  resnet_skip_time_act: false,
  resnet_time_scale_shift: 'default',
  reverse_transformer_layers_per_block: null,
  sample_size: 64,
  time_cond_proj_dim: null,
  time_embedding_act_fn: null,
  time_embedding_dim: null,
  time_embedding_type: 'positional',
  timestep_post_act: null,
  transformer_layers_per_block: 1,
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
  upcast_attention: false,
  use_linear_projection: false,
};

const VAE: JsonObject = {
  _class_name: 'AutoencoderKL',
  _diffusers_version: DIFFUSERS_VERSION,
  act_fn: 'silu',
  block_out_channels: [128, 256, 512, 512],
  down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D'],
  force_upcast: true,
  in_channels: 3,
  latent_channels: 4,
  latents_mean: null,
  latents_std: null,
  layers_per_block: 2,
  mid_block_add_attention: true,
  norm_num_groups: 32,
  out_channels: 3,
  sample_size: 512,
  scaling_factor: 0.18215,
  shift_factor: null,
  up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D'],
  use_post_quant_conv: true,
  use_quant_conv: true,
};

const SD1_TEXT: JsonObject = {
  architectures: ['CLIPTextModel'],
  attention_dropout: 0.0,
  bos_token_id: 49406,
  dtype: 'float32',
  eos_token_id: 49407,
  hidden_act: 'quick_gelu',
  hidden_size: 768,
  initializer_factor: 1.0,
  initializer_range: 0.02,
  intermediate_size: 3072,
  layer_norm_eps: 1e-5,
  max_position_embeddings: 77,
  model_type: 'clip_text_model',
  num_attention_heads: 12,
  num_hidden_layers: 12,
  pad_token_id: 1,
  projection_dim: 768,
  transformers_version: '5.23.0',
  vocab_size: 49408,
};

const SCHEDULER: JsonObject = {
  _class_name: 'DDIMScheduler',
  _diffusers_version: DIFFUSERS_VERSION,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  clip_sample: false,
  clip_sample_range: 1.0,
  dynamic_thresholding_ratio: 0.995,
  num_train_timesteps: 1000,
  prediction_type: 'epsilon',
  rescale_betas_zero_snr: false,
  sample_max_value: 1.0,
  set_alpha_to_one: false,
  steps_offset: 1,
  thresholding: false,
  timestep_spacing: 'leading',
  trained_betas: null,
};

/** Config keys that are floats in Python: written as `1.0`, not `1` (transformers' strict configs refuse an int there). */
const FLOAT_KEYS = new Set(['dropout', 'attention_dropout', 'initializer_factor', 'resnet_out_scale_factor', 'clip_sample_range', 'sample_max_value', 'dynamic_thresholding_ratio']);

/** A config as JSON text as Python writes it: floats that are whole numbers keep their `.0`. */
export function configJson(config: JsonObject): string {
  return `${JSON.stringify(config, null, 2).replace(/^( *)"([A-Za-z_]+)": (-?\d+)(,?)$/gm, (m, sp: string, k: string, v: string, comma: string) => (FLOAT_KEYS.has(k) ? `${sp}"${k}": ${v}.0${comma}` : m))}\n`;
}

/** The CLIP tokenizer config of SD 1.x (SD 2.x pads with `!`). */
const TOKENIZER: JsonObject = {
  bos_token: '<|startoftext|>',
  do_lower_case: true,
  eos_token: '<|endoftext|>',
  model_max_length: 77,
  pad_token: '<|endoftext|>',
  tokenizer_class: 'CLIPTokenizer',
  unk_token: '<|endoftext|>',
};

/** The configs of a pipeline folder. */
export interface PipelineConfigs {
  readonly unet: JsonObject;
  readonly vae: JsonObject;
  readonly text_encoder: JsonObject;
  readonly scheduler: JsonObject;
  readonly tokenizer: JsonObject;
}

/** The configs of a known architecture with a prediction type (SD 2.x: v-prediction is the 768 px model). */
export function knownConfigs(arch: CheckpointArchitecture, prediction: PredictionType): PipelineConfigs {
  if (arch === 'sd1') {
    return { unet: SD1_UNET, vae: VAE, text_encoder: SD1_TEXT, scheduler: { ...SCHEDULER, prediction_type: prediction }, tokenizer: TOKENIZER };
  }
  const v = prediction === 'v_prediction';
  return {
    unet: { ...SD1_UNET, attention_head_dim: [5, 10, 20, 20], cross_attention_dim: 1024, use_linear_projection: true, upcast_attention: v, sample_size: v ? 96 : 64 },
    vae: { ...VAE, sample_size: v ? 768 : 512 },
    text_encoder: { ...SD1_TEXT, hidden_act: 'gelu', hidden_size: 1024, intermediate_size: 4096, num_attention_heads: 16, num_hidden_layers: 23, projection_dim: 512 },
    scheduler: { ...SCHEDULER, prediction_type: prediction },
    tokenizer: { ...TOKENIZER, pad_token: '!' },
  };
}

/** model_index.json of a Stable Diffusion pipeline folder. */
export const MODEL_INDEX: JsonObject = {
  _class_name: 'StableDiffusionPipeline',
  _diffusers_version: DIFFUSERS_VERSION,
  feature_extractor: [null, null],
  requires_safety_checker: false,
  safety_checker: [null, null],
  scheduler: ['diffusers', 'DDIMScheduler'],
  text_encoder: ['transformers', 'CLIPTextModel'],
  tokenizer: ['transformers', 'CLIPTokenizer'],
  unet: ['diffusers', 'UNet2DConditionModel'],
  vae: ['diffusers', 'AutoencoderKL'],
};
