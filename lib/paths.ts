/** Paths inside the installed package. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'converted_models'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the pix2pix-zero package root (package.json + converted_models/)');
    dir = parent;
  }
}

/** The root of the pix2pix-zero package (where package.json is). */
export const PACKAGE_ROOT = findPackageRoot();

/** The shipped default model. */
export const DEFAULT_MODEL = path.join(PACKAGE_ROOT, 'converted_models', 'toyworld');

/** The environment variable that names the model used when none is given (default: {@link DEFAULT_MODEL}). */
export const MODEL_ENV = 'PIX2PIX_ZERO_MODEL';

/** The model used when no `--model` / `model` is given: `$PIX2PIX_ZERO_MODEL`, else {@link DEFAULT_MODEL}. */
export function defaultModel(): string {
  const env = process.env[MODEL_ENV];
  return env !== undefined && env !== '' ? env : DEFAULT_MODEL;
}

/** The real CLIP BPE merges (`assets/clip/merges.txt.gz`), from which converted checkpoints get their tokenizer. */
export const CLIP_MERGES_FILE = path.join(PACKAGE_ROOT, 'assets', 'clip', 'merges.txt.gz');

/** The built-in sentence banks (`<concept>.txt`, one sentence a line). */
export const SENTENCE_BANKS = path.join(PACKAGE_ROOT, 'assets', 'sentences');

/** The package's version from package.json. */
export function packageVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}
