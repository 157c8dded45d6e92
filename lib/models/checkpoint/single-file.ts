/**
 * Single-file Stable Diffusion checkpoints (`v1-5-pruned-emaonly.safetensors` and the community models in the
 * same original layout) to diffusers pipeline folders: the architecture is read from the tensor names and shapes
 * (SD 1.x: a CLIP text encoder under `cond_stage_model.transformer.`; SD 2.x: OpenCLIP under
 * `cond_stage_model.model.`), the configs are those of the known architecture (or of a diffusers folder given as
 * `config`, as diffusers' `from_single_file(config=...)`), and every tensor is copied byte for byte under its
 * diffusers name (the maps of `names.ts`), one at a time, in its own dtype. As diffusers, the non-EMA UNet weights
 * are taken unless the EMA ones are asked for (`extractEma`); an EMA-only file has only the one set.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { type JsonObject, readJsonObject } from '../../io/json.js';
import { SafetensorsFile as Safetensors, type SafetensorsFile, type TensorBytesToWrite, type TensorInfo, writeSafetensorsBytes } from '../../io/safetensors.js';
import { DTYPE_SIZE } from '../../io/dtypes.js';
import { ensureDir } from '../../io/folders.js';
import { CLIP_MERGES_FILE } from '../../paths.js';
import { CLIP_NUM_MERGES, clipVocabFromMerges, parseMerges } from '../../tokenizers/clip-tokenizer.js';
import { type CheckpointArchitecture, MODEL_INDEX, configJson, type PipelineConfigs, type PredictionType, knownConfigs } from './configs.js';
import { type CheckpointLayout, CheckpointNameMap, type NamePair, ORIGINAL_PREFIX } from './names.js';

/** What the tensor names and shapes of a checkpoint say. */
export interface CheckpointInfo {
  readonly file: string;
  readonly architecture: CheckpointArchitecture;
  readonly layout: CheckpointLayout;
  /** The config values the shapes settle, per component (compared with the configs used). */
  readonly inferred: { readonly unet: JsonObject; readonly vae: JsonObject; readonly text_encoder: JsonObject };
  /** How many `model_ema.*` tensors it has (a full checkpoint; 0 for an EMA-only or pruned one). */
  readonly emaTensors: number;
}

/** Options of {@link convertCheckpoint}. */
export interface CheckpointConvertOptions {
  /** Settles what the file cannot say (SD 2.x: the 768 px v-prediction model, the default as in diffusers, or a 512 px base). */
  readonly predictionType?: PredictionType;
  /** Take the UNet's EMA weights (`model_ema.*`) of a full checkpoint, as diffusers' `extract_ema` (default false, as diffusers). */
  readonly extractEma?: boolean;
  /** A diffusers pipeline folder whose configs (and tokenizer) to use instead of the known ones (for other architectures). */
  readonly config?: string;
  /** Told what was decided for the caller (the prediction type taken for SD 2.x, EMA weights left out). */
  readonly onNotice?: (message: string) => void;
  /** Called after each tensor written, with the component as the phase. */
  readonly onProgress?: (event: { phase: string; step: number; total: number }) => void;
}

/** What {@link convertCheckpoint} wrote. */
export interface CheckpointConvertReport {
  readonly architecture: CheckpointArchitecture;
  readonly predictionType: PredictionType;
  /** Where the configs came from: `known` or the config folder. */
  readonly configs: string;
  readonly ema: 'extracted' | 'left out' | 'none';
  readonly components: { readonly folder: string; readonly tensors: number; readonly bytes: number }[];
  /** Original tensors no diffusers component holds (schedule buffers, EMA copies, position ids, ...). */
  readonly ignored: number;
}

/** Whether `file` is a single-file checkpoint in the original layout (a safetensors file with `model.diffusion_model.*` tensors). */
export function isSingleFileCheckpoint(file: string): boolean {
  if (!file.endsWith('.safetensors')) return false;
  try {
    if (!fs.statSync(file).isFile()) return false;
    const f = Safetensors.open(file);
    try {
      return f.names().some((n) => n.startsWith(ORIGINAL_PREFIX.unet));
    } finally {
      f.close();
    }
  } catch {
    return false;
  }
}

