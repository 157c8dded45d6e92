/**
 * `Conv2d`: PyTorch's `nn.Conv2d` on NHWC tensors, with explicit (possibly asymmetric) zero padding, and an
 * input gradient computed by a forward convolution.
 *
 * Why the custom gradient: the wasm backend's built-in `Conv2DBackpropInput` is 4-25x slower than its forward
 * convolution, and pix2pix-zero differentiates the whole UNet with respect to its input latent at every step.
 * The input gradient of `y = conv(pad(x), W, stride s)` is a full correlation of `dy` (dilated by `s`) with `W`
 * flipped in space and with its in/out channels swapped, which is itself a forward convolution. Only the input
 * gets a gradient: the kernel and bias are constants here (this library never trains).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { kernelChoices } from '../../backend.js';
import { matMulByConstant } from './matmul.js';
import { Module } from './module.js';

/** Zero padding as [top, bottom, left, right]. */
export type Padding4 = [number, number, number, number];

/** Inserts `s - 1` zeros between the rows and columns of an NHWC tensor. */
function dilate(dy: tf.Tensor4D, s: number): tf.Tensor4D {
  if (s === 1) return dy;
  const [n, h, w, c] = dy.shape;
  const spread = tf.pad(tf.reshape(dy, [n, h, 1, w, 1, c]), [[0, 0], [0, 0], [0, s - 1], [0, 0], [0, s - 1], [0, 0]]);
  return tf.slice(tf.reshape(spread, [n, h * s, w * s, c]) as tf.Tensor4D, [0, 0, 0, 0], [n, (h - 1) * s + 1, (w - 1) * s + 1, c]);
}

/**
 * The kernel flipped in space ([kh, kw] reversed, which is the flattened kh * kw axis reversed) with its in/out
 * channels swapped. Built from contiguous slices: tfjs' `reverse` kernel takes ~1 s (wasm) and ~12 s (cpu) on a
 * 3x3x1280x1280 kernel, this ~0.5 s.
 */
function flippedKernel(kernel: tf.Tensor4D): tf.Tensor4D {
  const [kh, kw, cin, cout] = kernel.shape;
  const taps = tf.split(tf.reshape(kernel, [kh * kw, cin, cout]), kh * kw, 0).reverse();
  return tf.transpose(tf.reshape(taps.length === 1 ? taps[0]! : tf.concat(taps, 0), [kh, kw, cin, cout]), [0, 1, 3, 2]) as tf.Tensor4D;
}

/** TensorFlow's `'same'` padding of one axis, [before, after] (the odd element goes after). */
function samePadding(size: number, k: number, s: number): [number, number] {
  const total = Math.max((Math.ceil(size / s) - 1) * s + k - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/**
 * A 2D convolution (NHWC input, HWIO kernel) with explicit zero padding, and tfjs' built-in gradient. Padding that
 * TensorFlow's `'same'` gives is passed as `'same'`, other padding as an explicit `tf.pad`: tfjs-node's
 * `Conv2DBackpropInput` takes only `'valid'` and `'same'`. The values are the same either way.
 */
export function conv2dPadded(x: tf.Tensor4D, kernel: tf.Tensor4D, stride: number, pad: Padding4): tf.Tensor4D {
  const [pt, pb, pl, pr] = pad;
  if (pt + pb + pl + pr === 0) return tf.conv2d(x, kernel, stride, 'valid');
  const [kh, kw] = kernel.shape;
  const [st, sb] = samePadding(x.shape[1], kh, stride);
  const [sl, sr] = samePadding(x.shape[2], kw, stride);
  if (st === pt && sb === pb && sl === pl && sr === pr) return tf.conv2d(x, kernel, stride, 'same');
  return tf.conv2d(tf.pad(x, [[0, 0], [pt, pb], [pl, pr], [0, 0]]), kernel, stride, 'valid');
}

/**
 * Whether {@link conv2dByInputGradient} computes `conv(pad(x), kernel, stride)`: stride 1 and TensorFlow's
 * `'same'` padding (for an odd kernel, (k - 1) / 2 on every side).
 */
export function isSameStrideOne(kernel: tf.Tensor4D, stride: number, pad: Padding4): boolean {
  const [kh, kw] = kernel.shape;
  return stride === 1 && kh % 2 === 1 && kw % 2 === 1 && pad[0] === (kh - 1) / 2 && pad[1] === pad[0] && pad[2] === (kw - 1) / 2 && pad[3] === pad[2];
}

/**
 * A stride-1 `'same'` convolution (NHWC input, HWIO kernel) computed by the backend's convolution input-gradient
 * kernel (`Conv2DBackpropInput`), forward and backward: the correlation of `x` with `kernel` is the transposed
 * convolution of `x` with the kernel flipped in space and its in/out channels swapped, and its input gradient is
 * the transposed convolution of `dy` with the kernel itself. Same values as `tf.conv2d` up to float rounding. On
 * the tensorflow backend oneDNN's backward-data kernel is faster than its forward one at the VAE's sizes (the
 * `convByInputGradient` kernel choice in `lib/backend.ts`, which says where it is used).
 */
export function conv2dByInputGradient(x: tf.Tensor4D, kernel: tf.Tensor4D): tf.Tensor4D {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor4D;
    const [n, h, w, cin] = input.shape;
    const cout = kernel.shape[3];
    const value = tf.tidy(() => tf.conv2dTranspose(input, flippedKernel(kernel), [n, h, w, cout], 1, 'same'));
    const gradFunc = (dy: tf.Tensor): tf.Tensor => tf.conv2dTranspose(dy as tf.Tensor4D, kernel, [n, h, w, cin], 1, 'same');
    return { value, gradFunc };
  });
  return f(x) as tf.Tensor4D;
}

