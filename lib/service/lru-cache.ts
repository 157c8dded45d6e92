/** A small least-recently-used cache that frees what it drops (tensors, here). */
export class LruCache<V> {
  private readonly entries = new Map<string, V>();

  constructor(
    private readonly capacity: number,
    private readonly free: (value: V) => void,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`cache capacity must be a positive integer, got ${capacity}`);
  }

  /** The value of `key`, now the most recently used; undefined when absent. */
  get(key: string): V | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  /** Keeps `value` under `key` (the cache owns it now), dropping and freeing the least recently used over the capacity. */
  set(key: string, value: V): void {
    const old = this.entries.get(key);
    if (old !== undefined && old !== value) this.free(old);
    this.entries.delete(key);
    this.entries.set(key, value);
    while (this.entries.size > this.capacity) {
      const [oldest, v] = this.entries.entries().next().value as [string, V];
      this.entries.delete(oldest);
      this.free(v);
    }
  }

  /** How many entries are kept. */
  get size(): number {
    return this.entries.size;
  }

  /** Drops and frees every entry. */
  clear(): void {
    for (const v of this.entries.values()) this.free(v);
    this.entries.clear();
  }
}
