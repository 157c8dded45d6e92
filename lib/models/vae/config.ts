/**
 * The configuration of diffusers' `AutoencoderKL`, read from a `vae/config.json`, with every value this
 * implementation cannot honour rejected by name. Missing fields take `AutoencoderKL.__init__`'s defaults, as
 * diffusers does.
 */
import type { JsonObject } from '../../io/json.js';
import { assertConfigSize } from '../config-shapes.js';

/** The fields of an `AutoencoderKL` config that shape the model and its latents. */
export interface VaeConfig {
  /** Image channels in (3). */
  readonly inChannels: number;
  /** Image channels out (3). */
  readonly outChannels: number;
  /** Channels of each encoder block (reversed for the decoder); the image is downscaled 2^(n-1) times. */
  readonly blockOutChannels: readonly number[];
  /** Resnets per encoder block (the decoder's blocks have one more). */
  readonly layersPerBlock: number;
  /** Channels of the latent (4 for Stable Diffusion). */
  readonly latentChannels: number;
  /** GroupNorm groups of every normalisation. */
  readonly normNumGroups: number;
  /** Latents the diffusion model sees are `scalingFactor` times the VAE's (0.18215 for SD 1.x). */
  readonly scalingFactor: number;
  /** Whether the encoder's and decoder's mid blocks have self-attention. */
  readonly midBlockAddAttention: boolean;
  /** Whether a 1x1 `quant_conv` follows the encoder. */
  readonly useQuantConv: boolean;
  /** Whether a 1x1 `post_quant_conv` precedes the decoder. */
  readonly usePostQuantConv: boolean;
}

/** The downscale factor from image to latent: 2 to the number of downsampling blocks (8 for SD). */
export function vaeDownscale(config: VaeConfig): number {
  return 2 ** (config.blockOutChannels.length - 1);
}

/**
 * Parses and checks a diffusers `AutoencoderKL` config (`vae/config.json`). `source` names the file in errors.
 * @throws Error naming the field for a wrong type, an impossible value or an unsupported feature.
 */
export function parseVaeConfig(json: JsonObject, source = 'VAE config'): VaeConfig {
  const bad = (field: string, why: string): Error => new Error(`${source}: ${field} ${why}`);
  const show = (v: unknown): string => JSON.stringify(v) ?? String(v);
  const int = (field: string, fallback: number): number => {
    const v = json[field] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw bad(field, `must be an integer >= 1, got ${show(v)}`);
    assertConfigSize(source, field, v);
    return v;
  };
  const bool = (field: string, fallback: boolean): boolean => {
    const v = json[field] ?? fallback;
    if (typeof v !== 'boolean') throw bad(field, `must be true or false, got ${show(v)}`);
    return v;
  };

  const cls = json._class_name;
  if (cls !== undefined && cls !== 'AutoencoderKL') {
    throw bad('_class_name', `is ${show(cls)}; only "AutoencoderKL" (the Stable Diffusion VAE) is supported`);
  }

  const channels = json.block_out_channels ?? [64];
  if (!Array.isArray(channels) || channels.length === 0 || !channels.every((c) => typeof c === 'number' && Number.isInteger(c) && c >= 1)) {
    throw bad('block_out_channels', `must be a non-empty list of integers >= 1, got ${show(channels)}`);
  }
  const blockOutChannels = channels as number[];
  blockOutChannels.forEach((c, i) => assertConfigSize(source, `block_out_channels[${i}]`, c));
  const n = blockOutChannels.length;

  const blockTypes = (field: string, expected: string): void => {
    const v = json[field] ?? [expected];
    if (!Array.isArray(v) || v.length !== n) {
      throw bad(field, `must list one block per entry of block_out_channels (${n}), got ${show(v)}`);
    }
    const other = v.find((t) => t !== expected);
    if (other !== undefined) throw bad(field, `has ${show(other)}; only "${expected}" blocks are supported`);
  };
  blockTypes('down_block_types', 'DownEncoderBlock2D');
  blockTypes('up_block_types', 'UpDecoderBlock2D');

  const normNumGroups = int('norm_num_groups', 32);
  const notDivisible = blockOutChannels.find((c) => c % normNumGroups !== 0);
  if (notDivisible !== undefined) {
    throw bad('norm_num_groups', `(${normNumGroups}) does not divide the block channels ${show(blockOutChannels)} (${notDivisible})`);
  }

  const act = json.act_fn ?? 'silu';
  if (act !== 'silu' && act !== 'swish') throw bad('act_fn', `is ${show(act)}; only "silu" is supported`);

  const sf = json.scaling_factor ?? 0.18215;
  if (typeof sf !== 'number' || !Number.isFinite(sf) || sf <= 0) throw bad('scaling_factor', `must be a positive number, got ${show(sf)}`);

  // Latent normalisations of other pipelines (SD3/Flux shift, per-channel statistics of SDXL variants): Stable
  // Diffusion 1.x/2.x pipelines scale by scaling_factor alone, so a VAE that needs more is not one of theirs.
  const shift = json.shift_factor;
  if (shift !== undefined && shift !== null && shift !== 0) {
    throw bad('shift_factor', `(${show(shift)}) is not supported: Stable Diffusion 1.x/2.x latents are only scaled (SD3/Flux VAEs shift them)`);
  }
  for (const field of ['latents_mean', 'latents_std']) {
    const v = json[field];
    if (v !== undefined && v !== null) throw bad(field, `(${show(v)}) is not supported: Stable Diffusion 1.x/2.x latents are only scaled by scaling_factor`);
  }

  return {
    inChannels: int('in_channels', 3),
    outChannels: int('out_channels', 3),
    blockOutChannels,
    layersPerBlock: int('layers_per_block', 1),
    latentChannels: int('latent_channels', 4),
    normNumGroups,
    scalingFactor: sf,
    midBlockAddAttention: bool('mid_block_add_attention', true),
    useQuantConv: bool('use_quant_conv', true),
    usePostQuantConv: bool('use_post_quant_conv', true),
  };
}
