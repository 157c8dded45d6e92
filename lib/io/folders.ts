/**
 * Creating folders. Every folder this library creates goes through {@link ensureDir}: it walks the path one
 * component at a time with non-recursive `mkdir`, because Node 20's `fs.mkdirSync(p, { recursive: true })` spins
 * forever at 100 % CPU on some paths (any under `/proc`, where `mkdir` keeps answering ENOENT).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The nearest existing path at or above `p`, with the missing ones below it (nearest first). */
function nearestExisting(p: string): { existing: string; stats: fs.Stats | undefined; missing: string[] } {
  const missing: string[] = [];
  for (;;) {
    try {
      return { existing: p, stats: fs.statSync(p), missing };
    } catch {
      const parent = path.dirname(p);
      if (parent === p) return { existing: p, stats: undefined, missing };
      missing.push(p);
      p = parent;
    }
  }
}

function reason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EROFS') return 'read-only file system';
  if (code === 'ENOSPC') return 'no space left on the device';
  return code ?? (err as Error).message;
}

/**
 * Creates folder `dir` and its missing parents (like `mkdir -p`), without ever looping.
 * `what` names the folder in errors ("--out", "the cache folder").
 * @throws Error naming `what` and the path when a component exists and is not a folder, or cannot be created.
 */
export function ensureDir(dir: string, what = 'folder'): void {
  const { existing, stats, missing } = nearestExisting(path.resolve(dir));
  if (stats !== undefined && !stats.isDirectory()) throw new Error(`cannot create ${what} ${dir}: ${existing} is not a folder`);
  for (const m of missing.reverse()) {
    try {
      fs.mkdirSync(m);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && fs.statSync(m).isDirectory()) continue; // made meanwhile
      throw new Error(`cannot create ${what} ${dir}: ${m}: ${reason(err)}`);
    }
  }
}

/**
 * Checks, without creating anything, that `target` can be written: an existing folder must take a new file; else
 * the nearest existing ancestor must be a folder in which a file can be made (tried with a probe file that is
 * removed at once).
 * `what` names it in errors (`--out`).
 * @throws Error naming `what` and the path otherwise.
 */
export function assertCreatable(target: string, what: string): void {
  const resolved = path.resolve(target);
  const isFolder = fs.existsSync(resolved) && fs.statSync(resolved).isDirectory();
  const { existing: p, stats } = nearestExisting(isFolder ? resolved : path.dirname(resolved));
  if (stats !== undefined && !stats.isDirectory()) throw new Error(`${what} ${target} cannot be written: ${p} is not a folder`);
  const probe = path.join(p, `.pix2pix-zero-probe-${process.pid}-${Date.now()}`);
  try {
    fs.writeFileSync(probe, '', { flag: 'wx' });
  } catch (err) {
    throw new Error(`${what} ${target} cannot be written: no file can be created in ${p} (${reason(err)})`);
  }
  fs.rmSync(probe, { force: true });
}
