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
import { MODEL_JSON, readTfjsModelJson } from './tfjs-weights/manifest.js';
import { TfjsWeights } from './tfjs-weights/reader.js';

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
  /** The weights variant read (`fp16`), if not the plain files. */
  readonly variant?: string;
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

/** A weights variant name (`fp16`, `ema`, `non_ema`): what diffusers' `variant=` puts into the file names. */
const VARIANT_NAME = /^[A-Za-z0-9_]+$/;

/**
 * The file names of a weight stem's variant, as diffusers and transformers `save_pretrained(variant=...)` write
 * them: `<stem>.<variant>.safetensors`, a sharded `<stem>.safetensors.index.<variant>.json` (its shards
 * `<stem>.<variant>-0000k-of-0000n.safetensors`), or the older `<stem>.safetensors.<variant>.index.json`.
 * Without a variant, the plain names.
 */
export function variantWeightNames(stem: string, variant?: string): string[] {
  if (variant === undefined) return [`${stem}.safetensors`, `${stem}.safetensors.index.json`];
  return [`${stem}.${variant}.safetensors`, `${stem}.safetensors.index.${variant}.json`, `${stem}.safetensors.${variant}.index.json`];
}

/** The variants whose weights are in a folder's file list (`fp16` for `model.fp16.safetensors`, ...). */
export function presentVariants(files: readonly string[]): string[] {
  const found = new Set<string>();
  for (const stem of WEIGHT_STEMS) {
    const e = stem; // the stems are plain words
    const forms = [new RegExp(`^${e}\\.([A-Za-z0-9_]+)\\.safetensors$`), new RegExp(`^${e}\\.safetensors\\.index\\.([A-Za-z0-9_]+)\\.json$`), new RegExp(`^${e}\\.safetensors\\.([A-Za-z0-9_]+)\\.index\\.json$`)];
    for (const f of files) {
      for (const re of forms) {
        const m = re.exec(f);
        if (m !== null && m[1] !== 'index') found.add(m[1]!);
      }
    }
  }
  return [...found].sort();
}

/** The first weights file of `dir` in `variant` (or the plain files), if any. */
function firstWeights(dir: string, variant: string | undefined): string | undefined {
  for (const stem of WEIGHT_STEMS) {
    for (const name of variantWeightNames(stem, variant)) {
      const p = path.join(dir, name);
      if (fs.existsSync(p)) return p;
    }
  }
  return undefined;
}

/** Where a component's weights are, and which variant they are (undefined: the plain files). */
export interface FoundWeights {
  readonly path: string;
  readonly variant?: string;
  /** Why a variant was read though none was asked for (the folder has no plain weights), for a notice. */
  readonly note?: string;
}

/**
 * Finds the weights of a component folder, as diffusers' `from_pretrained(variant=...)`: with a variant, its files;
 * without one, the plain files, else the only variant the folder has (a folder of `*.fp16.safetensors` alone,
 * with a note saying so). Then a converted folder's `model.json`. Throws saying what was looked for and what was
 * found.
 */
export function findWeightFiles(dir: string, what: string, variant?: string): FoundWeights {
  if (variant !== undefined && !VARIANT_NAME.test(variant)) throw new Error(`weights variant '${variant}' is not a variant name (letters, digits and _, e.g. fp16)`);
  const present = isDir(dir) ? fs.readdirSync(dir) : [];
  const variants = presentVariants(present);
  if (variant !== undefined) {
    const p = firstWeights(dir, variant);
    if (p !== undefined) return { path: p, variant };
    const plain = firstWeights(dir, undefined) !== undefined ? ' but plain weights (read them without a variant)' : '';
    throw new Error(
      `${what} weights of variant '${variant}' not found in ${dir}: expected ${variantWeightNames(WEIGHT_STEMS[0]!, variant).join(' or ')} ` +
        `(or the same for ${WEIGHT_STEMS.slice(1).join(', ')}); it has ${variants.length > 0 ? `the variants ${variants.join(', ')}` : 'no variants'}${plain}`,
    );
  }
  const plain = firstWeights(dir, undefined);
  if (plain !== undefined) return { path: plain };
  if (variants.length === 1) {
    const p = firstWeights(dir, variants[0])!;
    return { path: p, variant: variants[0], note: `${what} in ${dir} has only '${variants[0]}' variant weights: ${path.basename(p)} is read (as --variant ${variants[0]})` };
  }
  if (variants.length > 1) throw new Error(`${what} in ${dir} has no plain weights but the variants ${variants.join(', ')}: choose one (--variant / the variant option)`);
  const tfjs = path.join(dir, MODEL_JSON);
  if (fs.existsSync(tfjs)) return { path: tfjs };
  if (present.some((f) => TFJS_SHARD.test(f))) {
    throw new Error(`${what} weights not found in ${dir}: it has tfjs weight shards but no ${MODEL_JSON} describing them (convert the model again)`);
  }
  const pt = present.filter((f) => f.endsWith('.bin') || f.endsWith('.ckpt') || f.endsWith('.pt'));
  const hint =
    pt.length > 0
      ? ` It has PyTorch pickle weights (${pt.join(', ')}), which are not read (unsafe to unpickle): re-save the model with save_pretrained(..., safe_serialization=True).`
      : '';
  throw new Error(
    `${what} weights not found in ${dir}: expected ${WEIGHT_STEMS.map((s) => `${s}.safetensors`).join(' or ')} (or a sharded *.safetensors.index.json, or a variant such as ${WEIGHT_STEMS[0]}.fp16.safetensors).${hint}`,
  );
}

