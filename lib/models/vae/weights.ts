/**
 * Where an `AutoencoderKL`'s tensors are in its checkpoint. Three namings are read, decided by the names:
 *
 * - diffusers' current names (`encoder.mid_block.attentions.0.to_q.weight`, ...);
 * - diffusers' deprecated attention names of older VAE checkpoints (`query`, `key`, `value`, `proj_attn` in
 *   place of `to_q`, `to_k`, `to_v`, `to_out.0`), which diffusers renames on load
 *   (`ModelMixin._fix_state_dict_keys_on_load`), per tensor;
 * - the original (CompVis / LDM) names of Stable Diffusion's own checkpoints, with or without a prefix such as
 *   `first_stage_model.` (`encoder.down.0.block.1.nin_shortcut.weight`, `decoder.up.3.upsample.conv.weight`,
 *   `encoder.mid.attn_1.q.weight`, `encoder.norm_out.weight`), as diffusers' single-file loader converts them;
 *   their attention projections are 1x1 convolutions [C, C, 1, 1], read as the linear [C, C] they are. With a
 *   prefix, tensors outside it (the UNet, text encoder and EMA of a full checkpoint) are not used.
 *
 * Loading stays strict: anything missing, left over or mis-shaped fails the load, naming the checkpoint tensor.
 */
import type { TensorData } from '../../io/safetensors.js';
import type { WeightSource } from '../../io/weights.js';
import { type ShapeBinding, countBinding } from '../config-shapes.js';
import { type WeightNameMap, loadWeights } from '../load-weights.js';
import type { VaeConfig } from './config.js';
import type { Module } from '../layers/module.js';

/** The naming of a VAE checkpoint. */
export interface VaeCheckpointFormat {
  /** `diffusers` (current or deprecated attention names) or `ldm` (Stable Diffusion's original names). */
  readonly kind: 'diffusers' | 'ldm';
  /** The prefix of the VAE's tensors (`first_stage_model.` in a full LDM checkpoint, else empty). */
  readonly prefix: string;
}

/** Decides a checkpoint's naming from its tensor names. */
export function detectVaeCheckpointFormat(names: readonly string[]): VaeCheckpointFormat {
  const ldm = names.some((n) => /(^|\.)encoder\.down\.\d+\.|(^|\.)decoder\.up\.\d+\.|(^|\.)(encoder|decoder)\.mid\.(block_\d|attn_1)\./.test(n));
  if (!ldm) return { kind: 'diffusers', prefix: '' };
  const anchored = names.filter((n) => n.endsWith('encoder.conv_in.weight') && !n.endsWith('.decoder.conv_in.weight'));
  const prefixes = anchored.map((n) => n.slice(0, n.length - 'encoder.conv_in.weight'.length)).filter((p) => p === '' || p.endsWith('.'));
  // One VAE per checkpoint: prefer the unprefixed one, else the first_stage_model one, else the first found.
  const prefix = prefixes.includes('') ? '' : prefixes.includes('first_stage_model.') ? 'first_stage_model.' : (prefixes[0] ?? '');
  return { kind: 'ldm', prefix };
}

const DEPRECATED: Record<string, string> = { to_q: 'query', to_k: 'key', to_v: 'value', 'to_out.0': 'proj_attn' };
const ATTENTION = /^(.*\.attentions\.\d+)\.(to_q|to_k|to_v|to_out\.0)\.(weight|bias)$/;
const LDM_ATTENTION: Record<string, string> = { group_norm: 'norm', to_q: 'q', to_k: 'k', to_v: 'v', 'to_out.0': 'proj_out' };

/**
 * The LDM name of a diffusers `AutoencoderKL` tensor, for a VAE of `numBlocks` blocks (LDM numbers the decoder's
 * blocks from the lowest resolution up: diffusers' `up_blocks.i` is LDM's `up.(numBlocks - 1 - i)`).
 */
export function diffusersToLdmName(name: string, numBlocks: number): string {
  let m: RegExpMatchArray | null;
  const resnetRest = (rest: string): string => rest.replace(/^conv_shortcut\./, 'nin_shortcut.');
  if ((m = name.match(/^(encoder|decoder)\.conv_norm_out\.(.*)$/))) return `${m[1]}.norm_out.${m[2]}`;
  if ((m = name.match(/^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)$/))) return `encoder.down.${m[1]}.block.${m[2]}.${resnetRest(m[3]!)}`;
  if ((m = name.match(/^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)$/))) return `encoder.down.${m[1]}.downsample.conv.${m[2]}`;
  if ((m = name.match(/^decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)$/))) {
    return `decoder.up.${numBlocks - 1 - Number(m[1])}.block.${m[2]}.${resnetRest(m[3]!)}`;
  }
  if ((m = name.match(/^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)$/))) return `decoder.up.${numBlocks - 1 - Number(m[1])}.upsample.conv.${m[2]}`;
  if ((m = name.match(/^(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)$/))) return `${m[1]}.mid.block_${Number(m[2]) + 1}.${resnetRest(m[3]!)}`;
  if ((m = name.match(/^(encoder|decoder)\.mid_block\.attentions\.0\.(group_norm|to_q|to_k|to_v|to_out\.0)\.(.*)$/))) {
    return `${m[1]}.mid.attn_1.${LDM_ATTENTION[m[2]!]}.${m[3]}`;
  }
  return name;
}

