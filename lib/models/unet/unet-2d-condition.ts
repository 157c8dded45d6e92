/**
 * `UNet2DConditionModel`: Stable Diffusion's denoiser, block for block as diffusers' `unet_2d_condition.py`:
 * time embedding; `conv_in`; down blocks (keeping skip states); the cross-attention mid block; up blocks
 * (consuming the skips); `conv_norm_out` -> SiLU -> `conv_out`. Built from `unet/config.json`; latents are NHWC
 * [B, H, W, C] here (diffusers' are NCHW). Differentiable end to end with `tf.grad` with respect to the latents.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ComponentFolder } from '../../io/model-folder.js';
import { loadComponentModel, loadWeights } from '../load-weights.js';
import { silu } from '../layers/activations.js';
import { tapeIsOn } from '../layers/checkpoint.js';
import { Conv2d } from '../layers/conv2d.js';
import { GroupNorm } from '../layers/group-norm.js';
import { Module } from '../layers/module.js';
import type { UNetBlockArgs } from './basic-transformer-block.js';
import { type UNetConfig, parseUNetConfig } from './config.js';
import { DownBlock } from './down-blocks.js';
import { TimestepEmbedding, timestepFeatures } from './embeddings.js';
import { type CrossAttentionHook, attentionPaths, crossAttentionPaths } from './hooks.js';
import { UNetMidBlock2DCrossAttn } from './mid-block.js';
import { UpBlock } from './up-blocks.js';
import { unetShapeBindings, unetWeightMap } from './weights.js';

/** Options of {@link UNet2DConditionModel.predict}. */
export interface UNetForwardOptions {
  /** Observer of every cross-attention map (see `hooks.ts`). */
  hook?: CrossAttentionHook;
  /**
   * Inside a gradient: recompute each block layer's activations in the backward pass instead of keeping them
   * (gradient checkpointing; one more forward, a fraction of the memory). `'auto'` (default) does it when the
   * first level's activations are large (at least {@link CHECKPOINT_MIN_ELEMENTS}: full-size SD from 256 px).
   */
  checkpoint?: boolean | 'auto';
}

/**
 * Batch x height x width x channels of the first level from which `checkpoint: 'auto'` recomputes: 2^19 floats (2 MiB
 * an activation). Below it, as in the small models, the activations cost less memory than the second forward costs
 * time, and the results are those of the plain tape.
 */
export const CHECKPOINT_MIN_ELEMENTS = 1 << 19;

export class UNet2DConditionModel extends Module {
  readonly config: UNetConfig;
  readonly convIn: Conv2d;
  readonly timeEmbedding: TimestepEmbedding;
  readonly downBlocks: DownBlock[];
  readonly midBlock: UNetMidBlock2DCrossAttn;
  readonly upBlocks: UpBlock[];
  readonly convNormOut: GroupNorm;
  readonly convOut: Conv2d;
  /**
   * Every cross-attention layer (`attn2` of each transformer block) by its module path in this tree, the names
   * hooks see (`down_blocks.0.attentions.0.transformer_blocks.0.attn2`).
   */
  readonly crossAttentionPaths: ReadonlyMap<Module, string>;
  /** The module path of every attention layer, self- and cross- (what a hook's self-attention methods see). */
  readonly attentionPaths: ReadonlyMap<Module, string>;

  constructor(config: UNetConfig) {
    super();
    this.config = config;
    const boc = config.blockOutChannels;
    const tembDim = config.timeEmbeddingDim;
    const groups = config.normNumGroups;
    const eps = config.normEps;
    const attention = (heads: number) => ({ heads, crossAttentionDim: config.crossAttentionDim, useLinearProjection: config.useLinearProjection });

    this.convIn = this.child('conv_in', new Conv2d(config.inChannels, boc[0]!, 3, 1, 1));
    this.timeEmbedding = this.child('time_embedding', new TimestepEmbedding(boc[0]!, tembDim));

    const down: DownBlock[] = [];
    let out = boc[0]!;
    config.downBlockTypes.forEach((type, i) => {
      const inCh = out;
      out = boc[i]!;
      down.push(
        new DownBlock({
          inChannels: inCh,
          outChannels: out,
          tembChannels: tembDim,
          numLayers: config.layersPerBlock,
          addDownsample: i < boc.length - 1,
          groups,
          eps,
          downsamplePadding: config.downsamplePadding,
          attention: type === 'CrossAttnDownBlock2D' ? attention(config.numAttentionHeads[i]!) : undefined,
        }),
      );
    });
    this.downBlocks = this.childList('down_blocks', down);

    this.midBlock = this.child(
      'mid_block',
      new UNetMidBlock2DCrossAttn(boc.at(-1)!, tembDim, groups, eps, attention(config.numAttentionHeads.at(-1)!)),
    );

    const rev = [...boc].reverse();
    const revHeads = [...config.numAttentionHeads].reverse();
    const up: UpBlock[] = [];
    let prevOut = rev[0]!;
    config.upBlockTypes.forEach((type, i) => {
      const outCh = rev[i]!;
      const inCh = rev[Math.min(i + 1, rev.length - 1)]!;
      up.push(
        new UpBlock({
          inChannels: inCh,
          outChannels: outCh,
          prevOutputChannels: prevOut,
          tembChannels: tembDim,
          numLayers: config.layersPerBlock + 1,
          addUpsample: i < rev.length - 1,
          groups,
          eps,
          attention: type === 'CrossAttnUpBlock2D' ? attention(revHeads[i]!) : undefined,
        }),
      );
      prevOut = outCh;
    });
    this.upBlocks = this.childList('up_blocks', up);

    this.convNormOut = this.child('conv_norm_out', new GroupNorm(groups, boc[0]!, eps));
    this.convOut = this.child('conv_out', new Conv2d(boc[0]!, config.outChannels, 3, 1, 1));
    this.crossAttentionPaths = crossAttentionPaths(this);
    this.attentionPaths = attentionPaths(this);
  }