/** Reads the architecture and structure of an opened checkpoint from its tensor names and shapes. */
function describe(f: SafetensorsFile): CheckpointInfo {
  const names = new Set(f.tensors.keys());
  const shape = (n: string): readonly number[] => {
    const t = f.tensors.get(n);
    if (t === undefined) throw new Error(`checkpoint ${f.path} has no tensor '${n}', which a Stable Diffusion 1.x/2.x checkpoint has`);
    return t.shape;
  };
  const count = (re: RegExp): number => new Set([...names].flatMap((n) => { const m = re.exec(n); return m === null ? [] : [m[1]!]; })).size;
  const U = ORIGINAL_PREFIX.unet;
  if (![...names].some((n) => n.startsWith(U))) throw new Error(`${f.path} is not a Stable Diffusion checkpoint in the original layout: it has no ${U}* tensors`);
  const outputs = count(/^model\.diffusion_model\.output_blocks\.(\d+)\./);
  const downsamplers = count(/^model\.diffusion_model\.input_blocks\.(\d+)\.0\.op\.weight$/);
  const levels = downsamplers + 1;
  const layersPerBlock = outputs / levels - 1;
  if (!Number.isInteger(layersPerBlock) || layersPerBlock < 1) {
    throw new Error(`checkpoint ${f.path}: ${outputs} UNet output blocks do not fit ${levels} levels (${downsamplers} downsamplers): not an SD 1.x/2.x UNet`);
  }
  const attentionDown = Array.from({ length: levels }, (_, l) => names.has(`${U}input_blocks.${1 + l * (layersPerBlock + 1)}.1.proj_in.weight`));
  const attentionUp = Array.from({ length: levels }, (_, u) => names.has(`${U}output_blocks.${u * (layersPerBlock + 1)}.1.proj_in.weight`));
  const channels = Array.from({ length: levels }, (_, l) => shape(`${U}input_blocks.${1 + l * (layersPerBlock + 1)}.0.out_layers.3.weight`)[0]!);
  const firstAttn = [...names].find((n) => n.startsWith(U) && n.endsWith('.attn2.to_k.weight'));
  const firstProj = [...names].find((n) => n.startsWith(U) && n.endsWith('.proj_in.weight'));
  const depth = firstProj === undefined ? 1 : count(new RegExp(`^${firstProj.replace('.proj_in.weight', '').replace(/\./g, '\\.')}\\.transformer_blocks\\.(\\d+)\\.`));
  const unet: JsonObject = {
    in_channels: shape(`${U}input_blocks.0.0.weight`)[1],
    out_channels: shape(`${U}out.2.weight`)[0],
    block_out_channels: channels,
    layers_per_block: layersPerBlock,
    down_block_types: attentionDown.map((a) => (a ? 'CrossAttnDownBlock2D' : 'DownBlock2D')),
    up_block_types: attentionUp.map((a) => (a ? 'CrossAttnUpBlock2D' : 'UpBlock2D')),
    cross_attention_dim: firstAttn === undefined ? undefined : shape(firstAttn)[1],
    use_linear_projection: firstProj !== undefined && shape(firstProj).length === 2,
    transformer_layers_per_block: depth,
  };
  const V = ORIGINAL_PREFIX.vae;
  const vaeLevels = count(/^first_stage_model\.encoder\.down\.(\d+)\./);
  const vaeLayers = count(/^first_stage_model\.encoder\.down\.0\.block\.(\d+)\./);
  const vae: JsonObject = {
    in_channels: shape(`${V}encoder.conv_in.weight`)[1],
    out_channels: shape(`${V}decoder.conv_out.weight`)[0],
    block_out_channels: Array.from({ length: vaeLevels }, (_, l) => shape(`${V}encoder.down.${l}.block.${vaeLayers - 1}.conv2.weight`)[0]!),
    layers_per_block: vaeLayers,
    latent_channels: shape(`${V}post_quant_conv.weight`)[0],
  };
  let text: CheckpointLayout['text'];
  let textConfig: JsonObject;
  if ([...names].some((n) => n.startsWith(ORIGINAL_PREFIX.openclip))) {
    const O = ORIGINAL_PREFIX.openclip;
    const blocks = count(/^cond_stage_model\.model\.transformer\.resblocks\.(\d+)\./);
    text = { kind: 'openclip', layers: blocks - 1 };
    const [vocab, hidden] = shape(`${O}token_embedding.weight`);
    textConfig = { vocab_size: vocab, hidden_size: hidden, num_hidden_layers: blocks - 1, intermediate_size: shape(`${O}transformer.resblocks.0.mlp.c_fc.weight`)[0], max_position_embeddings: shape(`${O}positional_embedding`)[0] };
  } else if ([...names].some((n) => n.startsWith(ORIGINAL_PREFIX.clip))) {
    const C = ORIGINAL_PREFIX.clip;
    const tm = names.has(`${C}text_model.embeddings.token_embedding.weight`) ? `${C}text_model.` : C;
    const layers = count(new RegExp(`^${tm.replace(/\./g, '\\.')}encoder\\.layers\\.(\\d+)\\.`));
    text = { kind: 'clip', layers };
    const [vocab, hidden] = shape(`${tm}embeddings.token_embedding.weight`);
    textConfig = { vocab_size: vocab, hidden_size: hidden, num_hidden_layers: layers, intermediate_size: shape(`${tm}encoder.layers.0.mlp.fc1.weight`)[0], max_position_embeddings: shape(`${tm}embeddings.position_embedding.weight`)[0] };
  } else {
    throw new Error(`checkpoint ${f.path} has no text encoder: expected ${ORIGINAL_PREFIX.clip}* (SD 1.x, CLIP) or ${ORIGINAL_PREFIX.openclip}* (SD 2.x, OpenCLIP) tensors`);
  }
  return {
    file: f.path,
    architecture: text.kind === 'clip' ? 'sd1' : 'sd2',
    layout: { unet: { levels, layersPerBlock, attentionDown, attentionUp }, vae: { levels: vaeLevels, layersPerBlock: vaeLayers }, text },
    inferred: { unet, vae, text_encoder: textConfig },
    emaTensors: [...names].filter((n) => n.startsWith('model_ema.') && !/^model_ema\.(decay|num_updates)$/.test(n)).length,
  };
}