/**
 * A 2D convolution (NHWC input, HWIO kernel) whose input gradient is computed by a forward convolution.
 * Same values as tfjs' built-in gradient; several times faster on wasm.
 */
export function conv2dFastGrad(x: tf.Tensor4D, kernel: tf.Tensor4D, stride: number, pad: Padding4): tf.Tensor4D {
  const [kh, kw] = kernel.shape;
  const [pt, pl] = [pad[0], pad[2]];
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor4D;
    const value = conv2dPadded(input, kernel, stride, pad);
    const gradFunc = (dy: tf.Tensor): tf.Tensor => {
      const [, hIn, wIn] = input.shape as [number, number, number, number];
      const d = dilate(dy as tf.Tensor4D, stride);
      const [, dh, dw] = d.shape;
      // Pad so that a valid correlation with the kh x kw kernel gives back hIn x wIn.
      const top = kh - 1 - pt;
      const left = kw - 1 - pl;
      const bottom = hIn + kh - 1 - dh - top;
      const right = wIn + kw - 1 - dw - left;
      if (top < 0 || left < 0 || bottom < 0 || right < 0) {
        throw new Error(`conv2d gradient: padding [${pad.join(', ')}] exceeds kernel ${kh}x${kw} minus one`);
      }
      const flipped = flippedKernel(kernel);
      const padded = tf.pad(d, [[0, 0], [top, bottom], [left, right], [0, 0]]);
      return tf.conv2d(padded, flipped, 1, 'valid');
    };
    return { value, gradFunc };
  });
  return f(x) as tf.Tensor4D;
}

/**
 * Whether a convolution of `kernel` at `stride` over an input of `shape` runs as one matrix product
 * ({@link conv2dAsProduct}): stride 1, a kernel larger than 1 x 1, and, as the backend table says, at most
 * `convAsProductMaxPositions` output positions (batch x height x width) and at least `convAsProductMinMacs`
 * multiply-adds.
 */
export function runsAsProduct(shape: readonly number[], kernel: tf.Tensor4D, stride: number, pad: Padding4): boolean {
  const { convAsProductMaxPositions: max, convAsProductMinMacs: minMacs } = kernelChoices();
  const [kh, kw, cin, cout] = kernel.shape;
  if (max <= 0 || stride !== 1 || kh * kw === 1) return false;
  const [n, h, w] = shape as [number, number, number];
  const positions = n * (h + pad[0] + pad[1] - kh + 1) * (w + pad[2] + pad[3] - kw + 1);
  return positions <= max && positions * kh * kw * cin * cout >= minMacs;
}

/**
 * A stride-1 convolution (NHWC input, HWIO kernel, explicit zero padding) as one matrix product: the kh x kw
 * shifted windows of the padded input side by side on the channel axis ([positions, kh * kw * in], "im2col") times
 * the kernel read as [kh * kw * in, out] (a reshape, no copy). Its input gradient is the product of `dy` with the
 * kernel's transpose, each window's part added back at its offset ("col2im"). Same values as `tf.conv2d` up to
 * float rounding. On the tensorflow backend oneDNN runs a batch-1 convolution of a small activation on one of the
 * cores, while the product uses both: at 16 x 16 x 1280 76 ms -> 34 ms forward, 123 -> 68 ms with its gradient
 * (the `convAsProductMaxPositions` kernel choice in `lib/backend.ts`).
 */
