/**
 * The transformer MLP block of CLIP and BLIP (transformers' `CLIPMLP`, `BlipMLP`): `fc2(act(fc1(x)))`, with the
 * checkpoint's child names `fc1` and `fc2`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { activation } from './activations.js';
import { Linear } from './linear.js';
import { Module } from './module.js';

export class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  private readonly act: (x: tf.Tensor) => tf.Tensor;

  /** `hidden` -> `intermediate` -> `hidden`, with activation `act` (a name {@link activation} knows) between. */
  constructor(hidden: number, intermediate: number, act: string) {
    super();
    this.act = activation(act);
    this.fc1 = this.child('fc1', new Linear(hidden, intermediate));
    this.fc2 = this.child('fc2', new Linear(intermediate, hidden));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.fc2.forward(this.act(this.fc1.forward(x))));
  }
}
