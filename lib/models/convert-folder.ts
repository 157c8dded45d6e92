/**
 * Converting a model folder to the TensorFlow.js weights format, or a single-file Stable Diffusion 1.x/2.x
 * checkpoint to a diffusers pipeline folder: the library side of `pix2pix-zero convert` (cli/convert.ts runs it in
 * a worker thread and reports it). Every component with weights becomes a `model.json` (its config and a tfjs
 * weights manifest) with shards of at most `shardBytes`; every other file (model index, scheduler, tokenizer,
 * preprocessor and generation configs) is copied. The folder is built under a temporary name beside `out` and
 * renamed into place at the end, so a failure leaves nothing half-written.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { removeStaleStaging, stagingFolder } from '../io/convert-staging.js';
import { ensureDir } from '../io/folders.js';
import {
  type ComponentFolder,
  detectFolderKind,
  findWeights,
  isSafetensorsIndexName,
  readBlipFolder,
  readComponentFolder,
  readStableDiffusionFolder,
} from '../io/model-folder.js';
import { DEFAULT_SHARD_BYTES, MODEL_JSON, writeTfjsWeights } from '../io/tfjs-weights.js';
import { packageVersion } from '../paths.js';
import type { ProgressEvent } from '../progress.js';
import type { PredictionType } from './checkpoint/configs.js';
import { type CheckpointConvertReport, convertCheckpoint, isSingleFileCheckpoint } from './checkpoint/single-file.js';

/** Options of {@link convertModelFolder}. */
export interface ConvertOptions {
  /** How float weights are stored: `float32` (default, exact) or `float16` (half the size). */
  readonly dtype?: 'float32' | 'float16';
  /** The largest shard, in bytes (default 64 MiB). */
  readonly shardBytes?: number;
  /** Replace an existing non-empty `out` (default: refuse). */
  readonly force?: boolean;
  /** Called after each tensor, with the component's folder name (`unet`, `vae`, ... or `model`) as the phase. */
  readonly onProgress?: (event: ProgressEvent) => void;
  /** A checkpoint's prediction type, where the file cannot say it (SD 2.x). */
  readonly predictionType?: PredictionType;
  /** Take a full checkpoint's EMA UNet weights (as diffusers' `extract_ema`). */
  readonly extractEma?: boolean;
  /** A diffusers folder whose configs a checkpoint of another architecture takes (as `from_single_file(config=)`). */
  readonly config?: string;
  /** Told what was decided for the caller (a checkpoint's prediction type, EMA weights left out). */
  readonly onNotice?: (message: string) => void;
}

/** One converted component. */
export interface ConvertedComponent {
  /** Its folder, relative to the output (`.` for a BLIP or single-component folder). */
  readonly folder: string;
  readonly tensors: number;
  /** Bytes of tensor data written (the sum of the shards). */
  readonly bytes: number;
  readonly shards: number;
}

/** What {@link convertModelFolder} did. */
export interface ConvertReport {
  readonly source: string;
  readonly out: string;
  readonly kind: 'stable-diffusion' | 'blip' | 'component' | 'checkpoint';
  readonly dtype: 'float32' | 'float16';
  /** What a checkpoint conversion settled (architecture, prediction type, configs, EMA). */
  readonly checkpoint?: Omit<CheckpointConvertReport, 'components'>;
  readonly shardBytes: number;
  readonly components: ConvertedComponent[];
  /** Files copied as they are, relative to the output. */
  readonly copied: string[];
  /** Source files left out (the source weights and configs that model.json replaces, hidden files), relative. */
  readonly skipped: string[];
  /** Staging folders of earlier, interrupted conversions to the same place, removed first. */
  readonly removedStale: string[];
}

/** Files a component's `model.json` replaces, or that are weights in another form: not copied. */
function isReplacedByModelJson(name: string): boolean {
  return (
    name === 'config.json' ||
    name === MODEL_JSON ||
    name.endsWith('.safetensors') ||
    isSafetensorsIndexName(name) ||
    /\.(bin|ckpt|pt|pth)$/.test(name)
  );
}

/** Weight-like files whose presence means a config folder was meant to have weights. */
const WEIGHT_FILE = /\.(safetensors|bin|ckpt|pt|pth)$/;

/** The component in `dir`, if it is one with weights; a component whose weights cannot be read is an error. */
function componentIn(dir: string, what: string): ComponentFolder | undefined {
  const hasConfig = fs.existsSync(path.join(dir, 'config.json')) || fs.existsSync(path.join(dir, MODEL_JSON));
  if (!hasConfig) return undefined;
  try {
    findWeights(dir, what);
  } catch (err) {
    if (fs.readdirSync(dir).some((f) => WEIGHT_FILE.test(f))) throw err;
    return undefined; // a config without weights (a feature extractor, say): copied as it is
  }
  return readComponentFolder(dir, what);
}

