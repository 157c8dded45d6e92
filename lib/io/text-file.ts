/**
 * Reading a text file given by a user (sentences, a tokenizer's vocabulary): only a regular file of bounded size
 * is read, so a device (`/dev/zero`), a pipe or a socket given as a file fails at once, naming it, instead of
 * being read forever.
 */
import * as fs from 'node:fs';

/** The largest text file read (64 MiB). */
export const MAX_TEXT_BYTES = 64 * 1024 * 1024;

/**
 * Reads `file` as UTF-8. `what` names it in errors ("sentence file"); empty for a bare path.
 * @throws Error naming the file when it is missing, not a regular file, or larger than {@link MAX_TEXT_BYTES}.
 */
export function readTextFile(file: string, what: string): string {
  const fail = (why: string): Error => new Error(`cannot read ${what === '' ? '' : `${what} `}${file}: ${why}`);
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw fail(code === 'ENOENT' ? 'no such file (ENOENT)' : (code ?? (err as Error).message));
  }
  if (st.isDirectory()) throw fail('it is a folder');
  if (!st.isFile()) throw fail('it is not a regular file (a device, pipe or socket)');
  if (st.size > MAX_TEXT_BYTES) throw fail(`it is ${st.size} bytes, more than the ${MAX_TEXT_BYTES} a text file may have`);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw fail((err as NodeJS.ErrnoException).code ?? (err as Error).message);
  }
}