  /** Builds the model from a diffusers `unet/` folder and loads its weights (F32/F16/BF16). */
  static fromFolder(dir: string | ComponentFolder): UNet2DConditionModel {
    return loadComponentModel(dir, {
      what: 'UNet',
      parse: (json) => parseUNetConfig(json),
      build: (config) => new UNet2DConditionModel(config),
      load: (model, source) => loadWeights(model, source, unetWeightMap),
      bindings: unetShapeBindings,
    });
  }

  /**
   * 2 per downsampling. Latent sides need not be multiples of it: other sizes are upsampled to the skip
   * connections' sizes, as diffusers does (`upsample_size`).
   */
  get sizeMultiple(): number {
    return 2 ** (this.config.blockOutChannels.length - 1);
  }

  /** tf.layers entry: `inputs` = [latents, context]; `args.timestep` (number) and `args.hook`. */
  forward(inputs: tf.Tensor | tf.Tensor[], args: { timestep?: number; hook?: CrossAttentionHook } = {}): tf.Tensor {
    const [x, context] = Array.isArray(inputs) ? inputs : [inputs];
    if (x === undefined || context === undefined) throw new Error('UNet2DConditionModel: expected [latents, context]');
    return this.predict(x as tf.Tensor4D, args.timestep ?? 0, context as tf.Tensor3D, { hook: args.hook });
  }

  /**
   * The model output (noise, v or x_0 by the scheduler's prediction type) for `latents` [B, H, W, C] at
   * `timestep` (one for the batch, or one per batch item, as numbers or a tensor [B]), conditioned on `context` [B, keys, crossAttentionDim].
   */
  predict(latents: tf.Tensor4D, timestep: number | readonly number[] | tf.Tensor1D, context: tf.Tensor3D, options: UNetForwardOptions = {}): tf.Tensor4D {
    const [b, h, w, c] = latents.shape;
    if (c !== this.config.inChannels) throw new Error(`UNet: latents have ${c} channels, the model takes ${this.config.inChannels}`);
    if (h < 1 || w < 1) throw new Error(`UNet: empty latents ${h}x${w}`);
    const count = typeof timestep === 'number' ? b : timestep instanceof tf.Tensor ? timestep.shape[0] : timestep.length;
    if (count !== b) throw new Error(`UNet: ${count} timesteps for a batch of ${b}`);
    if (context.shape[0] !== b || context.shape[2] !== this.config.crossAttentionDim) {
      throw new Error(`UNet: context is [${context.shape.join(', ')}], expected [${b}, keys, ${this.config.crossAttentionDim}]`);
    }
    return tf.tidy(() => {
      const cfg = this.config;
      const t =
        timestep instanceof tf.Tensor ? timestep : typeof timestep === 'number' ? (tf.fill([b], timestep, 'float32') as tf.Tensor1D) : tf.tensor1d([...timestep], 'float32');
      const temb = this.timeEmbedding.forward(timestepFeatures(t, cfg.blockOutChannels[0]!, cfg.flipSinToCos, cfg.freqShift));
      const want = options.checkpoint ?? 'auto';
      const checkpoint = tapeIsOn() && (want === true || (want === 'auto' && b * h * w * cfg.blockOutChannels[0]! >= CHECKPOINT_MIN_ELEMENTS));
      const args: UNetBlockArgs = { temb, context, hook: options.hook, layerPaths: this.attentionPaths, checkpoint };
      let x: tf.Tensor = cfg.centerInputSample ? tf.sub(tf.mul(latents, 2), 1) : latents;
      x = this.convIn.forward(x);
      const skips: tf.Tensor[] = [x];
      for (const block of this.downBlocks) {
        const r = block.forwardWithStates(x, args);
        x = r.output;
        skips.push(...r.states);
      }
      x = this.midBlock.forward(x, args);
      for (const block of this.upBlocks) {
        const n = block.resnets.length;
        const own = skips.splice(skips.length - n, n);
        // The next block's first skip has the size this block must upsample to.
        const next = skips.at(-1);
        x = block.forwardWithSkips(x, own, args, next !== undefined ? [next.shape[1]!, next.shape[2]!] : undefined);
      }
      return this.convOut.forward(silu(this.convNormOut.forward(x))) as tf.Tensor4D;
    });
  }
}
