/**
 * Files of a checkpoint on disk, as a manifest or an index names them (tfjs `model.json`, safetensors
 * `*.index.json`): which names may be followed (a plain file name inside the folder), and reading a byte range of
 * an open file in full.
 */
import * as fs from 'node:fs';

/** Whether a shard path stays inside the folder: a plain file name, no separators, not hidden. */
export function isPlainFileName(p: unknown): p is string {
  return typeof p === 'string' && p.length > 0 && !p.includes('/') && !p.includes('\\') && !p.startsWith('.');
}

/**
 * Reads `length` bytes at file offset `position` of `fd` into `into` from index `at`, looping over short reads.
 * @throws the error `truncated()` gives when the file ends first.
 */
export function readExactly(fd: number, into: Uint8Array, at: number, length: number, position: number, truncated: () => Error): void {
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, into, at + done, length - done, position + done);
    if (n === 0) throw truncated();
    done += n;
  }
}
