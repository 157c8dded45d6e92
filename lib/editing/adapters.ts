/**
 * Adapters from the model classes to the ports the editing services use, and the loading of a Stable Diffusion
 * folder's models into them.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { StableDiffusionFolder } from '../io/model-folder.js';
import type { TorchGenerator } from '../random/torch-generator.js';
import { ClipTextEncoder } from '../models/clip-text/text-encoder.js';
import { AttentionRecorder, AttentionReplay, UNet2DConditionModel } from '../models/unet/index.js';
import { AutoencoderKL } from '../models/vae/autoencoder-kl.js';
import { ClipTextEmbedder } from './text-embedder.js';
import { CrossAttentionLoss } from './cross-attention-loss.js';
import type { AttentionMaps, AutoencoderPort, DenoiserPort } from './ports.js';
import { kernelChoices } from '../backend.js';
import { type GraphCallResult, type GraphStats, GraphFunctions } from '../native-graph/graph-functions.js';
import type { Captioner, TextEmbedder } from './services.js';

/** The timesteps of a batch as a tensor [B] (one for all, or one per item). */
function timestepTensor(timestep: number | readonly number[], batch: number): tf.Tensor1D {
  return tf.tensor1d(typeof timestep === 'number' ? new Array<number>(batch).fill(timestep) : [...timestep], 'float32');
}

/**
 * The UNet as the pipeline's denoiser. On a backend with graphs, calls on latents of at most the kernel choice
 * `graphMaxElements` per image run as TensorFlow graphs (`native-graph/`): the same kernels without the per-op
 * overhead that is nearly all of a small model's time. Each call is a function of its tensors (latents, timesteps,
 * context, maps) and the UNet's weights only, which is what lets it trace.
 */
export class UNetDenoiser implements DenoiserPort {
  private weights: tf.Tensor[] | undefined;
  private readonly graphs = new GraphFunctions(() => (this.weights ??= this.unet.parameterTensors()));

  constructor(readonly unet: UNet2DConditionModel) {}

  get latentChannels(): number {
    return this.unet.config.inChannels;
  }

  /** How this adapter's calls ran (graph or eager). */
  get graphStats(): GraphStats {
    return this.graphs.stats;
  }

  /** `fn(t)` with the timesteps as a tensor, through a graph when the latents are small enough. */
  private call(kind: string, latents: tf.Tensor4D, timestep: number | readonly number[], tensors: tf.Tensor[], fn: (t: tf.Tensor1D) => GraphCallResult): GraphCallResult {
    const b = latents.shape[0];
    const t = timestepTensor(timestep, b);
    try {
      return latents.size / b > kernelChoices().graphMaxElements ? fn(t) : this.graphs.call(kind, [latents, t, ...tensors], () => fn(t));
    } finally {
      t.dispose();
    }
  }

  predict(latents: tf.Tensor4D, timestep: number, context: tf.Tensor3D, options: { selfAttention?: AttentionMaps; crossAttention?: AttentionMaps } = {}): tf.Tensor4D {
    const self = options.selfAttention ?? new Map<string, tf.Tensor3D>();
    const cross = options.crossAttention ?? new Map<string, tf.Tensor3D>();
    const replay = self.size + cross.size > 0;
    const kind = `predict|${[...self.keys()].join(',')}|${[...cross.keys()].join(',')}`;
    const r = this.call(kind, latents, timestep, [context, ...self.values(), ...cross.values()], (t) => ({
      outputs: [this.unet.predict(latents, t, context, { hook: replay ? new AttentionReplay(self, cross) : undefined })],
      meta: [],
    }));
    return r.outputs[0] as tf.Tensor4D;
  }

  predictWithMaps(
    latents: tf.Tensor4D,
    timestep: number | readonly number[],
    context: tf.Tensor3D,
    options: { selfAttentionMaxQueries?: number } = {},
  ): { output: tf.Tensor4D; maps: AttentionMaps; selfMaps?: AttentionMaps } {
    const withSelf = options.selfAttentionMaxQueries !== undefined;
    const r = this.call(`maps|${options.selfAttentionMaxQueries ?? '-'}`, latents, timestep, [context], (t) => {
      const recorder = new AttentionRecorder(options.selfAttentionMaxQueries ?? 0);
      try {
        const output = this.unet.predict(latents, t, context, { hook: recorder });
        const maps = recorder.take();
        const selfMaps = withSelf ? recorder.takeSelf() : new Map<string, tf.Tensor3D>();
        return { outputs: [output, ...maps.values(), ...selfMaps.values()], meta: [...[...maps.keys()].map((k) => `c:${k}`), ...[...selfMaps.keys()].map((k) => `s:${k}`)] };
      } catch (err) {
        recorder.dispose();
        throw err;
      }
    });
    const maps: AttentionMaps = new Map();
    const selfMaps: AttentionMaps = new Map();
    r.meta.forEach((m, k) => (m.startsWith('c:') ? maps : selfMaps).set(m.slice(2), r.outputs[k + 1] as tf.Tensor3D));
    return { output: r.outputs[0] as tf.Tensor4D, maps, ...(withSelf ? { selfMaps } : {}) };
  }

  crossAttentionLoss(latents: tf.Tensor4D, timestep: number, context: tf.Tensor3D, reference: AttentionMaps): tf.Scalar {
    const hook = new CrossAttentionLoss(reference);
    this.unet.predict(latents, timestep, context, { hook }).dispose();
    return hook.loss();
  }