/** Reads what a checkpoint's names and shapes say (architecture, structure, settled config values). */
export function readCheckpointInfo(file: string): CheckpointInfo {
  const f = Safetensors.open(file);
  try {
    return describe(f);
  } finally {
    f.close();
  }
}

/** The config values the shapes settle that disagree with `configs`, as `component.key: shapes vs config`. */
function disagreements(info: CheckpointInfo, configs: PipelineConfigs): string[] {
  const out: string[] = [];
  for (const part of ['unet', 'vae', 'text_encoder'] as const) {
    for (const [k, v] of Object.entries(info.inferred[part])) {
      if (v === undefined) continue;
      const c = configs[part][k] ?? (k === 'transformer_layers_per_block' ? 1 : k === 'use_linear_projection' ? false : undefined);
      if (JSON.stringify(c) !== JSON.stringify(v)) out.push(`${part}.${k}: ${JSON.stringify(v)} in the checkpoint, ${JSON.stringify(c)} in the config`);
    }
  }
  return out;
}

/** The configs of a diffusers folder given as `config` (its scheduler, unet, vae, text encoder and tokenizer configs). */
function folderConfigs(dir: string): PipelineConfigs {
  const j = (rel: string, what: string): JsonObject => readJsonObject(path.join(dir, rel), `${what} (of the --config folder ${dir})`);
  const tok = path.join(dir, 'tokenizer', 'tokenizer_config.json');
  return {
    unet: j('unet/config.json', 'UNet config'),
    vae: j('vae/config.json', 'VAE config'),
    text_encoder: j('text_encoder/config.json', 'text encoder config'),
    scheduler: j('scheduler/scheduler_config.json', 'scheduler config'),
    tokenizer: fs.existsSync(tok) ? readJsonObject(tok, 'tokenizer config') : knownConfigs('sd1', 'epsilon').tokenizer,
  };
}

/** The tensors of one diffusers component: its name, and how to get its bytes from the checkpoint. */
interface PlannedTensor {
  readonly pair: NamePair;
  /** The checkpoint tensor read (the EMA twin when extracting EMA). */
  readonly source: TensorInfo;
  readonly shape: readonly number[];
}

/** The diffusers shape of a tensor, checking the original's fits its form. */
function diffusersShape(p: NamePair, t: TensorInfo, file: string): number[] {
  const s = [...t.shape];
  switch (p.form.kind) {
    case 'same':
      return s;
    case 'conv1x1':
      if (s.length !== 4 || s[2] !== 1 || s[3] !== 1) throw new Error(`checkpoint ${file}: '${p.original}' is [${s.join(', ')}], expected a 1x1 convolution kernel [o, i, 1, 1]`);
      return s.slice(0, 2);
    case 'split3':
      if (s.length < 1 || s[0]! % 3 !== 0) throw new Error(`checkpoint ${file}: '${p.original}' is [${s.join(', ')}], expected 3 x d rows (q, k, v)`);
      return [s[0]! / 3, ...s.slice(1)];
  }
}

