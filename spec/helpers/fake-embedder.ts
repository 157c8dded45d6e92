/** A stand-in text encoder for direction tests: a sentence embeds to a [77, width] tensor filled with its length. */
import * as tf from '@tensorflow/tfjs-core';
import type { TextEmbedder } from '../../lib/editing/services.js';

/** Embeds each sentence as [77, width] filled with its length; counts its calls. */
export class FakeEmbedder implements TextEmbedder {
  calls = 0;
  constructor(private readonly width = 4) {}
  async embed(prompts: readonly string[]): Promise<tf.Tensor3D> {
    this.calls++;
    return tf.tidy(() => tf.stack(prompts.map((p) => tf.fill([77, this.width], p.length))) as tf.Tensor3D);
  }
  async meanEmbedding(sentences: readonly string[]): Promise<tf.Tensor3D> {
    const all = await this.embed(sentences);
    const mean = tf.tidy(() => tf.mean(all, 0, true) as tf.Tensor3D);
    all.dispose();
    return mean;
  }
}
