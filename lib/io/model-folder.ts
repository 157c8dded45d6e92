/**
 * Model folders in the formats diffusers and transformers save: a component folder holds `config.json` (or
 * `scheduler_config.json`) and its weights (`diffusion_pytorch_model.safetensors` / `model.safetensors`, or a
 * sharded `*.safetensors.index.json`); a Stable Diffusion pipeline folder holds `model_index.json` and one
 * folder per component; a BLIP folder holds a transformers model, its image processor and its tokenizer.
 * A component converted by `pix2pix-zero convert` holds a `model.json` (its config and a tfjs weights manifest)
 * and shards instead, and reads the same way.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type JsonObject, isJsonObject, readJsonObject } from './json.js';
import { SafetensorsWeights, ShardedSafetensorsWeights, type WeightSource } from './weights.js';
import { MODEL_JSON, TfjsWeights, readTfjsModelJson } from './tfjs-weights.js';

/** Weight file stems, in the order they are looked for: diffusers first, then transformers. */
const WEIGHT_STEMS = ['diffusion_pytorch_model', 'model'];

/** A model component folder: its config, and where its weights are. */
export interface ComponentFolder {
  /** The folder. */
  readonly dir: string;
  /** The parsed `config.json` (or, in a converted folder, the config in `model.json`). */
  readonly config: JsonObject;
  /** The weights file, sharded index, or tfjs `model.json`. */
  readonly weightsPath: string;
  /** Opens the weights for reading (the caller closes them). */
  openWeights(): WeightSource;
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** tfjs weight shard names as `pix2pix-zero convert` and the tfjs converters write them. */
const TFJS_SHARD = /^group\d+-shard\d+of\d+\.bin$/;

/**
 * Finds the weights of a component folder: safetensors (single or sharded) first, then a converted folder's
 * `model.json`; throws saying what was looked for and what was found.
 */
export function findWeights(dir: string, what: string): string {
  for (const stem of WEIGHT_STEMS) {
    for (const name of [`${stem}.safetensors`, `${stem}.safetensors.index.json`]) {
      const p = path.join(dir, name);
      if (fs.existsSync(p)) return p;
    }
  }
  const tfjs = path.join(dir, MODEL_JSON);
  if (fs.existsSync(tfjs)) return tfjs;
  const present = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  if (present.some((f) => TFJS_SHARD.test(f))) {
    throw new Error(`${what} weights not found in ${dir}: it has tfjs weight shards but no ${MODEL_JSON} describing them (convert the model again)`);
  }
  const pt = present.filter((f) => f.endsWith('.bin') || f.endsWith('.ckpt') || f.endsWith('.pt'));
  const hint =
    pt.length > 0
      ? ` It has PyTorch pickle weights (${pt.join(', ')}), which are not read (unsafe to unpickle): re-save the model with save_pretrained(..., safe_serialization=True).`
      : '';
  const fp16 = present.filter((f) => /\.fp16\.safetensors$/.test(f));
  const variant = fp16.length > 0 ? ` It has fp16 variants (${fp16.join(', ')}): rename one to drop '.fp16'.` : '';
  throw new Error(
    `${what} weights not found in ${dir}: expected ${WEIGHT_STEMS.map((s) => `${s}.safetensors`).join(' or ')} (or a sharded *.safetensors.index.json).${hint}${variant}`,
  );
}

/** Whether a weights path found by {@link findWeights} is a converted folder's tfjs `model.json`. */
export function isTfjsWeightsPath(weightsPath: string): boolean {
  return path.basename(weightsPath) === MODEL_JSON;
}

/** Opens a weights file, sharded index or tfjs `model.json` found by {@link findWeights}. */
export function openWeights(weightsPath: string): WeightSource {
  if (isTfjsWeightsPath(weightsPath)) return new TfjsWeights(weightsPath);
  return weightsPath.endsWith('.index.json')
    ? new ShardedSafetensorsWeights(weightsPath)
    : new SafetensorsWeights(weightsPath);
}

/**
 * Reads a component folder (`config.json` + safetensors weights, or a converted folder's `model.json` + shards,
 * whose config is the one in `model.json`). `what` names it in errors.
 */
export function readComponentFolder(dir: string, what: string): ComponentFolder {
  if (!isDir(dir)) throw new Error(`${what} folder not found: ${dir}`);
  const configFile = path.join(dir, 'config.json');
  const modelJson = path.join(dir, MODEL_JSON);
  const converted = !fs.existsSync(configFile) && fs.existsSync(modelJson);
  const config = converted ? readTfjsModelJson(modelJson).config : readJsonObject(configFile, `${what} config`);
  const weightsPath = converted ? modelJson : findWeights(dir, what);
  return { dir, config, weightsPath, openWeights: () => openWeights(weightsPath) };
}

/** The tokenizer files of a folder: a `tokenizer.json`, or the files of the slow tokenizers. */
export interface TokenizerFiles {
  readonly dir: string;
  /** `tokenizer.json` (the fast-tokenizer form), if present. */
  readonly tokenizerJson?: string;
  /** CLIP BPE: `vocab.json` + `merges.txt`. */
  readonly vocabJson?: string;
  readonly merges?: string;
  /** BERT WordPiece: `vocab.txt`. */
  readonly vocabTxt?: string;
  /** `tokenizer_config.json`, if present. */
  readonly config: JsonObject;
  /** `special_tokens_map.json`, if present. */
  readonly specialTokens: JsonObject;
}

/** Reads a tokenizer folder; at least one complete set of vocabulary files must be present. */
export function readTokenizerFolder(dir: string, what = 'tokenizer'): TokenizerFiles {
  if (!isDir(dir)) throw new Error(`${what} folder not found: ${dir}`);
  const opt = (name: string): string | undefined => {
    const p = path.join(dir, name);
    return fs.existsSync(p) ? p : undefined;
  };
  const optJson = (name: string): JsonObject => {
    const p = opt(name);
    return p === undefined ? {} : readJsonObject(p, `${what} ${name}`);
  };
  const files: TokenizerFiles = {
    dir,
    tokenizerJson: opt('tokenizer.json'),
    vocabJson: opt('vocab.json'),
    merges: opt('merges.txt'),
    vocabTxt: opt('vocab.txt'),
    config: optJson('tokenizer_config.json'),
    specialTokens: optJson('special_tokens_map.json'),
  };
  const bpe = files.vocabJson !== undefined && files.merges !== undefined;
  if (files.tokenizerJson === undefined && !bpe && files.vocabTxt === undefined) {
    throw new Error(
      `${what} in ${dir} has no vocabulary: expected tokenizer.json, or vocab.json + merges.txt (CLIP), or vocab.txt (BERT)`,
    );
  }
  return files;
}

/** The resolved parts of a Stable Diffusion pipeline folder. */
export interface StableDiffusionFolder {
  readonly dir: string;
  /** The parsed `model_index.json`. */
  readonly modelIndex: JsonObject;
  readonly unet: ComponentFolder;
  readonly vae: ComponentFolder;
  readonly textEncoder: ComponentFolder;
  readonly tokenizer: TokenizerFiles;
  /** The parsed `scheduler/scheduler_config.json`. */
  readonly schedulerConfig: JsonObject;
}

/**
 * Resolves a diffusers Stable Diffusion pipeline folder: `model_index.json` and the folders `unet/`, `vae/`,
 * `text_encoder/`, `tokenizer/`, `scheduler/`. Each missing or malformed part is a clear error.
 */
export function readStableDiffusionFolder(dir: string): StableDiffusionFolder {
  if (!isDir(dir)) throw new Error(`Stable Diffusion model folder not found: ${dir}`);
  const modelIndex = readJsonObject(
    path.join(dir, 'model_index.json'),
    'Stable Diffusion model index (model_index.json; is this a diffusers pipeline folder?)',
  );
  for (const part of ['unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler']) {
    if (!(part in modelIndex)) throw new Error(`model_index.json in ${dir} does not list the component '${part}'`);
  }
  return {
    dir,
    modelIndex,
    unet: readComponentFolder(path.join(dir, 'unet'), 'UNet'),
    vae: readComponentFolder(path.join(dir, 'vae'), 'VAE'),
    textEncoder: readComponentFolder(path.join(dir, 'text_encoder'), 'text encoder'),
    tokenizer: readTokenizerFolder(path.join(dir, 'tokenizer')),
    schedulerConfig: readJsonObject(path.join(dir, 'scheduler', 'scheduler_config.json'), 'scheduler config'),
  };
}

/** The resolved parts of a BLIP captioning folder (transformers' `BlipForConditionalGeneration`). */
export interface BlipFolder {
  readonly dir: string;
  readonly model: ComponentFolder;
  /** The parsed `preprocessor_config.json`. */
  readonly preprocessorConfig: JsonObject;
  readonly tokenizer: TokenizerFiles;
}

/**
 * The image processor config of a transformers folder: `preprocessor_config.json`, or (as transformers 5's
 * `processor.save_pretrained` writes it) the `image_processor` object of `processor_config.json`.
 */
function readImageProcessorConfig(dir: string): JsonObject {
  const pre = path.join(dir, 'preprocessor_config.json');
  const proc = path.join(dir, 'processor_config.json');
  if (!fs.existsSync(pre) && fs.existsSync(proc)) {
    const nested = readJsonObject(proc, 'BLIP processor config').image_processor;
    if (isJsonObject(nested)) return nested;
  }
  return readJsonObject(pre, 'BLIP image processor config');
}

/** Resolves a transformers BLIP folder: `config.json` of a BLIP model, weights, image processor, tokenizer. */
export function readBlipFolder(dir: string): BlipFolder {
  const model = readComponentFolder(dir, 'BLIP');
  const type = model.config.model_type;
  const arch = model.config.architectures;
  const isBlip = type === 'blip' || (Array.isArray(arch) && arch.includes('BlipForConditionalGeneration'));
  if (!isBlip) {
    throw new Error(
      `${path.join(dir, 'config.json')} is not a BLIP captioning model (model_type ${JSON.stringify(type)}; expected "blip")`,
    );
  }
  return {
    dir,
    model,
    preprocessorConfig: readImageProcessorConfig(dir),
    tokenizer: readTokenizerFolder(dir, 'BLIP tokenizer'),
  };
}

/** What kind of folder `dir` is: a Stable Diffusion pipeline, a BLIP model, a single component, or unknown. */
export function detectFolderKind(dir: string): 'stable-diffusion' | 'blip' | 'component' | 'unknown' {
  if (fs.existsSync(path.join(dir, 'model_index.json'))) return 'stable-diffusion';
  if (!fs.existsSync(path.join(dir, 'config.json')) && fs.existsSync(path.join(dir, MODEL_JSON))) {
    try {
      return readTfjsModelJson(path.join(dir, MODEL_JSON)).config.model_type === 'blip' ? 'blip' : 'component';
    } catch {
      return 'component';
    }
  }
  if (fs.existsSync(path.join(dir, 'config.json'))) {
    try {
      const c = readJsonObject(path.join(dir, 'config.json'), 'config');
      if (c.model_type === 'blip') return 'blip';
    } catch {
      return 'component';
    }
    return 'component';
  }
  return 'unknown';
}