/** The dtype of the text encoder's token embedding. */
function textDtype(f: SafetensorsFile): string {
  const name = [...f.tensors.keys()].find((n) => n.endsWith('token_embedding.weight') && n.startsWith('cond_stage_model.'));
  return name === undefined ? 'F32' : f.info(name).dtype;
}

/** The EMA twin of a UNet tensor in a full checkpoint: `model_ema.` and the name after `model.` without dots. */
export function emaName(original: string): string {
  return `model_ema.${original.slice('model.'.length).replace(/\./g, '')}`;
}

/** Writes the CLIP tokenizer of a `vocabSize`-token text encoder from the shipped merges (the first merges, for smaller vocabularies). */
function writeTokenizer(dir: string, vocabSize: number, config: JsonObject): void {
  const all = parseMerges(zlib.gunzipSync(fs.readFileSync(CLIP_MERGES_FILE)).toString('utf8'), CLIP_MERGES_FILE);
  const n = vocabSize - 2 * 256 - 2;
  if (n < 0 || n > CLIP_NUM_MERGES || n > all.length) {
    throw new Error(`the text encoder has ${vocabSize} tokens: a CLIP tokenizer has 514 to ${CLIP_NUM_MERGES + 514} (give --config <folder> with its tokenizer)`);
  }
  const merges = all.slice(0, n);
  ensureDir(dir, 'tokenizer folder');
  fs.writeFileSync(path.join(dir, 'vocab.json'), `${JSON.stringify(Object.fromEntries(clipVocabFromMerges(merges)))}\n`);
  fs.writeFileSync(path.join(dir, 'merges.txt'), `#version: 0.2\n${merges.map(([a, b]) => `${a} ${b}`).join('\n')}\n`);
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), `${JSON.stringify(config, null, 2)}\n`);
  const special = Object.fromEntries(['bos_token', 'eos_token', 'pad_token', 'unk_token'].map((k) => [k, config[k]]));
  fs.writeFileSync(path.join(dir, 'special_tokens_map.json'), `${JSON.stringify(special, null, 2)}\n`);
}

const writeJson = (file: string, obj: JsonObject): void => {
  ensureDir(path.dirname(file));
  fs.writeFileSync(file, configJson(obj));
};

/** The weights file of each component in a diffusers folder. */
const WEIGHTS_FILE = { unet: 'diffusion_pytorch_model.safetensors', vae: 'diffusion_pytorch_model.safetensors', text_encoder: 'model.safetensors' } as const;

/**
 * Converts a single-file checkpoint to a diffusers pipeline folder in `out` (which must not exist yet or be
 * empty; the caller stages it): model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/.
 * @throws Error naming the checkpoint and what is unknown: a layout this library does not know, tensors no map
 *   names, an architecture other than the known ones without `config`, or shapes that disagree with the configs.
 */
