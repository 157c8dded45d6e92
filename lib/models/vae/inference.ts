/**
 * Inference-only forward passes of the shared blocks, for the VAE (`*ForInference`): no gradient, and every
 * intermediate freed as soon as the next exists, so they hold far less memory than the blocks' own `forward`.
 *
 * The VAE runs at image resolution: at 512x512 one 256-channel activation is 256 MB. The shared blocks compute
 * each forward inside one `tf.tidy` (what the UNet needs under `tf.grad`), which keeps every intermediate alive
 * until the block returns: a 256 -> 128 channel `ResnetBlock2D` at 512x512 holds ~1.9 GB at its end. The VAE is
 * never differentiated, so here the same blocks (their weights and configuration, unchanged) are run step by
 * step, each intermediate freed as soon as the next exists: the convolution's bias fused into it, the
 * normalisation with at most two full-size temporaries, the upsampling one resize. Same values as the shared
 * forwards up to float rounding (spec/vae.spec.ts checks both against each other and against diffusers). For a
 * full-size SD 1.x VAE on wasm this takes the peak of a 512x512 decode from 1,920 MB of tensors above the weights
 * to 1,024 MB (the SiLU of a 256-channel 512x512 activation: its input, the block's input, the sigmoid and the
 * result), and of an encode from 1,408 to 640 MB.
 */
import * as tf from '@tensorflow/tfjs-core';
import { kernelChoices } from '../../backend.js';
import { type Conv2d, conv2dByInputGradient, isSameStrideOne } from '../layers/conv2d.js';
import { type GroupNorm, groupMean } from '../layers/group-norm.js';
import type { ResnetBlock2D } from '../layers/resnet-block-2d.js';
import type { Downsample2D, Upsample2D } from '../layers/sampling.js';

/** `f(x)`, then frees `x`: for chaining functions that each make a new tensor from a temporary. */
function consume(x: tf.Tensor, f: (x: tf.Tensor) => tf.Tensor): tf.Tensor {
  try {
    return f(x);
  } finally {
    x.dispose();
  }
}

/**
 * `norm(x)` for NHWC `x`: `(x - mean) * (gamma / sqrt(var + eps)) + beta`, with the mean and the biased variance
 * of each group, as the shared `GroupNorm` computes them. The statistics take one full-size temporary (the
 * squared deviations); the normalisation two at a time; no reshaped view of `x` outlives the statistics (tfjs
 * counts a view's bytes again in `tf.memory()`).
 */
export function groupNormForInference(norm: GroupNorm, x: tf.Tensor): tf.Tensor {
  const shape = x.shape;
  const n = shape[0]!;
  const c = shape[shape.length - 1]!;
  const g = norm.numGroups;
  const perChannel = [n, ...shape.slice(1, -1).map(() => 1), c];
  // Per (item, channel) mean and scale: small tensors.
  const [mean, scale] = tf.tidy(() => {
    const grouped = tf.reshape(x, [n, -1, g, c / g]);
    const m = groupMean(grouped);
    const variance = groupMean(tf.squaredDifference(grouped, m));
    const rstd = tf.rsqrt(tf.add(variance, norm.eps));
    const expand = (t: tf.Tensor): tf.Tensor => tf.reshape(tf.tile(t, [1, 1, 1, c / g]), perChannel);
    return [expand(m), tf.mul(expand(rstd), norm.gamma.read())];
  });
  try {
    const centred = tf.sub(x, mean);
    const scaled = consume(centred, (t) => tf.mul(t, scale));
    return consume(scaled, (t) => tf.add(t, norm.beta.read()));
  } finally {
    tf.dispose([mean, scale]);
  }
}

/** SiLU `x * sigmoid(x)` with one temporary. */
export function siluForInference(x: tf.Tensor): tf.Tensor {
  const s = tf.sigmoid(x);
  return consume(s, (t) => tf.mul(x, t));
}

/**
 * `conv(x)`: one fused convolution with its bias (no separate bias-add temporary), or where the backend table says
 * so (tensorflow) a stride-1 `'same'` convolution through the input-gradient kernel, then the bias.
 */
export function conv2dForInference(conv: Conv2d, x: tf.Tensor): tf.Tensor {
  const kernel = conv.kernel.read() as tf.Tensor4D;
  if (kernelChoices().convByInputGradient && isSameStrideOne(kernel, conv.stride, conv.pad)) {
    const y = conv2dByInputGradient(x as tf.Tensor4D, kernel);
    return conv.bias === undefined ? y : consume(y, (t) => tf.add(t, conv.bias!.read()));
  }
  const [t, b, l, r] = conv.pad;
  const pad: 'valid' | [[number, number], [number, number], [number, number], [number, number]] =
    t + b + l + r === 0 ? 'valid' : [[0, 0], [t, b], [l, r], [0, 0]];
  return tf.fused.conv2d({
    x: x as tf.Tensor4D,
    filter: kernel,
    strides: conv.stride,
    pad,
    bias: conv.bias?.read(),
  });
}

/**
 * `block(x)` for a `ResnetBlock2D` without time embedding (the VAE's):
 * `shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))))))`, divided by its output scale factor.
 */
export function resnetForInference(block: ResnetBlock2D, x: tf.Tensor): tf.Tensor {
  if (block.timeEmbProj !== undefined) throw new Error('resnetForInference: blocks with a time embedding are not supported');
  let h = groupNormForInference(block.norm1, x);
  h = consume(h, siluForInference);
  h = consume(h, (t) => conv2dForInference(block.conv1, t));
  h = consume(h, (t) => groupNormForInference(block.norm2, t));
  h = consume(h, siluForInference);
  h = consume(h, (t) => conv2dForInference(block.conv2, t));
  const shortcut = block.convShortcut;
  const sc = shortcut !== undefined ? conv2dForInference(shortcut, x) : x;
  try {
    h = consume(h, (t) => tf.add(sc, t));
  } finally {
    if (sc !== x) sc.dispose();
  }
  const factor = block.outputScaleFactor;
  return factor !== 1 ? consume(h, (t) => tf.div(t, factor)) : h;
}

/** `down(x)`: the stride-2 convolution (with its padding). */
export function downsampleForInference(down: Downsample2D, x: tf.Tensor): tf.Tensor {
  return conv2dForInference(down.conv, x);
}

/**
 * `up(x)`: nearest 2x, then the convolution. The resize is tfjs' one kernel (PyTorch's `nearest` for a factor of
 * 2: source index `floor(i / 2)`), not the shared block's concatenations, which are there for a gradient the VAE
 * does not need and hold several copies.
 */
export function upsampleForInference(up: Upsample2D, x: tf.Tensor): tf.Tensor {
  const [, h, w] = x.shape as [number, number, number, number];
  const big = tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [2 * h, 2 * w], false, false);
  return consume(big, (t) => conv2dForInference(up.conv, t));
}
