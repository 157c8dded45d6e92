/**
 * `CLIPTextModel`: transformers' CLIP text transformer, as Stable Diffusion uses it.
 *
 * token + learned position embeddings -> `numHiddenLayers` pre-LayerNorm encoder layers with causal
 * self-attention (`q_proj`/`k_proj`/`v_proj`/`out_proj`) and an MLP (`fc1` -> activation -> `fc2`) ->
 * `final_layer_norm`. The pooled output is the final state at the end token. Blocks carry transformers' names, so
 * the expected state dict is `embeddings.token_embedding.weight`, `encoder.layers.0.self_attn.q_proj.weight`, ...
 */
import * as tf from '@tensorflow/tfjs-core';
import { multiHeadAttention } from '../layers/attention-core.js';
import { Embedding } from '../layers/embedding.js';
import { LayerNorm } from '../layers/layer-norm.js';
import { Linear } from '../layers/linear.js';
import { Mlp } from '../layers/mlp.js';
import type { ComponentFolder } from '../../io/model-folder.js';
import { type ForwardArgs, Module } from '../layers/module.js';
import { type WeightNameMap, loadComponentModel } from '../load-weights.js';
import { kernelChoices } from '../../backend.js';
import { type GraphStats, GraphFunctions } from '../../native-graph/graph-functions.js';
import { type ClipTextConfig, parseClipTextConfig } from './config.js';
import { clipTextShapeBindings, clipTextWeightMap, loadClipTextWeights } from './weights.js';

/** A large negative score for masked attention entries (their softmax weight is exactly 0 in float32). */
const MASKED = -1e9;

/** `CLIPTextEmbeddings`: token embedding plus the learned embedding of positions 0..L-1. */
export class CLIPTextEmbeddings extends Module {
  readonly tokenEmbedding: Embedding;
  readonly positionEmbedding: Embedding;

  constructor(readonly config: ClipTextConfig) {
    super();
    this.tokenEmbedding = this.child('token_embedding', new Embedding(config.vocabSize, config.hiddenSize));
    this.positionEmbedding = this.child('position_embedding', new Embedding(config.maxPositionEmbeddings, config.hiddenSize));
  }

  /** int32 ids [B, L] -> [B, L, hidden]. */
  forward(ids: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const length = ids.shape[1]!;
      const positions = tf.slice(this.positionEmbedding.table.read(), [0, 0], [length, this.config.hiddenSize]);
      return tf.add(this.tokenEmbedding.forward(ids), positions);
    });
  }
}

/** `CLIPAttention`: multi-head self-attention with biased q/k/v/out projections. */
export class CLIPAttention extends Module {
  readonly kProj: Linear;
  readonly vProj: Linear;
  readonly qProj: Linear;
  readonly outProj: Linear;

  constructor(readonly config: ClipTextConfig) {
    super();
    const d = config.hiddenSize;
    this.kProj = this.child('k_proj', new Linear(d, d));
    this.vProj = this.child('v_proj', new Linear(d, d));
    this.qProj = this.child('q_proj', new Linear(d, d));
    this.outProj = this.child('out_proj', new Linear(d, d));
  }

  /** `x` [B, L, hidden]; `args.mask`: an additive mask broadcastable to [B, heads, L, L]. */
  forward(x: tf.Tensor, args: ForwardArgs = {}): tf.Tensor {
    return tf.tidy(() => {
      const mask = args.mask instanceof tf.Tensor ? args.mask : undefined;
      const attended = multiHeadAttention(this.qProj.forward(x), this.kProj.forward(x), this.vProj.forward(x), this.config.numAttentionHeads, { mask });
      return this.outProj.forward(attended);
    });
  }
}

/** `CLIPMLP`: `fc2(act(fc1(x)))` (the shared {@link Mlp}, sized by the config). */
export class CLIPMLP extends Mlp {
  constructor(config: ClipTextConfig) {
    super(config.hiddenSize, config.intermediateSize, config.hiddenAct);
  }
}

/** `CLIPEncoderLayer`: `x + attn(ln1(x))`, then `h + mlp(ln2(h))`. */
export class CLIPEncoderLayer extends Module {
  readonly selfAttn: CLIPAttention;
  readonly layerNorm1: LayerNorm;
  readonly mlp: CLIPMLP;
  readonly layerNorm2: LayerNorm;