/**
 * The weights file of a component folder ({@link findWeightFiles}'s path): safetensors (single or sharded, plain
 * or the variant asked for, or the only variant there), then a converted folder's `model.json`.
 */
export function findWeights(dir: string, what: string, variant?: string): string {
  return findWeightFiles(dir, what, variant).path;
}

/** Whether a file name is a sharded safetensors index: `*.safetensors.index.json`, or a variant's (`*.index.fp16.json`, `*.fp16.index.json`). */
export function isSafetensorsIndexName(name: string): boolean {
  return /\.safetensors(\.[A-Za-z0-9_]+)?\.index(\.[A-Za-z0-9_]+)?\.json$/.test(name);
}

/** Whether a weights path found by {@link findWeights} is a converted folder's tfjs `model.json`. */
export function isTfjsWeightsPath(weightsPath: string): boolean {
  return path.basename(weightsPath) === MODEL_JSON;
}

/** Opens a weights file, sharded index or tfjs `model.json` found by {@link findWeights}. */
export function openWeights(weightsPath: string): WeightSource {
  if (isTfjsWeightsPath(weightsPath)) return new TfjsWeights(weightsPath);
  return isSafetensorsIndexName(path.basename(weightsPath))
    ? new ShardedSafetensorsWeights(weightsPath)
    : new SafetensorsWeights(weightsPath);
}

/** Which weights of a folder to read. */
export interface WeightVariantOptions {
  /** The weights variant (`fp16`: `*.fp16.safetensors`), as diffusers' `variant=`. Default: the plain files, else the only variant. */
  readonly variant?: string;
  /** Told when other weights than those asked for are read (a folder of fp16 files only; a pipeline component without the variant). */
  readonly onNotice?: (message: string) => void;
}

/**
 * Reads a component folder (`config.json` + safetensors weights, or a converted folder's `model.json` + shards,
 * whose config is the one in `model.json`). `what` names it in errors.
 */
export function readComponentFolder(dir: string, what: string, options: WeightVariantOptions = {}): ComponentFolder {
  if (!isDir(dir)) throw new Error(`${what} folder not found: ${dir}`);
  const configFile = path.join(dir, 'config.json');
  const modelJson = path.join(dir, MODEL_JSON);
  const converted = !fs.existsSync(configFile) && fs.existsSync(modelJson);
  const config = converted ? readTfjsModelJson(modelJson).config : readJsonObject(configFile, `${what} config`);
  const found: FoundWeights = converted ? { path: modelJson } : findWeightFiles(dir, what, options.variant);
  if (found.note !== undefined) options.onNotice?.(found.note);
  const weightsPath = found.path;
  return { dir, config, weightsPath, variant: found.variant, openWeights: () => openWeights(weightsPath) };
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
export function readStableDiffusionFolder(dir: string, options: WeightVariantOptions = {}): StableDiffusionFolder {
  if (!isDir(dir)) throw new Error(`Stable Diffusion model folder not found: ${dir}`);
  const modelIndex = readJsonObject(
    path.join(dir, 'model_index.json'),
    'Stable Diffusion model index (model_index.json; is this a diffusers pipeline folder?)',
  );
  for (const part of ['unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler']) {
    if (!(part in modelIndex)) throw new Error(`model_index.json in ${dir} does not list the component '${part}'`);
  }
  // As diffusers' pipelines: with a variant, the components that lack it read their plain weights, but at least
  // one must have it. One notice for the folder, not one per component.
  const notes: string[] = [];
  const parts = { unet: 'UNet', vae: 'VAE', text_encoder: 'text encoder' } as const;
  const variantOf = (sub: string): string | undefined => {
    const d = path.join(dir, sub);
    return options.variant !== undefined && isDir(d) && presentVariants(fs.readdirSync(d)).includes(options.variant) ? options.variant : undefined;
  };
  if (options.variant !== undefined && Object.keys(parts).every((sub) => variantOf(sub) === undefined)) {
    throw new Error(`model folder ${dir} has no '${options.variant}' variant weights in ${Object.keys(parts).join(', ')} (expected e.g. unet/diffusion_pytorch_model.${options.variant}.safetensors)`);
  }
  const read = (sub: keyof typeof parts): ComponentFolder =>
    readComponentFolder(path.join(dir, sub), parts[sub], { variant: variantOf(sub), onNotice: (m) => notes.push(m) });
  const unet = read('unet');
  const vae = read('vae');
  const textEncoder = read('text_encoder');
  const components = { unet, vae, text_encoder: textEncoder };
  if (notes.length > 0 || (options.variant !== undefined && Object.values(components).some((c) => c.variant !== options.variant))) {
    options.onNotice?.(variantNotice(dir, options.variant, components));
  }
  return {
    dir,
    modelIndex,
    unet,
    vae,
    textEncoder,
    tokenizer: readTokenizerFolder(path.join(dir, 'tokenizer')),
    schedulerConfig: readJsonObject(path.join(dir, 'scheduler', 'scheduler_config.json'), 'scheduler config'),
  };
}

/** The one-line notice of a pipeline read in other weights than asked for: each component and the files it read. */
function variantNotice(dir: string, asked: string | undefined, parts: Record<string, ComponentFolder>): string {
  const read = Object.entries(parts).map(([name, c]) => `${name}: ${c.variant ?? 'plain'}`).join(', ');
  return asked === undefined
    ? `model folder ${dir} has no plain weights, only a variant: reading it (${read}; float16 values are widened to float32)`
    : `model folder ${dir} lacks the '${asked}' variant for some components: reading their plain weights (${read})`;
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
