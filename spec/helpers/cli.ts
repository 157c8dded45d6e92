/** Runs the CLI as a user would, in a child process. */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { ROOT } from './tensors.js';

const BIN = path.join(ROOT, 'bin', 'pix2pix-zero.js');

/** Runs the CLI as a user would; returns exit code, stdout, stderr. `env` adds variables; `undefined` removes one. */
export function cli(args: string[], env: Record<string, string | undefined> = {}): { code: number; out: string; err: string } {
  const merged: Record<string, string | undefined> = { ...process.env, ...env };
  for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: merged,
    timeout: 120_000,
  });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