  constructor(config: ClipTextConfig) {
    super();
    this.selfAttn = this.child('self_attn', new CLIPAttention(config));
    this.layerNorm1 = this.child('layer_norm1', new LayerNorm(config.hiddenSize, config.layerNormEps));
    this.mlp = this.child('mlp', new CLIPMLP(config));
    this.layerNorm2 = this.child('layer_norm2', new LayerNorm(config.hiddenSize, config.layerNormEps));
  }

  /** `x` [B, L, hidden]; `args.mask` as for {@link CLIPAttention}. */
  forward(x: tf.Tensor, args: ForwardArgs = {}): tf.Tensor {
    return tf.tidy(() => {
      const h = tf.add(x, this.selfAttn.forward(this.layerNorm1.forward(x), args));
      return tf.add(h, this.mlp.forward(this.layerNorm2.forward(h)));
    });
  }
}

/** Options of {@link CLIPTextModel.encode}. */
export interface ClipTextEncodeOptions {
  /**
   * Skip the last `clipSkip` layers, as diffusers' `clip_skip`: the output is `final_layer_norm` applied to
   * `hidden_states[-(clipSkip + 1)]`. 0 (default) is `last_hidden_state`.
   */
  clipSkip?: number;
  /** Also return the pooled output (default true). With `clipSkip` > 0 it needs every layer to run. */
  pooled?: boolean;
}

/** What {@link CLIPTextModel.encode} returns; the caller disposes both tensors. */
export interface ClipTextOutput {
  /** [B, L, hidden]: `last_hidden_state`, or the clip-skipped state after the final layer norm. */
  readonly lastHiddenState: tf.Tensor3D;
  /** [B, hidden]: the final (un-skipped) state at each sequence's end token; absent if not asked for. */
  readonly pooledOutput?: tf.Tensor2D;
}

/** The positions of each row's end token, as transformers' `CLIPTextTransformer` finds them. */
export function endTokenPositions(ids: ArrayLike<number>, batch: number, length: number, eosTokenId: number): number[] {
  const positions: number[] = [];
  for (let b = 0; b < batch; b++) {
    let best = 0;
    for (let i = 0; i < length; i++) {
      const id = ids[b * length + i]!;
      if (eosTokenId === 2) {
        // Legacy configs (eos_token_id 2): the first position of the largest id.
        if (id > ids[b * length + best]!) best = i;
      } else if (id === eosTokenId) {
        best = i;
        break;
      }
    }
    positions.push(best);
  }
  return positions;
}

/** The causal mask [1, 1, L, L]: 0 where a position may attend (itself and earlier), a large negative elsewhere. */
export function causalMask(length: number): tf.Tensor4D {
  const values = new Float32Array(length * length);
  for (let q = 0; q < length; q++) for (let k = q + 1; k < length; k++) values[q * length + k] = MASKED;
  return tf.tensor4d(values, [1, 1, length, length]);
}

/** `CLIPTextModel` (the `text_model` of transformers' checkpoints). */
export class CLIPTextModel extends Module {
  readonly embeddings: CLIPTextEmbeddings;
  readonly layers: CLIPEncoderLayer[];
  readonly finalLayerNorm: LayerNorm;

  constructor(readonly config: ClipTextConfig) {
    super();
    this.embeddings = this.child('embeddings', new CLIPTextEmbeddings(config));
    this.layers = this.childList(
      'encoder.layers',
      Array.from({ length: config.numHiddenLayers }, () => new CLIPEncoderLayer(config)),
    );
    this.finalLayerNorm = this.child('final_layer_norm', new LayerNorm(config.hiddenSize, config.layerNormEps));
  }

  /**
   * Builds the model from a text encoder folder (`config.json` + `model.safetensors`, as a path or an already read
   * {@link ComponentFolder}) and loads its weights. The caller frees it with `disposeAll()`.
   */
  static fromFolder(folder: string | ComponentFolder): CLIPTextModel {
    const map = (_config: ClipTextConfig, names: string[]): WeightNameMap => clipTextWeightMap(names);
    return loadComponentModel(folder, { what: 'text encoder', parse: parseClipTextConfig, build: (c) => new CLIPTextModel(c), load: loadClipTextWeights, bindings: clipTextShapeBindings, map });
  }

  /** int32 ids [B, L] -> [B, L, hidden] (`last_hidden_state`, or clip-skipped with `args.clipSkip`). */
  forward(ids: tf.Tensor, args: ForwardArgs = {}): tf.Tensor {
    const clipSkip = typeof args.clipSkip === 'number' ? args.clipSkip : 0;
    const { lastHiddenState } = this.encode(ids as tf.Tensor2D, { clipSkip, pooled: false });
    return lastHiddenState;
  }

  private graphs: GraphFunctions | undefined;

