/** Writing a byte stream into numbered shard files of bounded size (what the tfjs weights writer streams into). */
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Splits a byte stream into the shard files `names` (in `dir`) of at most `shardBytes` bytes each, opening each
 * only when its first byte comes. {@link ShardWriter.written} lists the files made; call {@link ShardWriter.close}
 * when done (also on failure).
 */
export class ShardWriter {
  private fd: number | undefined;
  private index = 0;
  private inShard = 0;
  /** The shard files opened so far, in order. */
  readonly written: string[] = [];

  constructor(
    private readonly dir: string,
    private readonly names: readonly string[],
    private readonly shardBytes: number,
  ) {}

  /** Appends `bytes`, moving to the next shard whenever one is full. */
  write(bytes: Uint8Array): void {
    let pos = 0;
    while (pos < bytes.length) {
      if (this.fd === undefined || this.inShard === this.shardBytes) this.next();
      const n = Math.min(bytes.length - pos, this.shardBytes - this.inShard);
      let done = 0;
      while (done < n) done += fs.writeSync(this.fd!, bytes, pos + done, n - done);
      pos += n;
      this.inShard += n;
    }
  }

  private next(): void {
    this.close();
    const name = this.names[this.index++];
    if (name === undefined) throw new Error('internal error: more tensor bytes than the planned shards hold');
    this.fd = fs.openSync(path.join(this.dir, name), 'w');
    this.written.push(name);
    this.inShard = 0;
  }

  /** Closes the open shard, if any. */
  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
