/**
 * The output preflight every command runs before it loads a model: each output path must be non-empty, of a
 * kind the command writes (a `.png` image, a `.safetensors` file, a folder), not an existing folder where a file
 * is meant, creatable, and no two outputs of one command may be the same file. So a bad `--out` fails in the
 * first second, not after minutes of work.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { assertCreatable } from '../io/folders.js';
import { UsageError } from './command.js';

/** One output of a command: the option that names it, its path (undefined: not asked for) and what it is. */
export interface PlannedOutput {
  readonly option: string;
  readonly path: string | undefined;
  readonly kind: 'png' | 'safetensors' | 'folder';
}

const EXTENSION: Record<Exclude<PlannedOutput['kind'], 'folder'>, string> = { png: '.png', safetensors: '.safetensors' };

/**
 * Checks every output before any work. Wrong names (empty, wrong extension, the same file twice) are
 * {@link UsageError}s; places that cannot be written are errors naming the option and the path.
 */
export function preflightOutputs(outputs: readonly PlannedOutput[]): void {
  const seen = new Map<string, string>();
  for (const o of outputs) {
    if (o.path === undefined) continue;
    if (o.path.trim() === '') throw new UsageError(`${o.option} is empty: give a ${o.kind === 'folder' ? 'folder' : `${EXTENSION[o.kind]} file`} name`);
    const resolved = path.resolve(o.path);
    const other = seen.get(resolved);
    if (other !== undefined) throw new UsageError(`${other} and ${o.option} name the same file ${o.path}: give each output its own name`);
    seen.set(resolved, o.option);
    if (o.kind === 'folder') {
      if (fs.existsSync(resolved) && !fs.statSync(resolved).isDirectory()) throw new Error(`${o.option} ${o.path} is a file, not a folder`);
      assertCreatable(resolved, o.option);
      continue;
    }
    if (fs.existsSync(resolved) && fs.statSync(resolved).isDirectory()) throw new Error(`${o.option} ${o.path} is a folder; give a file name`);
    if (/[\\/]$/.test(o.path)) throw new UsageError(`${o.option} ${o.path} ends in a separator, so it names a folder; give a file name`);
    const ext = EXTENSION[o.kind];
    if (path.extname(o.path).toLowerCase() !== ext) {
      throw new UsageError(`${o.option} ${o.path}: this command writes ${o.kind === 'png' ? 'PNG images' : 'safetensors files'}; give a name ending in ${ext}`);
    }
    assertCreatable(resolved, o.option);
  }
}
