/**
 * The `UNet2DConditionModel` configuration (diffusers' `unet/config.json`) for the Stable Diffusion 1.x and 2.x
 * families, validated: anything this port does not implement is refused with the field's name.
 */
import type { JsonObject } from '../../io/json.js';
import { assertConfigSize } from '../config-shapes.js';

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

const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const posInt = (v: unknown): v is number => num(v) && Number.isInteger(v) && v > 0;

function get<T>(c: JsonObject, key: string, ok: (v: unknown) => v is T, expected: string, fallback?: T): T {
  const v = c[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new Error(`UNet config: '${key}' is missing (expected ${expected})`);
  }
  if (!ok(v)) throw new Error(`UNet config: '${key}' must be ${expected}, got ${JSON.stringify(v)}`);
  for (const [i, x] of (Array.isArray(v) ? v : [v]).entries()) {
    if (typeof x === 'number' && Number.isInteger(x)) assertConfigSize('UNet config', Array.isArray(v) ? `'${key}'[${i}]` : `'${key}'`, x);
  }
  return v;
}

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
  for (const [key, supported] of UNSUPPORTED) {
    const v = c[key];
    const isDefault = v === undefined || v === null || v === supported || (Array.isArray(v) && v.every((x) => x === supported));
    if (!isDefault) throw new Error(`UNet config: '${key}' = ${JSON.stringify(v)} is not supported (only ${JSON.stringify(supported)})`);
  }
  const tlpb = c.transformer_layers_per_block;
  if (tlpb !== undefined && tlpb !== null && tlpb !== 1 && !(Array.isArray(tlpb) && tlpb.every((x) => x === 1))) {
    throw new Error(`UNet config: 'transformer_layers_per_block' = ${JSON.stringify(tlpb)} is not supported (only 1)`);
  }
  const boc = get(c, 'block_out_channels', (v): v is number[] => Array.isArray(v) && v.length > 0 && v.every(posInt), 'a list of positive integers');
  const down = get(c, 'down_block_types', (v): v is DownBlockType[] => Array.isArray(v) && v.every((x) => x === 'CrossAttnDownBlock2D' || x === 'DownBlock2D'), "a list of 'CrossAttnDownBlock2D' / 'DownBlock2D'");
  const up = get(c, 'up_block_types', (v): v is UpBlockType[] => Array.isArray(v) && v.every((x) => x === 'CrossAttnUpBlock2D' || x === 'UpBlock2D'), "a list of 'CrossAttnUpBlock2D' / 'UpBlock2D'");
  if (down.length !== boc.length || up.length !== boc.length) {
    throw new Error(`UNet config: ${boc.length} block_out_channels but ${down.length} down and ${up.length} up block types`);
  }
  const layersPerBlock = get(c, 'layers_per_block', (v): v is number => posInt(v), 'a positive integer', 2);
  const headsRaw = c.num_attention_heads ?? c.attention_head_dim ?? 8;
  const heads = Array.isArray(headsRaw) ? headsRaw : boc.map(() => headsRaw);
  if (!heads.every(posInt) || heads.length !== boc.length) {
    throw new Error(`UNet config: 'attention_head_dim' / 'num_attention_heads' must be a positive integer or one per block, got ${JSON.stringify(headsRaw)}`);
  }
  const crossDim = get(c, 'cross_attention_dim', (v): v is number => posInt(v), 'a positive integer', 1280);
  if (c.norm_num_groups === null) throw new Error("UNet config: 'norm_num_groups' = null (no normalisation) is not supported");
  const groups = get(c, 'norm_num_groups', (v): v is number => posInt(v), 'a positive integer', 32);
  for (const ch of boc) {
    if (ch % groups !== 0) throw new Error(`UNet config: block_out_channels ${ch} is not divisible by norm_num_groups ${groups}`);
  }
  heads.forEach((h, i) => {
    if (boc[i]! % (h as number) !== 0) throw new Error(`UNet config: block ${i} has ${boc[i]} channels, not divisible into ${h} heads`);
  });
  return {
    inChannels: get(c, 'in_channels', (v): v is number => posInt(v), 'a positive integer', 4),
    outChannels: get(c, 'out_channels', (v): v is number => posInt(v), 'a positive integer', 4),
    blockOutChannels: boc,
    downBlockTypes: down,
    upBlockTypes: up,
    layersPerBlock,
    crossAttentionDim: crossDim,
    timeEmbeddingDim: get(c, 'time_embedding_dim', (v): v is number => posInt(v), 'a positive integer', boc[0]! * 4),
    numAttentionHeads: heads as number[],
    normNumGroups: groups,
    normEps: get(c, 'norm_eps', num, 'a number', 1e-5),
    useLinearProjection: get(c, 'use_linear_projection', (v): v is boolean => typeof v === 'boolean', 'a boolean', false),
    upcastAttention: get(c, 'upcast_attention', (v): v is boolean => typeof v === 'boolean', 'a boolean', false),
    flipSinToCos: get(c, 'flip_sin_to_cos', (v): v is boolean => typeof v === 'boolean', 'a boolean', true),
    freqShift: get(c, 'freq_shift', num, 'a number', 0),
    downsamplePadding: get(c, 'downsample_padding', (v): v is number => num(v) && Number.isInteger(v) && v >= 0, 'a non-negative integer', 1),
    centerInputSample: get(c, 'center_input_sample', (v): v is boolean => typeof v === 'boolean', 'a boolean', false),
    sampleSize: num(c.sample_size) ? c.sample_size : undefined,
  };
}