  crossAttentionLossGradient(latents: tf.Tensor4D, timestep: number, context: tf.Tensor3D, reference: AttentionMaps): tf.Tensor4D {
    const r = this.call(`loss-gradient|${[...reference.keys()].join(',')}`, latents, timestep, [context, ...reference.values()], (t) => {
      const loss = (x: tf.Tensor): tf.Scalar => {
        const hook = new CrossAttentionLoss(reference);
        this.unet.predict(x as tf.Tensor4D, t, context, { hook }).dispose();
        return hook.loss();
      };
      return { outputs: [tf.grad(loss)(latents)], meta: [] };
    });
    return r.outputs[0] as tf.Tensor4D;
  }

  /** Frees the graphs (not the UNet). */
  dispose(): void {
    this.graphs.dispose();
  }
}

/** The VAE as the pipeline's autoencoder. */
export class VaeAutoencoder implements AutoencoderPort {
  constructor(readonly vae: AutoencoderKL) {}

  get scalingFactor(): number {
    return this.vae.scalingFactor;
  }
  get downscale(): number {
    return this.vae.downscale;
  }
  encode(image: tf.Tensor4D, mode: 'mean' | 'sample', generator: number | TorchGenerator = 0): tf.Tensor4D {
    return this.vae.encodeLatents(image, mode === 'sample' ? { mode, generator } : { mode });
  }
  decode(latents: tf.Tensor4D): tf.Tensor4D {
    return this.vae.decodeLatents(latents);
  }
}

/** The models of a pipeline, behind their ports. */
export interface ModelPorts {
  readonly textEmbedder: TextEmbedder;
  /**
   * Frees the text encoder when the models were loaded with `releaseAfterUse` (the next embedding reads it again);
   * otherwise does nothing. The pipeline calls it before the UNet's work.
   */
  releaseTextEncoder(): Promise<void>;
  readonly captioner?: Captioner;
  readonly denoiser: DenoiserPort;
  readonly vae: AutoencoderPort;
  /** The text embeddings' [tokens, width]. */
  readonly embeddingShape: { tokens: number; width: number };
  /** The image side the model was made for: the UNet's `sample_size` times the VAE's downscale (as diffusers). */
  readonly defaultImageSize: number;
  /** Frees every model. */
  dispose(): void;
}

/** Options of {@link loadModelPorts}. */
export interface LoadModelOptions {
  /** A BLIP folder for captions. */
  captioner?: string;
  /** Builds the captioner from a BLIP folder (the BLIP implementation registers itself here). */
  captionerFactory?: (dir: string) => Captioner & { dispose?(): void };
  /**
   * Let {@link ModelPorts.releaseTextEncoder} free the text encoder (it is read again from the folder when next
   * needed; default false: keep it). The pipeline's UNet work then runs without the encoder's weights in memory.
   */
  releaseAfterUse?: boolean;
}

/** Loads the UNet, VAE and text encoder of a Stable Diffusion folder (and a captioner, if asked). */
export async function loadModelPorts(folder: StableDiffusionFolder, options: LoadModelOptions = {}): Promise<ModelPorts> {
  const owned: { dispose(): void }[] = [];
  try {
    const spec = { dir: folder.dir, textEncoder: folder.textEncoder, tokenizer: folder.tokenizer };
    // Loaded now to check it against the UNet; with releaseAfterUse the embedder takes this copy on its first
    // call, and after releaseTextEncoder() reads the folder again when next needed.
    const encoder = ClipTextEncoder.fromFolder(spec);
    let unused: ClipTextEncoder | undefined = encoder;
    owned.push({ dispose: () => unused?.dispose() });
    const lean = options.releaseAfterUse === true;
    const textEmbedder = lean
      ? new ClipTextEmbedder(() => {
          const e = unused ?? ClipTextEncoder.fromFolder(spec);
          unused = undefined;
          return e;
        })
      : new ClipTextEmbedder(encoder);
    const releaseTextEncoder = async (): Promise<void> => {
      if (!lean) return;
      unused?.dispose();
      unused = undefined;
      await textEmbedder.release();
    };
    if (lean) owned.push({ dispose: () => void textEmbedder.release() });
    const unet = UNet2DConditionModel.fromFolder(folder.unet);
    const denoiser = new UNetDenoiser(unet);
    owned.push({ dispose: () => (denoiser.dispose(), unet.disposeAll()) });
    const vae = AutoencoderKL.fromFolder(folder.vae);
    owned.push(vae);
    const width = encoder.hiddenSize;
    if (width !== unet.config.crossAttentionDim) {
      throw new Error(`the text encoder's width ${width} does not match the UNet's cross_attention_dim ${unet.config.crossAttentionDim} in ${folder.dir}`);
    }
    let captioner: (Captioner & { dispose?(): void }) | undefined;
    if (options.captioner !== undefined) {
      if (options.captionerFactory === undefined) throw new Error('no BLIP captioner is available in this build: give the caption instead');
      captioner = options.captionerFactory(options.captioner);
      const c = captioner;
      owned.push({ dispose: () => c.dispose?.() });
    }
    return {
      textEmbedder,
      releaseTextEncoder,
      captioner,
      denoiser,
      vae: new VaeAutoencoder(vae),
      embeddingShape: { tokens: encoder.tokenizer.modelMaxLength, width },
      defaultImageSize: (unet.config.sampleSize ?? 64) * vae.downscale,
      dispose: () => owned.forEach((o) => o.dispose()),
    };
  } catch (err) {
    owned.forEach((o) => o.dispose());
    throw err;
  }
}