/** Whether an LDM tensor is an attention projection stored as a 1x1 convolution. */
const LDM_CONV_ATTENTION = /(^|\.)mid\.attn_1\.(q|k|v|proj_out)\.weight$/;

/**
 * The weight-name map for a checkpoint with these tensor names, for a VAE of `numBlocks` blocks.
 * Deprecated attention names are used per tensor where the current name is absent (as diffusers renames them).
 */
export function vaeWeightMap(checkpointNames: readonly string[], numBlocks: number): WeightNameMap {
  const format = detectVaeCheckpointFormat(checkpointNames);
  if (format.kind === 'ldm') {
    const { prefix } = format;
    return {
      toCheckpoint: (name) => prefix + diffusersToLdmName(name, numBlocks),
      // Tensors outside the VAE's prefix belong to the rest of a full checkpoint; `loss.*` to LDM's training loss.
      ignore: (name) => (prefix !== '' && !name.startsWith(prefix)) || name.startsWith(`${prefix}loss.`),
    };
  }
  const available = new Set(checkpointNames);
  return {
    toCheckpoint: (name) => {
      if (available.has(name)) return name;
      const m = name.match(ATTENTION);
      if (m === null) return name;
      const old = `${m[1]}.${DEPRECATED[m[2]!]}.${m[3]}`;
      return available.has(old) ? old : name;
    },
  };
}

/** [C, C, 1, 1] or [C, C, 1] -> [C, C]; other shapes unchanged. */
function squeezeConvShape(shape: readonly number[]): number[] {
  if ((shape.length === 4 && shape[2] === 1 && shape[3] === 1) || (shape.length === 3 && shape[2] === 1)) return [shape[0]!, shape[1]!];
  return [...shape];
}

/**
 * A view of a weight source in which the tensors `isConvLinear` selects read as 2-D when stored as 1x1
 * convolutions (the data is the same; only the shape drops its trailing ones).
 */
export class ConvAsLinearWeights implements WeightSource {
  readonly description: string;

  constructor(
    private readonly inner: WeightSource,
    private readonly isConvLinear: (name: string) => boolean,
  ) {
    this.description = inner.description;
  }
  names(): string[] {
    return this.inner.names();
  }
  info(name: string): ReturnType<WeightSource['info']> {
    const info = this.inner.info(name);
    return this.isConvLinear(name) ? { dtype: info.dtype, shape: squeezeConvShape(info.shape) } : info;
  }
  read(name: string): TensorData {
    const data = this.inner.read(name);
    return this.isConvLinear(name) ? { dtype: data.dtype, data: data.data, shape: squeezeConvShape(data.shape) } : data;
  }
  /** Closes the underlying source. */
  close(): void {
    this.inner.close();
  }
}

/**
 * Copies `source`'s tensors into `model`, an `AutoencoderKL` of `numBlocks` blocks, in any of the namings above.
 * Strict: anything missing, extra or mis-shaped is one error listing every problem; no weight changes then.
 */
export function loadVaeWeights(model: Module, source: WeightSource, numBlocks: number): void {
  const names = source.names();
  const format = detectVaeCheckpointFormat(names);
  const view = format.kind === 'ldm' ? new ConvAsLinearWeights(source, (n) => LDM_CONV_ATTENTION.test(n)) : source;
  loadWeights(model, view, vaeWeightMap(names, numBlocks));
}

/** What the VAE config says about its checkpoint's shapes (diffusers names; checked before the model is built). */
export function vaeShapeBindings(c: VaeConfig): ShapeBinding[] {
  return [
    { key: 'in_channels', value: c.inChannels, tensor: 'encoder.conv_in.weight', dim: 1 },
    { key: 'block_out_channels[0]', value: c.blockOutChannels[0]!, tensor: 'encoder.conv_in.weight', dim: 0 },
    { key: 'latent_channels', value: c.latentChannels, tensor: 'decoder.conv_in.weight', dim: 1 },
    { key: 'out_channels', value: c.outChannels, tensor: 'decoder.conv_out.weight', dim: 0 },
    countBinding('the length of block_out_channels', c.blockOutChannels.length, 'encoder.down_blocks', 'resnets.0.conv1.weight'),
    countBinding('layers_per_block', c.layersPerBlock, 'encoder.down_blocks.0.resnets', 'conv1.weight'),
    ...c.blockOutChannels.map((ch, i) => ({ key: `block_out_channels[${i}]`, value: ch, tensor: `encoder.down_blocks.${i}.resnets.0.conv2.weight`, dim: 0 })),
  ];
}