  /** How the layers' calls ran (graph or eager) on a backend with graphs; undefined before the first such call. */
  get graphStats(): GraphStats | undefined {
    return this.graphs?.stats;
  }

  private graphFunctions(): GraphFunctions {
    if (this.graphs === undefined) {
      let weights: tf.Tensor[] | undefined;
      this.graphs = new GraphFunctions(() => (weights ??= this.parameterTensors()));
    }
    return this.graphs;
  }

  /**
   * The encoder layers and the final layer norm on embedded tokens [B, L, hidden]: `last_hidden_state` (clip-skipped
   * with `clipSkip`) and, for the pooled output, the last layer's normalised output.
   */
  private encoderLayers(embedded: tf.Tensor, clipSkip: number, wantPooled: boolean): tf.Tensor[] {
    return tf.tidy(() => {
      const n = this.config.numHiddenLayers;
      const mask = causalMask(embedded.shape[1]!);
      // hidden_states = [embeddings, layer 1 out, ..., layer n out]; clip skip k takes hidden_states[n - k].
      // Without the pooled output, the last k layers need not run.
      const target = n - clipSkip;
      let h = embedded;
      let skipped = clipSkip > 0 && target === 0 ? h : undefined;
      const runLayers = wantPooled ? n : target;
      for (let i = 0; i < runLayers; i++) {
        h = this.layers[i]!.forward(h, { mask });
        if (clipSkip > 0 && i + 1 === target) skipped = h;
      }
      const lastHiddenState = this.finalLayerNorm.forward(skipped ?? h);
      if (!wantPooled) return [lastHiddenState];
      return [lastHiddenState, skipped === undefined ? tf.clone(lastHiddenState) : this.finalLayerNorm.forward(h)];
    });
  }

  /** Frees the weights and the graphs. */
  override disposeAll(): number {
    this.graphs?.dispose();
    this.graphs = undefined;
    return super.disposeAll();
  }

  /**
   * Runs the text model on int32 token ids [B, L] (L <= `maxPositionEmbeddings`), without attention mask (as
   * Stable Diffusion does: the causal mask alone keeps padding from reaching earlier positions).
   */
  encode(ids: tf.Tensor2D, options: ClipTextEncodeOptions = {}): ClipTextOutput {
    const clipSkip = options.clipSkip ?? 0;
    const wantPooled = options.pooled ?? true;
    const n = this.config.numHiddenLayers;
    if (!Number.isInteger(clipSkip) || clipSkip < 0 || clipSkip > n) {
      throw new Error(`clipSkip must be an integer in [0, ${n}] for a text encoder with ${n} layers, got ${clipSkip}`);
    }
    if (ids.rank !== 2) throw new Error(`CLIPTextModel: expected token ids of shape [batch, length], got [${ids.shape.join(', ')}]`);
    const [batch, length] = ids.shape;
    if (length > this.config.maxPositionEmbeddings) {
      throw new Error(`CLIPTextModel: sequence length ${length} exceeds max_position_embeddings (${this.config.maxPositionEmbeddings})`);
    }
    const eosPositions = wantPooled ? endTokenPositions(ids.dataSync(), batch, length, this.config.eosTokenId) : [];
    return tf.tidy(() => {
      const intIds = ids.dtype === 'int32' ? ids : tf.cast(ids, 'int32');
      // The token lookup stays eager (tfjs-node's gather checks the ids on the host); the layers may run as a graph.
      const embedded = this.embeddings.forward(intIds);
      const layers = (): tf.Tensor[] => this.encoderLayers(embedded, clipSkip, wantPooled);
      const [lastHiddenState, final] = (
        kernelChoices().textEncoderGraphs ? this.graphFunctions().call(`layers|${clipSkip}|${wantPooled}`, [embedded], () => ({ outputs: layers(), meta: [] })).outputs : layers()
      ) as [tf.Tensor3D, tf.Tensor3D?];
      if (!wantPooled || final === undefined) return { lastHiddenState };
      const rows = tf.reshape(final, [batch * length, this.config.hiddenSize]);
      const index = tf.tensor1d(eosPositions.map((p, b) => b * length + p), 'int32');
      return { lastHiddenState, pooledOutput: tf.gather(rows, index) as tf.Tensor2D };
    });
  }
}

/** @deprecated use {@link CLIPTextModel.fromFolder} (every model loads through its class's `fromFolder`). */
export function loadClipTextModel(folder: string | ComponentFolder): CLIPTextModel {
  return CLIPTextModel.fromFolder(folder);
}