/** Checks that `source` is a model folder this library reads, before anything is written. */
function validateSource(source: string): ConvertReport['kind'] {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(source);
  } catch {
    throw new Error(`model folder not found: ${source}`);
  }
  if (!stat.isDirectory()) {
    if (isSingleFileCheckpoint(source)) return 'checkpoint';
    throw new Error(
      source.endsWith('.safetensors')
        ? `${source} is not a single-file Stable Diffusion checkpoint in the original layout (it has no model.diffusion_model.* tensors)`
        : `${source} is not a folder or a .safetensors checkpoint (convert takes a diffusers or transformers model folder, or an SD 1.x/2.x checkpoint)`,
    );
  }
  const kind = detectFolderKind(source);
  switch (kind) {
    case 'stable-diffusion':
      readStableDiffusionFolder(source);
      return kind;
    case 'blip':
      readBlipFolder(source);
      return kind;
    case 'component':
      readComponentFolder(source, 'model');
      return kind;
    default:
      throw new Error(`${source} is not a model folder: expected model_index.json (a Stable Diffusion pipeline) or config.json (a BLIP model or a component)`);
  }
}

/** Whether `out` exists as something other than an empty folder. */
function occupied(out: string): boolean {
  try {
    const st = fs.statSync(out);
    return !st.isDirectory() || fs.readdirSync(out).length > 0;
  } catch {
    return false;
  }
}

/**
 * Converts a model folder (a diffusers Stable Diffusion pipeline, a transformers BLIP folder or one component;
 * safetensors or already converted) to the TensorFlow.js weights format in `out`.
 * @throws Error naming the bad input when the source is not a readable model folder, when `out` is not empty
 *   (without `force`), or when `out` lies inside the source; nothing is left at `out` then.
 */
export function convertModelFolder(source: string, out: string, options: ConvertOptions = {}): ConvertReport {
  const dtype = options.dtype ?? 'float32';
  const shardBytes = options.shardBytes ?? DEFAULT_SHARD_BYTES;
  const kind = validateSource(source);
  const src = path.resolve(source);
  const dest = path.resolve(out);
  if (dest === src || dest.startsWith(`${src}${path.sep}`) || src.startsWith(`${dest}${path.sep}`)) {
    throw new Error(`the output ${out} must not be the model folder ${source}, inside it, or around it`);
  }
  if (occupied(dest) && options.force !== true) {
    throw new Error(`${out} exists and is not an empty folder: choose another output or pass --force to replace it`);
  }
  ensureDir(path.dirname(dest), `the folder of ${out}`);
  const removedStale = removeStaleStaging(dest);
  const tmp = stagingFolder(dest);
  const report: ConvertReport = { source, out, kind, dtype, shardBytes, components: [], copied: [], skipped: [], removedStale };
  if (kind === 'checkpoint') return stageInto(tmp, dest, () => convertCheckpointReport(source, tmp, report, options));
  const convertedBy = `pix2pix-zero ${packageVersion()}`;

  const walk = (from: string, to: string, rel: string): void => {
    if (rel !== '.') fs.mkdirSync(to);
    const name = rel === '.' ? 'model' : rel;
    const component = componentIn(from, name);
    if (component !== undefined) {
      const weights = component.openWeights();
      try {
        const w = writeTfjsWeights(to, weights, component.config, {
          dtype,
          shardBytes,
          convertedBy,
          onTensor: (step, total) => options.onProgress?.({ phase: name, step, total }),
        });
        report.components.push({ folder: rel, tensors: w.tensors, bytes: w.bytes, shards: w.shards.length });
      } finally {
        weights.close();
      }
    }
    for (const entry of fs.readdirSync(from).sort()) {
      const relEntry = rel === '.' ? entry : `${rel}/${entry}`;
      const p = path.join(from, entry);
      const isDirectory = fs.statSync(p).isDirectory();
      if (entry.startsWith('.') || (component !== undefined && !isDirectory && isReplacedByModelJson(entry))) {
        report.skipped.push(relEntry);
      } else if (isDirectory) {
        walk(p, path.join(to, entry), relEntry);
      } else {
        fs.copyFileSync(p, path.join(to, entry));
        report.copied.push(relEntry);
      }
    }
  };

  return stageInto(tmp, dest, () => {
    fs.mkdirSync(tmp);
    walk(src, tmp, '.');
    return report;
  });
}

/** Builds the output in the staging folder `tmp` with `build`, then moves it to `dest` (replacing what is there); a failure removes `tmp`. */
function stageInto<T>(tmp: string, dest: string, build: () => T): T {
  try {
    const result = build();
    if (fs.existsSync(dest)) {
      const old = `${tmp}.replaced`;
      fs.renameSync(dest, old);
      fs.renameSync(tmp, dest);
      fs.rmSync(old, { recursive: true, force: true });
    } else {
      fs.renameSync(tmp, dest);
    }
    return result;
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Converts a single-file checkpoint into the staging folder `tmp`, filling in `report`. */
function convertCheckpointReport(source: string, tmp: string, report: ConvertReport, options: ConvertOptions): ConvertReport {
  const { components, ...checkpoint } = convertCheckpoint(source, tmp, {
    predictionType: options.predictionType,
    extractEma: options.extractEma,
    config: options.config,
    onNotice: options.onNotice,
    onProgress: options.onProgress,
  });
  return { ...report, checkpoint, components: components.map((c) => ({ ...c, shards: 1 })), copied: ['model_index.json', 'scheduler/scheduler_config.json', 'tokenizer/'] };
}
