/**
 * Files the facade and CLI tests of an edit share: a temporary folder with the two concepts' sentence files, and
 * the latents a `--save-latents` file holds.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { SafetensorsFile } from '../../lib/io/safetensors.js';

/** A temporary folder with `cat.txt` and `dog.txt` (one sentence a line) and the CLI options that read them. */
export interface SentenceFolder {
  readonly dir: string;
  /** `--source-sentences <dir>/cat.txt --target-sentences <dir>/dog.txt --no-cache` */
  readonly options: string[];
  remove(): void;
}

/** Makes a {@link SentenceFolder} named `prefix`-something under the system's temporary folder. */
export function sentenceFolder(prefix: string, source: readonly string[], target: readonly string[]): SentenceFolder {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.writeFileSync(path.join(dir, 'cat.txt'), source.join('\n'));
  fs.writeFileSync(path.join(dir, 'dog.txt'), target.join('\n'));
  return {
    dir,
    options: ['--source-sentences', path.join(dir, 'cat.txt'), '--target-sentences', path.join(dir, 'dog.txt'), '--no-cache'],
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** The `latent` tensor of a latents file the CLI saved (`--save-latents`), as written ([1, c, h, w]). */
export function readSavedLatents(file: string): tf.Tensor4D {
  const f = SafetensorsFile.open(file);
  try {
    const t = f.read('latent');
    return tf.tensor4d(t.data as Float32Array, t.shape as [number, number, number, number]);
  } finally {
    f.close();
  }
}
