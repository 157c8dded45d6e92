/**
 * Direction discovery (pix2pix-zero §3.1): the edit direction from concept A to concept B is
 * `mean(E(sentences about B)) - mean(E(sentences about A))` in the text encoder's output space, [1, 77, d]. Mean
 * embeddings are cached on disk, keyed by the text encoder's fingerprint and the exact sentences, so a concept is
 * embedded once per model.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { inject, injectable } from 'inversify';
import { assertFiniteValues } from '../io/finite.js';
import { readCacheEntry, writeCacheEntry } from './embedding-cache.js';
import { DEFAULT_GENERATED_SENTENCES, generateSentences } from './sentence-generator.js';
import { builtinSentences, hasBuiltinBank } from './sentences.js';
import {
  type Concept,
  type DirectionDiscovery,
  type DirectionDiscoverySettings,
  type LongCallOptions,
  type TextEmbedder,
  TYPES,
  throwIfAborted,
} from './services.js';

/**
 * The sentences of a concept, and its name for messages: a word's built-in bank, else
 * {@link DEFAULT_GENERATED_SENTENCES} generated ones (seed 0), which `onNotice` is told about.
 */
export function conceptSentences(concept: Concept, onNotice?: (message: string) => void): { name: string; sentences: readonly string[] } {
  if (typeof concept === 'string') {
    if (hasBuiltinBank(concept)) return { name: concept, sentences: builtinSentences(concept) };
    const sentences = generateSentences(concept, { count: DEFAULT_GENERATED_SENTENCES, seed: 0 });
    onNotice?.(
      `no built-in sentence bank for '${concept}': using ${sentences.length} generated template sentences (seed 0; ` +
        `'pix2pix-zero sentences ${JSON.stringify(concept)}' prints them, to edit and give as a sentence file)`,
    );
    return { name: concept, sentences };
  }
  if (concept.sentences.length === 0) throw new Error(`concept '${concept.name}' has no sentences`);
  return concept;
}

/** The cache key of a mean embedding: the model and the exact sentences. */
export function embeddingCacheKey(modelId: string, sentences: readonly string[]): string {
  return createHash('sha256').update(modelId).update('\0').update(sentences.join('\n')).digest('hex').slice(0, 32);
}

/** The default cache folder: `$PIX2PIX_ZERO_CACHE`, else `~/.cache/pix2pix-zero`. */
export function defaultCacheDir(): string {
  const env = process.env.PIX2PIX_ZERO_CACHE;
  if (env !== undefined && env !== '') return env;
  return path.join(process.env.HOME ?? process.cwd(), '.cache', 'pix2pix-zero');
}

@injectable()
export class SentenceDirectionDiscovery implements DirectionDiscovery {
  constructor(
    @inject(TYPES.TextEmbedder) private readonly embedder: TextEmbedder,
    @inject(TYPES.DirectionDiscoverySettings) private readonly settings: DirectionDiscoverySettings,
  ) {}

  private cacheFile(sentences: readonly string[]): string | undefined {
    if (this.settings.cacheDir === false) return undefined;
    return path.join(this.settings.cacheDir, 'embeddings', `${embeddingCacheKey(this.settings.modelId, sentences)}.safetensors`);
  }

  async conceptEmbedding(concept: Concept, options: LongCallOptions = {}): Promise<tf.Tensor3D> {
    const { name, sentences } = conceptSentences(concept, this.settings.onNotice);
    const file = this.cacheFile(sentences);
    const key = { model: this.settings.modelId, sentences };
    const cached = file !== undefined ? readCacheEntry(file, key) : undefined;
    if (cached !== undefined && 'mean' in cached) return cached.mean;
    const warn = this.settings.onWarning ?? ((message: string) => process.emitWarning(message));
    if (cached !== undefined) warn(`cache entry ${file} of concept '${name}' is not used (${cached.problem}); recomputing it`);
    throwIfAborted(options.signal);
    const mean = await this.embedder.meanEmbedding(sentences, options);
    try {
      assertFiniteValues(mean.dataSync(), `the mean embedding of concept '${name}'`);
    } catch (err) {
      mean.dispose();
      throw err;
    }
    if (file !== undefined) {
      try {
        writeCacheEntry(file, key, mean);
      } catch {
        // The cache is an optimisation: a read-only or full disk must not fail the edit.
      }
    }
    return mean;
  }

  async direction(source: Concept, target: Concept, options: LongCallOptions = {}): Promise<tf.Tensor3D> {
    const src = conceptSentences(source, this.settings.onNotice);
    const tgt = conceptSentences(target, this.settings.onNotice);
    const progress = (step: number): void => options.onProgress?.({ phase: 'direction', step, total: 2 });
    const a = await this.conceptEmbedding(src, { signal: options.signal });
    progress(1);
    try {
      const b = await this.conceptEmbedding(tgt, { signal: options.signal });
      progress(2);
      const d = tf.sub(b, a) as tf.Tensor3D;
      b.dispose();
      return d;
    } finally {
      a.dispose();
    }
  }
}
