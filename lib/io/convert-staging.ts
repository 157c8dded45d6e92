/**
 * The hidden staging folders of `convert`: the output is built as `.<out>.converting-<pid>-<ms since epoch>` beside
 * it and renamed into place at the end (a replaced output waits as `<staging>.replaced` until the new one is in
 * place). The name says who made it and when, so that folders left by a conversion that was killed can be told
 * from those of one still running, and removed by the next conversion to the same place.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A staging folder older than this is stale even if a process with its PID runs (the PID was reused). */
export const STALE_AFTER_MS = 24 * 60 * 60 * 1000;

/** The staging folder for `dest`, made by this process now. */
export function stagingFolder(dest: string): string {
  return path.join(path.dirname(dest), `.${path.basename(dest)}.converting-${process.pid}-${Date.now()}`);
}

/** The staging folders (and replaced outputs) beside `dest`, with the PID and time in their names. */
function stagingFoldersOf(dest: string): { file: string; pid: number; time: number; replaced: boolean }[] {
  const dir = path.dirname(dest);
  const prefix = `.${path.basename(dest)}.converting-`;
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((name) => {
    if (!name.startsWith(prefix)) return [];
    const m = /^(\d+)-(\d+)(\.replaced)?$/.exec(name.slice(prefix.length));
    return m === null ? [] : [{ file: path.join(dir, name), pid: Number(m[1]), time: Number(m[2]), replaced: m[3] !== undefined }];
  });
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Puts back an output that was moved aside to be replaced, if the new one never arrived; removes the rest.
 * Returns the folders removed.
 */
function clear(dest: string, folders: ReturnType<typeof stagingFoldersOf>): string[] {
  const removed: string[] = [];
  for (const f of folders) {
    if (f.replaced && !fs.existsSync(dest)) {
      fs.renameSync(f.file, dest);
      continue;
    }
    fs.rmSync(f.file, { recursive: true, force: true });
    removed.push(f.file);
  }
  return removed;
}

/**
 * Removes the staging folders beside `dest` left by conversions that are over: their process is gone, or they
 * are older than {@link STALE_AFTER_MS}. Returns the folders removed.
 */
export function removeStaleStaging(dest: string, now = Date.now()): string[] {
  return clear(dest, stagingFoldersOf(dest).filter((f) => f.pid !== process.pid && (!isRunning(f.pid) || now - f.time > STALE_AFTER_MS)));
}

/** Removes this process's staging folders beside `dest` (after an interrupted conversion). */
export function removeOwnStaging(dest: string): string[] {
  return clear(dest, stagingFoldersOf(dest).filter((f) => f.pid === process.pid));
}
