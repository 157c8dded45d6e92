/**
 * The on-disk cache of mean sentence embeddings. Each entry is a safetensors file (tensor `mean`, [1, tokens,
 * width]) whose metadata records what it was made from (the text encoder's fingerprint, a hash of the exact
 * sentences), its shape and a SHA-256 checksum of its values. An entry is used only when all of these agree and
 * every value is finite; otherwise the reader says why, and the caller recomputes and overwrites it.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { assertFiniteValues } from '../io/finite.js';
import { SafetensorsFile, writeSafetensors } from '../io/safetensors.js';

/** What a cache entry must have been made from. */
export interface CacheEntryKey {
  /** The text encoder's fingerprint. */
  readonly model: string;
  /** The exact sentences. */
  readonly sentences: readonly string[];
}

/** A hash of the exact sentence list. */
export function sentencesHash(sentences: readonly string[]): string {
  return createHash('sha256').update(sentences.join('\n')).digest('hex');
}

function checksum(data: Float32Array): string {
  return createHash('sha256').update(Buffer.from(data.buffer, data.byteOffset, data.byteLength)).digest('hex');
}

/** A cache entry read: the mean embedding, or why the entry cannot be used. */
export type CacheRead = { readonly mean: tf.Tensor3D } | { readonly problem: string };

/** Reads the entry `file` made for `key`; undefined when there is none. */
export function readCacheEntry(file: string, key: CacheEntryKey): CacheRead | undefined {
  if (!fs.existsSync(file)) return undefined;
  try {
    const f = SafetensorsFile.open(file);
    try {
      const m = f.metadata;
      if (m.model !== key.model) return { problem: `it was made with another text encoder (${m.model ?? 'none recorded'})` };
      if (m.sentences_sha256 === undefined || m.checksum === undefined) return { problem: 'it does not record what it was made from (an entry of an older version)' };
      if (m.sentences_sha256 !== sentencesHash(key.sentences)) return { problem: 'it was made from other sentences' };
      const t = f.read('mean');
      const shape = t.shape.join(',');
      if (t.shape.length !== 3 || t.shape[0] !== 1 || m.shape !== shape) return { problem: `its tensor is [${t.shape.join(', ')}], its record says [${m.shape ?? '?'}]` };
      const data = t.data as Float32Array;
      if (m.checksum !== checksum(data)) return { problem: 'its checksum does not match its values (a damaged file)' };
      assertFiniteValues(data, 'mean');
      return { mean: tf.tensor3d(data, t.shape as [number, number, number]) };
    } finally {
      f.close();
    }
  } catch (err) {
    return { problem: (err as Error).message };
  }
}

/** Writes the entry `file` for `key` (atomically); the values must be finite. */
export function writeCacheEntry(file: string, key: CacheEntryKey, mean: tf.Tensor3D): void {
  const data = mean.dataSync() as Float32Array;
  assertFiniteValues(data, `the mean embedding for ${file}`);
  writeSafetensors(
    file,
    { mean: { dtype: 'F32', shape: mean.shape, data } },
    { model: key.model, sentences: String(key.sentences.length), sentences_sha256: sentencesHash(key.sentences), shape: mean.shape.join(','), checksum: checksum(data) },
  );
}
