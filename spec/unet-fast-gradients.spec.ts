// The UNet's gradient kernels against plain tfjs: the recomputing attention, the products that avoid wasm's
// slow BatchMatMul cases (split batches, explicit transposes), and the convolution whose input gradient is a
// forward convolution. Sizes are chosen above the thresholds at which the wasm paths switch on.
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { ATTENTION_CHUNK_ELEMENTS, multiHeadAttention } from '../lib/models/layers/attention-core.js';
import { GROUP_NORM_SPLIT_MIN_ELEMENTS, GroupNorm } from '../lib/models/layers/group-norm.js';
import { LayerNorm } from '../lib/models/layers/layer-norm.js';
import { withKernelChoices } from '../lib/backend.js';
import { conv2dAsProduct, conv2dByInputGradient, conv2dFastGrad, isSameStrideOne, runsAsProduct } from '../lib/models/layers/conv2d.js';
import { Linear } from '../lib/models/layers/linear.js';
import { matMul, matMulByConstant } from '../lib/models/layers/matmul.js';
import { expectClose, forEachBackend } from './helpers/tensors.js';

/** Textbook multi-head attention with tfjs' own ops and gradients. */
function naiveAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, heads: number): tf.Tensor {
  const [b, lq, c] = q.shape as [number, number, number];
  const split = (x: tf.Tensor): tf.Tensor => tf.transpose(tf.reshape(x, [b, -1, heads, c / heads]), [0, 2, 1, 3]);
  const probs = tf.softmax(tf.mul(tf.matMul(split(q), split(k), false, true), 1 / Math.sqrt(c / heads)));
  return tf.reshape(tf.transpose(tf.matMul(probs, split(v)), [0, 2, 1, 3]), [b, lq, c]);
}

const randn = (shape: number[], seed: number): tf.Tensor => tf.randomNormal(shape, 0, 1, 'float32', seed);

/** Textbook normalisation over `axes` of `view`-shaped `x` with tfjs' own ops and gradients, then gamma * . + beta. */
function naiveNorm(x: tf.Tensor, view: number[], axes: number[], eps: number, gamma?: tf.Tensor, beta?: tf.Tensor): tf.Tensor {
  const { mean, variance } = tf.moments(tf.reshape(x, view), axes, true);
  let y = tf.reshape(tf.div(tf.sub(tf.reshape(x, view), mean), tf.sqrt(tf.add(variance, eps))), x.shape);
  if (gamma !== undefined) y = tf.mul(y, gamma);
  return beta !== undefined ? tf.add(y, beta) : y;
}

