/** `Embedding`: PyTorch's `nn.Embedding`, a lookup table indexed by int32 ids. */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { Module } from './module.js';

export class Embedding extends Module {
  readonly table: LayerVariable;

  constructor(
    readonly numEmbeddings: number,
    readonly dim: number,
  ) {
    super();
    this.table = this.weight('weight', [numEmbeddings, dim]);
  }

  /** Rows of the table for int32 `ids` of any shape; the result has shape [...ids.shape, dim]. */
  forward(ids: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const flat = tf.reshape(ids, [-1]);
      const rows = tf.gather(this.table.read(), flat);
      return tf.reshape(rows, [...ids.shape, this.dim]);
    });
  }
}
