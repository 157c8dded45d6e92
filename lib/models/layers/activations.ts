/** Activation functions as the reference models define them. */
import * as tf from '@tensorflow/tfjs-core';

/** The exact GELU, `x * 0.5 * (1 + erf(x / sqrt(2)))` (PyTorch's default `gelu`, diffusers' GEGLU). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))));
}

/** The tanh approximation of GELU (`gelu_new`, `gelu_pytorch_tanh`). */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
    return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(inner)));
  });
}

/** CLIP's `quick_gelu`, `x * sigmoid(1.702 x)`. */
export function quickGelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(tf.mul(x, 1.702))));
}

/** SiLU (swish), `x * sigmoid(x)`. */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
}

/** An activation's name in a transformers/diffusers config. */
export type ActivationName = 'gelu' | 'gelu_new' | 'gelu_pytorch_tanh' | 'quick_gelu' | 'silu' | 'swish' | 'relu';

/** Looks up an activation by its config name; an unknown name is an error naming the config field. */
export function activation(name: string, field = 'hidden_act'): (x: tf.Tensor) => tf.Tensor {
  switch (name) {
    case 'gelu':
      return gelu;
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
      return geluTanh;
    case 'quick_gelu':
      return quickGelu;
    case 'silu':
    case 'swish':
      return silu;
    case 'relu':
      return (x) => tf.relu(x);
    default:
      throw new Error(`${field}: unsupported activation '${name}'`);
  }
}
