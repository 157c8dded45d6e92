/**
 * The `UNet2DConditionModel` configuration (diffusers' `unet/config.json`) for the Stable Diffusion 1.x and 2.x
 * families, validated: anything this port does not implement is refused with the field's name.
 */
import type { JsonObject } from '../../io/json.js';
import { ConfigFields, isFiniteNumber, isIntegerAtLeast } from '../../io/config-fields.js';

export type DownBlockType = 'CrossAttnDownBlock2D' | 'DownBlock2D';
export type UpBlockType = 'CrossAttnUpBlock2D' | 'UpBlock2D';

export interface UNetConfig {
  inChannels: number;
  outChannels: number;
  blockOutChannels: number[];
  downBlockTypes: DownBlockType[];
  upBlockTypes: UpBlockType[];
  layersPerBlock: number;
  crossAttentionDim: number;
  /** Width of the time embedding (diffusers' `time_embedding_dim`, default 4 x the first block's channels). */
  timeEmbeddingDim: number;
  /** Heads per down block (diffusers' `num_attention_heads`, which SD configs give as `attention_head_dim`). */
  numAttentionHeads: number[];
  normNumGroups: number;
  normEps: number;
  useLinearProjection: boolean;
  upcastAttention: boolean;
  flipSinToCos: boolean;
  freqShift: number;
  downsamplePadding: number;
  centerInputSample: boolean;
  sampleSize?: number;
}

const posInt = isIntegerAtLeast(1);
const POSITIVE = 'a positive integer';

/** Fields whose non-default values this port does not implement, with the default it supports. */
const UNSUPPORTED: [string, unknown][] = [
  ['only_cross_attention', false],
  ['dual_cross_attention', false],
  ['class_embed_type', null],
  ['addition_embed_type', null],
  ['encoder_hid_dim', null],
  ['time_embedding_type', 'positional'],
  ['resnet_time_scale_shift', 'default'],
  ['mid_block_type', 'UNetMidBlock2DCrossAttn'],
  ['num_class_embeds', null],
  ['conv_in_kernel', 3],
  ['conv_out_kernel', 3],
  ['time_cond_proj_dim', null],
  ['cross_attention_norm', null],
  ['resnet_skip_time_act', false],
  ['act_fn', 'silu'],
  ['attention_type', 'default'],
  ['time_embedding_act_fn', null],
  ['timestep_post_act', null],
  ['mid_block_scale_factor', 1],
  ['encoder_hid_dim_type', null],
  ['class_embeddings_concat', false],
  ['reverse_transformer_layers_per_block', null],
];

/** Parses and validates a diffusers UNet config. */
export function parseUNetConfig(c: JsonObject): UNetConfig {
  const r = new ConfigFields(c, 'UNet config');
  for (const [key, supported] of UNSUPPORTED) {
    const v = c[key];
    const isDefault = v === undefined || v === null || v === supported || (Array.isArray(v) && v.every((x) => x === supported));
    if (!isDefault) throw r.error(key, `= ${JSON.stringify(v)} is not supported (only ${JSON.stringify(supported)})`);
  }
  const tlpb = c.transformer_layers_per_block;
  if (tlpb !== undefined && tlpb !== null && tlpb !== 1 && !(Array.isArray(tlpb) && tlpb.every((x) => x === 1))) {
    throw r.error('transformer_layers_per_block', `= ${JSON.stringify(tlpb)} is not supported (only 1)`);
  }
  const boc = r.sized('block_out_channels', (v): v is number[] => Array.isArray(v) && v.length > 0 && v.every(posInt), 'a list of positive integers');
  const down = r.sized('down_block_types', (v): v is DownBlockType[] => Array.isArray(v) && v.every((x) => x === 'CrossAttnDownBlock2D' || x === 'DownBlock2D'), "a list of 'CrossAttnDownBlock2D' / 'DownBlock2D'");
  const up = r.sized('up_block_types', (v): v is UpBlockType[] => Array.isArray(v) && v.every((x) => x === 'CrossAttnUpBlock2D' || x === 'UpBlock2D'), "a list of 'CrossAttnUpBlock2D' / 'UpBlock2D'");
  if (down.length !== boc.length || up.length !== boc.length) {
    throw new Error(`UNet config: ${boc.length} block_out_channels but ${down.length} down and ${up.length} up block types`);
  }
  const layersPerBlock = r.int('layers_per_block', 2, 1, POSITIVE);
  const headsRaw = c.num_attention_heads ?? c.attention_head_dim ?? 8;
  const heads = Array.isArray(headsRaw) ? headsRaw : boc.map(() => headsRaw);
  if (!heads.every(posInt) || heads.length !== boc.length) {
    throw new Error(`UNet config: 'attention_head_dim' / 'num_attention_heads' must be a positive integer or one per block, got ${JSON.stringify(headsRaw)}`);
  }
  const crossDim = r.int('cross_attention_dim', 1280, 1, POSITIVE);
  if (c.norm_num_groups === null) throw r.error('norm_num_groups', '= null (no normalisation) is not supported');
  const groups = r.int('norm_num_groups', 32, 1, POSITIVE);
  for (const ch of boc) {
    if (ch % groups !== 0) throw new Error(`UNet config: block_out_channels ${ch} is not divisible by norm_num_groups ${groups}`);
  }
  heads.forEach((h, i) => {
    if (boc[i]! % (h as number) !== 0) throw new Error(`UNet config: block ${i} has ${boc[i]} channels, not divisible into ${h} heads`);
  });
  return {
    inChannels: r.int('in_channels', 4, 1, POSITIVE),
    outChannels: r.int('out_channels', 4, 1, POSITIVE),
    blockOutChannels: boc,
    downBlockTypes: down,
    upBlockTypes: up,
    layersPerBlock,
    crossAttentionDim: crossDim,
    timeEmbeddingDim: r.int('time_embedding_dim', boc[0]! * 4, 1, POSITIVE),
    numAttentionHeads: heads as number[],
    normNumGroups: groups,
    normEps: r.sized('norm_eps', isFiniteNumber, 'a number', 1e-5),
    useLinearProjection: r.bool('use_linear_projection', false, 'a boolean'),
    upcastAttention: r.bool('upcast_attention', false, 'a boolean'),
    flipSinToCos: r.bool('flip_sin_to_cos', true, 'a boolean'),
    freqShift: r.sized('freq_shift', isFiniteNumber, 'a number', 0),
    downsamplePadding: r.int('downsample_padding', 1, 0, 'a non-negative integer'),
    centerInputSample: r.bool('center_input_sample', false, 'a boolean'),
    sampleSize: isFiniteNumber(c.sample_size) ? c.sample_size : undefined,
  };
}
