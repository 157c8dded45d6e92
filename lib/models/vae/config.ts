/**
 * The configuration of diffusers' `AutoencoderKL`, read from a `vae/config.json`, with every value this
 * implementation cannot honour rejected by name. Missing fields take `AutoencoderKL.__init__`'s defaults, as
 * diffusers does.
 */
import type { JsonObject } from '../../io/json.js';
import { ConfigFields, isFiniteNumber, isIntegerAtLeast, showConfigValue as show } from '../../io/config-fields.js';

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
  const r = new ConfigFields(json, source);

  const cls = json._class_name;
  if (cls !== undefined && cls !== 'AutoencoderKL') {
    throw r.error('_class_name', `is ${show(cls)}; only "AutoencoderKL" (the Stable Diffusion VAE) is supported`);
  }

  const isChannels = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every(isIntegerAtLeast(1));
  const blockOutChannels = r.sized('block_out_channels', isChannels, 'a non-empty list of integers >= 1', [64]);
  const n = blockOutChannels.length;

  const blockTypes = (field: string, expected: string): void => {
    const v = json[field] ?? [expected];
    if (!Array.isArray(v) || v.length !== n) {
      throw r.error(field, `must list one block per entry of block_out_channels (${n}), got ${show(v)}`);
    }
    const other = v.find((t) => t !== expected);
    if (other !== undefined) throw r.error(field, `has ${show(other)}; only "${expected}" blocks are supported`);
  };
  blockTypes('down_block_types', 'DownEncoderBlock2D');
  blockTypes('up_block_types', 'UpDecoderBlock2D');

  const normNumGroups = r.int('norm_num_groups', 32);
  const notDivisible = blockOutChannels.find((c) => c % normNumGroups !== 0);
  if (notDivisible !== undefined) {
    throw r.error('norm_num_groups', `(${normNumGroups}) does not divide the block channels ${show(blockOutChannels)} (${notDivisible})`);
  }

  const act = json.act_fn ?? 'silu';
  if (act !== 'silu' && act !== 'swish') throw r.error('act_fn', `is ${show(act)}; only "silu" is supported`);

  const sf = r.field('scaling_factor', (v): v is number => isFiniteNumber(v) && v > 0, 'a positive number', 0.18215);

  // Latent normalisations of other pipelines (SD3/Flux shift, per-channel statistics of SDXL variants): Stable
  // Diffusion 1.x/2.x pipelines scale by scaling_factor alone, so a VAE that needs more is not one of theirs.
  const shift = json.shift_factor;
  if (shift !== undefined && shift !== null && shift !== 0) {
    throw r.error('shift_factor', `(${show(shift)}) is not supported: Stable Diffusion 1.x/2.x latents are only scaled (SD3/Flux VAEs shift them)`);
  }
  for (const field of ['latents_mean', 'latents_std']) {
    const v = json[field];
    if (v !== undefined && v !== null) throw r.error(field, `(${show(v)}) is not supported: Stable Diffusion 1.x/2.x latents are only scaled by scaling_factor`);
  }

  return {
    inChannels: r.int('in_channels', 3),
    outChannels: r.int('out_channels', 3),
    blockOutChannels,
    layersPerBlock: r.int('layers_per_block', 1),
    latentChannels: r.int('latent_channels', 4),
    normNumGroups,
    scalingFactor: sf,
    midBlockAddAttention: r.bool('mid_block_add_attention', true),
    useQuantConv: r.bool('use_quant_conv', true),
    usePostQuantConv: r.bool('use_post_quant_conv', true),
  };
}