export function convertCheckpoint(file: string, out: string, options: CheckpointConvertOptions = {}): CheckpointConvertReport {
  const f = Safetensors.open(file);
  try {
    const info = describe(f);
    const map = new CheckpointNameMap(info.layout);
    const notice = options.onNotice ?? (() => undefined);
    let prediction = options.predictionType;
    let configs: PipelineConfigs;
    if (options.config !== undefined) {
      configs = folderConfigs(options.config);
      if (prediction !== undefined) configs = { ...configs, scheduler: { ...configs.scheduler, prediction_type: prediction } };
      prediction = configs.scheduler.prediction_type === 'v_prediction' ? 'v_prediction' : 'epsilon';
    } else {
      if (prediction === undefined) {
        prediction = info.architecture === 'sd2' ? 'v_prediction' : 'epsilon';
        if (info.architecture === 'sd2') {
          notice(`${file} is an SD 2.x checkpoint, which cannot say whether it is the 768 px v-prediction model or a 512 px base: taking v_prediction, as diffusers does (--prediction-type epsilon for a base model)`);
        }
      }
      configs = knownConfigs(info.architecture, prediction);
      // transformers records the dtype the text encoder was saved in.
      const dtype = { F16: 'float16', BF16: 'bfloat16', F32: 'float32' }[textDtype(f)] ?? 'float32';
      configs = { ...configs, text_encoder: { ...configs.text_encoder, dtype } };
    }
    const wrong = disagreements(info, configs);
    if (wrong.length > 0) {
      throw new Error(
        options.config !== undefined
          ? `checkpoint ${file} does not fit the configs of ${options.config}: ${wrong.join('; ')}`
          : `checkpoint ${file} is an SD ${info.architecture === 'sd1' ? '1.x' : '2.x'}-like checkpoint of an unknown size: ${wrong.join('; ')}. ` +
              'Give a diffusers pipeline folder of this architecture to take its configs from (convert --config <folder>; the API\'s checkpoint.config)',
      );
    }
    // Which UNet weights: the EMA twins when asked for (every UNet tensor must have one), else the plain ones.
    const useEma = options.extractEma === true;
    if (useEma && info.emaTensors === 0) throw new Error(`checkpoint ${file} has no EMA weights (model_ema.*): it is EMA-only or pruned already; convert it without --extract-ema`);
    if (!useEma && info.emaTensors > 0) notice(`${file} has EMA weights too (${info.emaTensors} model_ema.* tensors): the non-EMA UNet weights are taken, as diffusers does (--extract-ema takes the EMA ones, usually better for inference)`);
    const planned: Record<NamePair['component'], PlannedTensor[]> = { unet: [], vae: [], text_encoder: [] };
    const unknown: string[] = [];
    let ignored = 0;
    for (const name of f.names()) {
      if (map.ignored(name)) {
        ignored++;
        continue;
      }
      const pairs = map.toDiffusers(name);
      if (pairs.length === 0) unknown.push(name);
      for (const pair of pairs) {
        let source = f.info(name);
        if (useEma && pair.component === 'unet') {
          const twin = emaName(name);
          if (!f.tensors.has(twin)) throw new Error(`checkpoint ${file}: the UNet tensor '${name}' has no EMA twin '${twin}'`);
          source = f.info(twin);
          if (source.shape.join() !== f.info(name).shape.join()) throw new Error(`checkpoint ${file}: the EMA twin '${twin}' is [${source.shape.join(', ')}], not [${f.info(name).shape.join(', ')}]`);
        }
        planned[pair.component].push({ pair, source, shape: diffusersShape(pair, source, file) });
      }
    }
    if (unknown.length > 0) {
      throw new Error(`checkpoint ${file} has ${unknown.length} tensors no Stable Diffusion 1.x/2.x map names (an unknown architecture or extra networks?), e.g. ${unknown.slice(0, 5).join(', ')}`);
    }
    const report: CheckpointConvertReport['components'][number][] = [];
    for (const component of ['unet', 'vae', 'text_encoder'] as const) {
      const tensors = planned[component].sort((a, b) => (a.pair.diffusers < b.pair.diffusers ? -1 : a.pair.diffusers > b.pair.diffusers ? 1 : 0));
      let step = 0;
      const entries = tensors.map((t): [string, TensorBytesToWrite] => {
        const bytes = t.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[t.source.dtype];
        return [
          t.pair.diffusers,
          {
            dtype: t.source.dtype,
            shape: t.shape,
            byteLength: bytes,
            bytes: () => {
              const all = f.readBytes(t.source.name);
              options.onProgress?.({ phase: component, step: ++step, total: tensors.length });
              return t.pair.form.kind === 'split3' ? all.subarray(t.pair.form.part * bytes, (t.pair.form.part + 1) * bytes) : all;
            },
          },
        ];
      });
      writeJson(path.join(out, component, 'config.json'), configs[component]);
      writeSafetensorsBytes(path.join(out, component, WEIGHTS_FILE[component]), entries, { format: 'pt' });
      report.push({ folder: component, tensors: entries.length, bytes: entries.reduce((a, [, e]) => a + e.byteLength, 0) });
    }
    writeJson(path.join(out, 'scheduler', 'scheduler_config.json'), configs.scheduler);
    writeJson(path.join(out, 'model_index.json'), MODEL_INDEX);
    const tokenizerFolder = options.config !== undefined ? path.join(options.config, 'tokenizer') : undefined;
    if (tokenizerFolder !== undefined && fs.existsSync(tokenizerFolder)) {
      fs.cpSync(tokenizerFolder, path.join(out, 'tokenizer'), { recursive: true });
    } else {
      writeTokenizer(path.join(out, 'tokenizer'), Number(info.inferred.text_encoder.vocab_size), configs.tokenizer);
    }
    return {
      architecture: info.architecture,
      predictionType: prediction,
      configs: options.config ?? 'known',
      ema: useEma ? 'extracted' : info.emaTensors > 0 ? 'left out' : 'none',
      components: report,
      ignored,
    };
  } finally {
    f.close();
  }
}