export function conv2dAsProduct(x: tf.Tensor4D, kernel: tf.Tensor4D, pad: Padding4): tf.Tensor4D {
  const [kh, kw, cin, cout] = kernel.shape;
  const [pt, pb, pl, pr] = pad;
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor4D;
    const [n, h, w] = input.shape;
    const [hp, wp] = [h + pt + pb, w + pl + pr];
    const [ho, wo] = [hp - kh + 1, wp - kw + 1];
    const value = tf.tidy(() => {
      const padded = pt + pb + pl + pr === 0 ? input : tf.pad(input, [[0, 0], [pt, pb], [pl, pr], [0, 0]]);
      const windows: tf.Tensor4D[] = [];
      for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) windows.push(tf.slice(padded, [0, i, j, 0], [n, ho, wo, cin]));
      const columns = tf.reshape(tf.concat(windows, 3), [n * ho * wo, kh * kw * cin]);
      return tf.reshape(tf.matMul(columns, tf.reshape(kernel, [kh * kw * cin, cout])), [n, ho, wo, cout]) as tf.Tensor4D;
    });
    const gradFunc = (dy: tf.Tensor): tf.Tensor => {
      const columns = tf.matMul(tf.reshape(dy, [n * ho * wo, cout]), tf.reshape(kernel, [kh * kw * cin, cout]), false, true);
      const parts = tf.split(tf.reshape(columns, [n, ho, wo, kh * kw * cin]), kh * kw, 3);
      const placed = parts.map((part, k) => {
        const [i, j] = [Math.floor(k / kw), k % kw];
        return tf.pad(part, [[0, 0], [i, hp - ho - i], [j, wp - wo - j], [0, 0]]);
      });
      const sum = placed.length === 1 ? placed[0]! : tf.addN(placed);
      return pt + pb + pl + pr === 0 ? sum : tf.slice(sum, [0, pt, pl, 0], [n, h, w, cin]);
    };
    return { value, gradFunc };
  });
  return f(x) as tf.Tensor4D;
}

export class Conv2d extends Module {
  readonly kernel: LayerVariable;
  readonly bias?: LayerVariable;
  readonly pad: Padding4;

  /**
   * @param padding PyTorch's symmetric `padding`, or [top, bottom, left, right].
   */
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    readonly stride = 1,
    padding: number | Padding4 = 0,
    useBias = true,
  ) {
    super();
    this.pad = typeof padding === 'number' ? [padding, padding, padding, padding] : padding;
    if (this.pad.some((p) => p < 0 || p > kernelSize - 1 || !Number.isInteger(p))) {
      throw new Error(`Conv2d: padding [${this.pad.join(', ')}] must be integers in [0, ${kernelSize - 1}]`);
    }
    this.kernel = this.weight('weight', [kernelSize, kernelSize, inChannels, outChannels], 'conv2d');
    if (useBias) this.bias = this.weight('bias', [outChannels]);
  }

  /** Convolves `x` of shape [N, H, W, inChannels]. */
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const kernel = this.kernel.read() as tf.Tensor4D;
      let y: tf.Tensor;
      if (this.kernelSize === 1 && this.stride === 1 && this.pad.every((p) => p === 0)) {
        // A 1x1 convolution is a matrix product (with an input gradient on the fast path, see matmul.ts).
        const [n, h, w] = x.shape as [number, number, number, number];
        const flat = tf.reshape(x, [-1, this.inChannels]) as tf.Tensor2D;
        y = tf.reshape(matMulByConstant(flat, tf.reshape(kernel, [this.inChannels, this.outChannels]) as tf.Tensor2D), [n, h, w, this.outChannels]);
      } else if (runsAsProduct(x.shape, kernel, this.stride, this.pad)) {
        y = conv2dAsProduct(x as tf.Tensor4D, kernel, this.pad);
      } else {
        // The input gradient by a forward convolution where the backend table measured it faster (wasm, cpu).
        const conv = kernelChoices().convInputGradientAsForwardConv ? conv2dFastGrad : conv2dPadded;
        y = conv(x as tf.Tensor4D, kernel, this.stride, this.pad);
      }
      return this.bias !== undefined ? tf.add(y, this.bias.read()) : y;
    });
  }
}