forEachBackend('UNet fast gradient kernels', function () {
  it('recomputing attention: values and q/k/v gradients equal the textbook attention (self and cross)', function () {
    // 2 x 4 heads of 8 dims, 256 x 256 and 512 x 77: above the per-slice threshold on wasm.
    for (const [lq, lk] of [
      [256, 256],
      [512, 77],
    ]) {
      tf.tidy(() => {
        const [q, k, v] = [randn([2, lq!, 32], 1), randn([2, lk!, 32], 2), randn([2, lk!, 32], 3)];
        const w = randn([2, lq!, 32], 4);
        const loss = (f: (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.Tensor) => (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
          tf.sum(tf.mul(f(a, b, c), w)) as tf.Scalar;
        const ref = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => naiveAttention(a, b, c, 4);
        const g2 = tf.grads(loss(ref))([q, k, v]);
        // Whole matrices, and blocks of query rows (30 rows a block for 256 keys, a ragged last block).
        for (const chunkElements of [undefined, ATTENTION_CHUNK_ELEMENTS, 8 * 30 * lk!]) {
          const mine = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => multiHeadAttention(a, b, c, 4, { chunkElements });
          const what = `${lk} keys${chunkElements === undefined ? '' : chunkElements === ATTENTION_CHUNK_ELEMENTS ? ', recomputed' : ', in query blocks'}`;
          expectClose(mine(q, k, v), ref(q, k, v), 1e-5, `attention value (${what})`);
          const g1 = tf.grads(loss(mine))([q, k, v]);
          ['dq', 'dk', 'dv'].forEach((n, i) => expectClose(g1[i]!, g2[i]!, 1e-5, `attention ${n} (${what})`));
        }
      });
    }
  });

  it('observed attention (probabilities in the graph) gives the same values and gradients', function () {
    // 2 heads of 32 dims over 77 keys: 1024 queries (the products are split on wasm; a small attention elsewhere,
    // on [B, H, L, D] views) and 8192 (above SMALL_ATTENTION_ELEMENTS: the [B * H] path everywhere).
    for (const lq of [1024, 8192]) tf.tidy(() => {
      const [q, k, v] = [randn([1, lq, 64], 5), randn([1, 77, 64], 6), randn([1, 77, 64], 7)];
      const f = (a: tf.Tensor) => {
        let probs: tf.Tensor | undefined;
        const out = multiHeadAttention(a, k, v, 2, { onProbs: (p) => (probs = tf.keep(p)) });
        const l = tf.add(tf.sum(tf.square(out)), tf.sum(tf.square(probs!))) as tf.Scalar;
        probs!.dispose();
        return l;
      };
      const g = (a: tf.Tensor) => {
        const split = (x: tf.Tensor): tf.Tensor => tf.transpose(tf.reshape(x, [1, -1, 2, 32]), [0, 2, 1, 3]);
        const probs = tf.softmax(tf.mul(tf.matMul(split(a), split(k), false, true), 1 / Math.sqrt(32)));
        const out = tf.reshape(tf.transpose(tf.matMul(probs, split(v)), [0, 2, 1, 3]), [1, lq, 64]);
        return tf.add(tf.sum(tf.square(out)), tf.sum(tf.square(probs))) as tf.Scalar;
      };
      expectClose(tf.grad(f)(q), tf.grad(g)(q), 1e-5, `observed attention dq (${lq} queries)`);
    });
  });

  it('matMul of batches and matMulByConstant: values and gradients equal tf.matMul', function () {
    tf.tidy(() => {
      const [a, b] = [randn([3, 96, 64], 8), randn([3, 64, 80], 9)];
      const wa = randn([3, 96, 80], 10);
      const l = (f: (x: tf.Tensor, y: tf.Tensor) => tf.Tensor) => (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(f(x, y), wa)) as tf.Scalar;
      expectClose(matMul(a, b), tf.matMul(a, b), 1e-6, 'batched product');
      const g1 = tf.grads(l(matMul))([a, b]);
      const g2 = tf.grads(l((x, y) => tf.matMul(x, y)))([a, b]);
      expectClose(g1[0]!, g2[0]!, 1e-5, 'batched dA');
      expectClose(g1[1]!, g2[1]!, 1e-5, 'batched dB');

      const [x, w] = [randn([512, 64], 11), randn([64, 96], 12)];
      const wx = randn([512, 96], 13);
      const lx = (f: (v: tf.Tensor2D) => tf.Tensor) => (v: tf.Tensor) => tf.sum(tf.mul(f(v as tf.Tensor2D), wx)) as tf.Scalar;
      expectClose(matMulByConstant(x as tf.Tensor2D, w as tf.Tensor2D), tf.matMul(x, w), 1e-6, 'product by a constant');
      expectClose(
        tf.grad(lx((v) => matMulByConstant(v, w as tf.Tensor2D)))(x),
        tf.grad(lx((v) => tf.matMul(v, w)))(x),
        1e-5,
        'product by a constant, dX',
      );
    });
  });

  it('conv2dFastGrad: the input gradient equals tfjs built-in one (strided, padded, asymmetric, odd sizes)', function () {
    const cases: [number, number, number, [number, number, number, number]][] = [
      [8, 3, 1, [1, 1, 1, 1]],
      [9, 3, 2, [1, 1, 1, 1]],
      [8, 3, 2, [1, 1, 1, 1]],
      [8, 3, 2, [0, 1, 0, 1]],
      [7, 3, 2, [0, 1, 0, 1]],
      [6, 3, 1, [0, 0, 0, 0]],
      [7, 1, 1, [0, 0, 0, 0]],
    ];
    for (const [size, k, stride, pad] of cases) {
      tf.tidy(() => {
        const x = randn([2, size, size + 1, 3], 14) as tf.Tensor4D;
        const w = randn([k, k, 3, 5], 15) as tf.Tensor4D;
        const padded = (v: tf.Tensor): tf.Tensor4D => tf.pad(v, [[0, 0], [pad[0], pad[1]], [pad[2], pad[3]], [0, 0]]) as tf.Tensor4D;
        const out = conv2dFastGrad(x, w, stride, pad);
        const builtinOut = tf.conv2d(padded(x), w, stride, 'valid');
        expectClose(out, builtinOut, 1e-6, `conv value ${size} k${k} s${stride} [${pad}]`);
        const dy = randn(out.shape, 16);
        const mine = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(conv2dFastGrad(v as tf.Tensor4D, w, stride, pad), dy)))(x);
        const builtin = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(padded(v), w, stride, 'valid'), dy)))(x);
        expectClose(mine, builtin, 1e-5, `conv input gradient ${size} k${k} s${stride} [${pad}]`);
      });
    }
  });

  it('conv2dByInputGradient: values and input gradient equal tfjs built-in convolution (stride 1, same padding)', function () {
    for (const [size, k, cin, cout] of [
      [8, 3, 3, 5],
      [7, 3, 6, 4],
      [6, 5, 2, 3],
      [5, 1, 4, 4],
    ] as const) {
      tf.tidy(() => {
        const x = randn([2, size, size + 1, cin], 17) as tf.Tensor4D;
        const w = randn([k, k, cin, cout], 18) as tf.Tensor4D;
        const p = (k - 1) / 2;
        expect(isSameStrideOne(w, 1, [p, p, p, p]), 'same padding, stride 1').to.equal(true);
        const builtinConv = (v: tf.Tensor): tf.Tensor => tf.conv2d(v as tf.Tensor4D, w, 1, 'same');
        expectClose(conv2dByInputGradient(x, w), builtinConv(x), 1e-6, `conv value ${size} k${k} ${cin}->${cout}`);
        const dy = randn([2, size, size + 1, cout], 19);
        const mine = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(conv2dByInputGradient(v as tf.Tensor4D, w), dy)))(x);
        const builtin = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(builtinConv(v), dy)))(x);
        expectClose(mine, builtin, 1e-5, `conv input gradient ${size} k${k} ${cin}->${cout}`);
      });
    }
    const w3 = tf.zeros([3, 3, 2, 2]) as tf.Tensor4D;
    expect(isSameStrideOne(w3, 2, [1, 1, 1, 1]), 'stride 2').to.equal(false);
    expect(isSameStrideOne(w3, 1, [0, 1, 0, 1]), 'asymmetric padding').to.equal(false);
    w3.dispose();
  });

  it('conv2dAsProduct: values and input gradient equal tfjs built-in convolution (padded, asymmetric, unpadded, 1 x k)', function () {
    const cases: [number, number, number, [number, number, number, number]][] = [
      [8, 3, 3, [1, 1, 1, 1]],
      [7, 3, 3, [0, 1, 0, 1]],
      [6, 3, 3, [0, 0, 0, 0]],
      [6, 5, 5, [2, 2, 2, 2]],
      [5, 1, 3, [0, 0, 1, 1]],
    ];
    for (const [size, kh, kw, pad] of cases) {
      tf.tidy(() => {
        const x = randn([2, size, size + 1, 6], 30) as tf.Tensor4D;
        const w = randn([kh, kw, 6, 4], 31) as tf.Tensor4D;
        const padded = (v: tf.Tensor): tf.Tensor4D => tf.pad(v, [[0, 0], [pad[0], pad[1]], [pad[2], pad[3]], [0, 0]]) as tf.Tensor4D;
        const what = `${size} k${kh}x${kw} [${pad}]`;
        const out = conv2dAsProduct(x, w, pad);
        expectClose(out, tf.conv2d(padded(x), w, 1, 'valid'), 1e-5, `conv value ${what}`);
        const dy = randn(out.shape, 32);
        const mine = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(conv2dAsProduct(v as tf.Tensor4D, w, pad), dy)))(x);
        const builtin = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(padded(v), w, 1, 'valid'), dy)))(x);
        expectClose(mine, builtin, 1e-5, `conv input gradient ${what}`);
      });
    }
    // Shapes only matter here: a kernel of 3 x 3 x 256 x 256 (589,824 multiply-adds a position) as a shape.
    const w3 = { shape: [3, 3, 256, 256] } as unknown as tf.Tensor4D;
    withKernelChoices({ convAsProductMaxPositions: 2 * 16 * 16, convAsProductMinMacs: 1 << 27 }, () => {
      expect(runsAsProduct([2, 16, 16, 256], w3, 1, [1, 1, 1, 1]), '512 positions').to.equal(true);
      expect(runsAsProduct([2, 16, 17, 256], w3, 1, [1, 1, 1, 1]), '544 positions').to.equal(false);
      expect(runsAsProduct([2, 16, 17, 256], w3, 1, [0, 0, 0, 0]), '2 x 14 x 15 positions unpadded').to.equal(true);
      expect(runsAsProduct([1, 8, 8, 256], w3, 2, [1, 1, 1, 1]), 'stride 2').to.equal(false);
      // 8 x 8 positions: 37.7 M multiply-adds, below the 134 M floor.
      expect(runsAsProduct([1, 8, 8, 256], w3, 1, [1, 1, 1, 1]), 'a small convolution').to.equal(false);
    });
    withKernelChoices({ convAsProductMaxPositions: 0 }, () => expect(runsAsProduct([1, 16, 16, 256], w3, 1, [1, 1, 1, 1]), 'off').to.equal(false));
  });

  it('Linear in both weight layouts (widening layers [out, in] where the backend asks): the same values and input gradients, any rank', function () {
    for (const [inF, outF, shape] of [
      [24, 96, [2, 7, 24]],
      [96, 24, [2, 7, 96]],
      [16, 48, [5, 16]],
      [48, 16, [2, 3, 4, 48]],
      [16, 48, [2, 3, 4, 16]],
    ] as [number, number, number[]][]) {
      tf.tidy(() => {
        const w = randn([outF, inF], 33); // PyTorch's [out, in]
        const b = randn([outF], 34);
        const build = (asStored: boolean): Linear => {
          const lin = withKernelChoices({ wideLinearWeightsAsStored: asStored }, () => new Linear(inF, outF));
          expect(lin.transposedKernel).to.equal(asStored && outF > inF);
          lin.kernel.write(lin.transposedKernel ? w : tf.transpose(w));
          lin.bias!.write(b);
          return lin;
        };
        const x = randn(shape, 35);
        const dy = randn([...shape.slice(0, -1), outF], 36);
        const ref = (v: tf.Tensor): tf.Tensor => tf.add(tf.reshape(tf.matMul(tf.reshape(v, [-1, inF]), w, false, true), [...v.shape.slice(0, -1), outF]), b);
        const naive = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(ref(v), dy)))(x);
        for (const asStored of [false, true]) {
          const lin = build(asStored);
          const what = `Linear ${inF} -> ${outF} on [${shape.join(", ")}], ${lin.transposedKernel ? "[out, in]" : "[in, out]"}`;
          expectClose(lin.forward(x), ref(x), 1e-5, `${what} value`);
          expectClose(tf.grad((v: tf.Tensor) => tf.sum(tf.mul(lin.forward(v), dy)))(x), naive, 1e-5, `${what} input gradient`);
          lin.disposeAll();
        }
      });
    }
  });

  it('GroupNorm and LayerNorm: values and closed-form input gradients equal the textbook composite', function () {
    // Group norms below and above the size where the statistics switch from one reduction to two.
    const side = Math.ceil(Math.sqrt(GROUP_NORM_SPLIT_MIN_ELEMENTS / 2 / 32)) + 1;
    for (const [shape, groups] of [
      [[2, 4, 5, 32], 8],
      [[1, 6, 6, 12], 3],
      [[2, side, side, 32], 4],
      [[2, 10, 32], 16],
    ] as [number[], number][]) {
      tf.tidy(() => {
        const c = shape.at(-1)!;
        const norm = new GroupNorm(groups, c, 1e-6);
        norm.gamma.write(tf.add(randn([c], 20), 1));
        norm.beta.write(randn([c], 21));
        // A mean far from 0 and a small spread: the form of the variance matters there.
        const x = tf.add(tf.mul(randn(shape, 22), 0.5), 3);
        const dy = randn(shape, 23);
        const view = [shape[0]!, x.size / shape[0]! / c, groups, c / groups];
        const ref = (v: tf.Tensor): tf.Tensor => naiveNorm(v, view, [1, 3], 1e-6, norm.gamma.read(), norm.beta.read());
        const naive = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(ref(v), dy)))(x);
        // Every way of taking the statistics, whichever this backend's table picks.
        for (const how of ['groups-first', 'positions-first', 'positions-by-product'] as const) {
          withKernelChoices({ groupNormStatistics: how }, () => {
            const what = `group norm [${shape.join(', ')}] / ${groups}, ${how}`;
            expectClose(norm.forward(x), ref(x), 1e-5, `${what} value`);
            const mine = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(norm.forward(v), dy)))(x);
            expectClose(mine, naive, 1e-4, `${what} input gradient`);
          });
        }
        norm.dispose();
      });
    }
    for (const affine of [true, false]) {
      tf.tidy(() => {
        const norm = new LayerNorm(24, 1e-5, affine);
        if (affine) {
          norm.gamma!.write(tf.add(randn([24], 24), 1));
          norm.beta!.write(randn([24], 25));
        }
        const x = tf.add(randn([2, 7, 24], 26), 2);
        const dy = randn([2, 7, 24], 27);
        const ref = (v: tf.Tensor): tf.Tensor => naiveNorm(v, v.shape, [2], 1e-5, norm.gamma?.read(), norm.beta?.read());
        const what = `layer norm${affine ? '' : ' without affine'}`;
        expectClose(norm.forward(x), ref(x), 1e-5, `${what} value`);
        const mine = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(norm.forward(v), dy)))(x);
        const naive = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(ref(v), dy)))(x);
        expectClose(mine, naive, 1e-4, `${what} input gradient`);
        norm.dispose();
      });
    }
  });

  it('keeps no tensors after gradients through these kernels', function () {
    const [q, k, v] = [randn([2, 256, 32], 1), randn([2, 256, 32], 2), randn([2, 256, 32], 3)];
    const start = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) {
      tf.dispose(tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(multiHeadAttention(a, b, c, 4)) as tf.Scalar)([q, k, v]));
    }
    const norm = new GroupNorm(4, 32);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) tf.dispose(tf.grad((a: tf.Tensor) => tf.sum(norm.forward(tf.reshape(a, [2, 16, 16, 32]))))(q));
    expect(tf.memory().numTensors).to.equal(before);
    norm.dispose();
    expect(tf.memory().numTensors).to.equal(start);
    tf.dispose([q, k, v]);
  });
});
