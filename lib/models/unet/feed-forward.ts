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
    this.proj = this.child('proj', new Linear(dimIn, dimOut * 2));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [value, gate] = tf.split(this.proj.forward(x), 2, -1);
      return tf.mul(value!, gelu(gate!));
    });
  }
}

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
    return tf.tidy(() => this.out.forward(this.geglu.forward(x)));
  }
}
