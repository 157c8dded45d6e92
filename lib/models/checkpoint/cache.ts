/**
 * A single-file checkpoint given where a pipeline folder is expected (`--model v1-5.safetensors`): converted once to
 * a diffusers folder under the cache (`<cache>/checkpoints/<key>/`, the key made of the file's path, size, mtime and
 * the conversion options), and read from there afterwards. Without a cache, into a temporary folder that the caller
 * removes once the models are loaded.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureDir } from '../../io/folders.js';
import { type CheckpointConvertOptions, convertCheckpoint, isSingleFileCheckpoint } from './single-file.js';

/** The conversion options a checkpoint given as a model takes. */
export type CheckpointModelOptions = Pick<CheckpointConvertOptions, 'predictionType' | 'extractEma' | 'config'>;

/** Where a checkpoint's converted folder is, and whether it is temporary (to remove after loading). */
export interface CheckpointFolder {
  readonly dir: string;
  readonly temporary: boolean;
}

/** The cache key of a checkpoint: its resolved path, size and modification time, and the conversion options. */
export function checkpointKey(file: string, options: CheckpointModelOptions = {}): string {
  const st = fs.statSync(file);
  const config = options.config === undefined ? '' : path.resolve(options.config);
  return createHash('sha256')
    .update([path.resolve(file), st.size, st.mtimeMs, options.predictionType ?? '', options.extractEma === true ? 'ema' : '', config].join('\0'))
    .digest('hex')
    .slice(0, 24);
}

/**
 * The diffusers folder of checkpoint `file`: the cached conversion if there is one, else a new one (under
 * `cacheDir`, or a temporary folder when `cacheDir` is false). `onNotice` is told which.
 */
export function checkpointFolder(file: string, cacheDir: string | false, options: CheckpointModelOptions & { onNotice?: (m: string) => void } = {}): CheckpointFolder {
  const notice = options.onNotice ?? (() => undefined);
  if (cacheDir === false) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pix2pix-zero-checkpoint-'));
    try {
      notice(`${file} is a single-file checkpoint: converting it to a diffusers folder for this run (no cache; pix2pix-zero convert keeps one)`);
      convertCheckpoint(file, dir, { ...options, onNotice: notice });
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return { dir, temporary: true };
  }
  const dir = path.join(cacheDir, 'checkpoints', checkpointKey(file, options));
  if (fs.existsSync(path.join(dir, 'model_index.json'))) {
    notice(`${file} is a single-file checkpoint: reading its converted folder ${dir}`);
    return { dir, temporary: false };
  }
  ensureDir(path.dirname(dir), 'checkpoint cache folder');
  const staging = `${dir}.converting-${process.pid}-${Date.now()}`;
  try {
    notice(`${file} is a single-file checkpoint: converting it once to the diffusers folder ${dir}`);
    convertCheckpoint(file, staging, { ...options, onNotice: notice });
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(staging, dir);
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw err;
  }
  return { dir, temporary: false };
}

/**
 * Runs `read` on the diffusers folder of `model`: `model` itself when it is a folder, else the converted folder of
 * the single-file checkpoint (see {@link checkpointFolder}); a temporary conversion is removed once `read` has
 * finished, the weights being in memory by then. What `Pix2PixZero.load` and the facade's text-only load share.
 */
export async function withModelFolder<T>(
  model: string,
  cacheDir: string | false,
  options: CheckpointModelOptions & { onNotice?: (m: string) => void },
  read: (dir: string) => Promise<T>,
): Promise<T> {
  const converted = isSingleFileCheckpoint(model) ? checkpointFolder(model, cacheDir, options) : undefined;
  try {
    return await read(converted?.dir ?? model);
  } finally {
    if (converted?.temporary === true) fs.rmSync(converted.dir, { recursive: true, force: true });
  }
}
