/**
 * Model fingerprints: a short hash that changes when a model component changes, used to key caches and to check
 * that a saved artefact (an inversion, cached embeddings) belongs to the model it is used with.
 *
 * It hashes the component's config, every tensor's name, dtype and shape, and the values of a sample of tensors
 * (the smallest ones with at least {@link MIN_SAMPLE} values: biases and norms, which training moves), read
 * through the component's weight source. So it is instant even for a multi-gigabyte UNet, it tells apart two
 * checkpoints of one architecture, and it is the same for a model and its float32 conversion to another weight
 * format (safetensors, sharded safetensors, tfjs manifests), whose values are identical.
 */
import { createHash } from 'node:crypto';
import type { ComponentFolder } from './model-folder.js';

/** How many tensors' values are hashed. */
const SAMPLES = 8;
/** The smallest tensor (in values) that is sampled. */
const MIN_SAMPLE = 16;

/** A 16-hex-digit fingerprint of a component folder (config, tensor layout, sampled values). */
export function componentFingerprint(component: ComponentFolder): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(component.config));
  const weights = component.openWeights();
  try {
    const names = weights.names().sort();
    const sizes = new Map<string, number>();
    for (const name of names) {
      const { dtype, shape } = weights.info(name);
      sizes.set(name, shape.reduce((a, b) => a * b, 1));
      h.update(`${name}:${dtype}:${shape.join('x')};`);
    }
    const sampled = names
      .filter((n) => sizes.get(n)! >= MIN_SAMPLE)
      .sort((a, b) => sizes.get(a)! - sizes.get(b)! || (a < b ? -1 : 1))
      .slice(0, SAMPLES);
    for (const name of sampled) {
      const { data } = weights.read(name);
      h.update(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    }
  } finally {
    weights.close();
  }
  return h.digest('hex').slice(0, 16);
}
