/** diffusers' `FeedForward` with the `GEGLU` activation: `net.0.proj` (dim -> 2 * inner), gated GELU, `net.2`. */
import * as tf from '@tensorflow/tfjs-core';
import { gelu } from '../layers/activations.js';
import { Linear } from '../layers/linear.js';
import { Module } from '../layers/module.js';

/** `GEGLU`: one projection split into a value and a gate, `value * gelu(gate)` (exact erf GELU). */
export class GEGLU extends Module {
  readonly proj: Linear;
  constructor(dimIn: number, readonly dimOut: number) {
    super();
    // [in, out] on every backend: in the UNet the wide layout's faster forward (1024 x 640 by 640 x 5120: 44.5 -> 22.8
    // ms) did not show in the cross-attention gradient that dominates an edit (a batch-1 gradient at 64 x 64: 21.9 /
    // 22.8 s against 22.7 / 22.7 s), and the process kept 0.4 GiB more resident after a forward.
    this.proj = this.child('proj', new Linear(dimIn, dimOut * 2, true, { plainLayout: true }));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [value, gate] = tf.split(this.proj.forward(x), 2, -1);
      return tf.mul(value!, gelu(gate!));
    });
  }
}

/**
 * The most elements of the GEGLU projection computed at once (16 MiB of float32): longer sequences go through the
 * feed-forward in blocks of rows (diffusers' feed-forward chunking; each row's result is the same). At the 64 x 64
 * level of SD 1.x, batch 2, the projection alone is 2 x 4096 x 2560 floats (84 MB), and the gate's GELU and the
 * product hold four more of half that size.
 */
export const FEED_FORWARD_CHUNK_ELEMENTS = 1 << 22;

export class FeedForward extends Module {
  readonly geglu: GEGLU;
  readonly out: Linear;
  constructor(dim: number, mult = 4) {
    super();
    const inner = dim * mult;
    this.geglu = this.child('net.0', new GEGLU(dim, inner));
    this.out = this.child('net.2', new Linear(inner, dim));
  }
  forward(x: tf.Tensor): tf.Tensor {
    const shape = x.shape;
    const dim = shape[shape.length - 1]!;
    const rows = x.size / dim;
    const perBlock = Math.max(1, Math.floor(FEED_FORWARD_CHUNK_ELEMENTS / (2 * this.geglu.dimOut)));
    if (rows <= perBlock) return tf.tidy(() => this.out.forward(this.geglu.forward(x)));
    return tf.tidy(() => {
      const flat = tf.reshape(x, [rows, dim]);
      const parts: tf.Tensor[] = [];
      for (let start = 0; start < rows; start += perBlock) {
        const n = Math.min(perBlock, rows - start);
        parts.push(tf.tidy(() => this.out.forward(this.geglu.forward(tf.slice(flat, [start, 0], [n, dim])))));
      }
      return tf.reshape(tf.concat(parts, 0), [...shape.slice(0, -1), this.out.outFeatures]);
    });
  }
}
