/**
 * The kernels registered over tfjs-node's (lib/native-kernels.ts): `tf.matMul` on the tensorflow backend, where a
 * product by one matrix runs as a 2-D `MatMul`, against a float64 product computed here, for every rank, transpose
 * and broadcast the op allows (both the cases the 2-D kernel takes and those it leaves to `BatchMatMulV2`), with
 * gradients. Runs where the tensorflow backend is installed.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { initBackend, withKernelChoices } from '../lib/backend.js';
import { TEST_BACKENDS, expectClose } from './helpers/tensors.js';

/** Deterministic values in [-1, 1). */
function values(shape: number[], seed: number): tf.Tensor {
  let s = seed;
  const n = shape.reduce((a, b) => a * b, 1);
  const data = Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 30) - 1);
  return tf.tensor(data, shape);
}

/** `op(a) op(b)` in float64 with tfjs' broadcasting of the batch dimensions. */
function reference(a: tf.Tensor, b: tf.Tensor, ta: boolean, tb: boolean): tf.Tensor {
  const rank = Math.max(a.rank, b.rank);
  const pad = (s: number[]): number[] => [...Array<number>(rank - s.length).fill(1), ...s];
  const [as, bs] = [pad(a.shape), pad(b.shape)];
  const batch = as.slice(0, -2).map((d, i) => Math.max(d, bs[i]!));
  const [m, k] = ta ? [as[rank - 1]!, as[rank - 2]!] : [as[rank - 2]!, as[rank - 1]!];
  const n = tb ? bs[rank - 2]! : bs[rank - 1]!;
  const [ad, bd] = [a.dataSync(), b.dataSync()];
  const out = new Float32Array(batch.reduce((x, y) => x * y, 1) * m * n);
  const offset = (shape: number[], index: number[]): number => index.reduce((o, v, i) => o * shape[i]! + (shape[i] === 1 ? 0 : v), 0);
  for (let flat = 0; flat < out.length / (m * n); flat++) {
    const index: number[] = [];
    let rest = flat;
    for (let i = batch.length - 1; i >= 0; i--) {
      index.unshift(rest % batch[i]!);
      rest = Math.floor(rest / batch[i]!);
    }
    const ao = offset(as.slice(0, -2), index) * as[rank - 2]! * as[rank - 1]!;
    const bo = offset(bs.slice(0, -2), index) * bs[rank - 2]! * bs[rank - 1]!;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < k; p++) sum += ad[ao + (ta ? p * m + i : i * k + p)]! * bd[bo + (tb ? j * k + p : p * n + j)]!;
        out[flat * m * n + i * n + j] = sum;
      }
    }
  }
  return tf.tensor(out, [...batch, m, n]);
}

/** The cases the 2-D kernel takes: the first nine of {@link CASES}. */
const MATRIX_CASES = 9;

const CASES: [number[], number[], boolean, boolean][] = [
  // One matrix on the right: the 2-D kernel's cases.
  [[5, 7], [7, 3], false, false],
  [[5, 7], [3, 7], false, true],
  [[7, 5], [7, 3], true, false],
  [[7, 5], [3, 7], true, true],
  [[2, 5, 7], [7, 3], false, false],
  [[2, 4, 5, 7], [3, 7], false, true],
  [[2, 5, 7], [1, 7, 3], false, false],
  [[5, 7], [1, 1, 7, 3], false, false],
  [[1, 7, 5], [7, 3], true, false],
  // Left to BatchMatMulV2: batches on the right, a transposed batch on the left.
  [[2, 5, 7], [2, 7, 3], false, false],
  [[2, 7, 5], [7, 3], true, false],
  [[1, 5, 7], [4, 7, 3], false, false],
  [[3, 2, 5, 7], [2, 3, 7], false, true],
];

/** Runs `f`, handing `check` the names of the TensorFlow ops it executed. */
function ranOps<T>(f: () => T, check: (ops: string[]) => void): T {
  const backend = tf.backend() as unknown as { executeSingleOutput: (name: string, ...rest: unknown[]) => unknown };
  const original = backend.executeSingleOutput;
  const ops: string[] = [];
  backend.executeSingleOutput = function (this: unknown, name: string, ...rest: unknown[]) {
    ops.push(name);
    return original.call(this, name, ...rest);
  };
  try {
    return f();
  } finally {
    backend.executeSingleOutput = original;
    check(ops);
  }
}

describe('native kernels [tensorflow]', function () {
  before(async function () {
    if (!TEST_BACKENDS.includes('tensorflow')) this.skip();
    await initBackend({ backend: 'tensorflow' });
  });

  it('tf.matMul equals the float64 product for every rank, transpose and broadcast, with its gradients', function () {
    const before = tf.memory().numTensors;
    // Every product of these small cases above the floor, so that the 2-D kernel takes the first nine.
    withKernelChoices({ matrixProductMinMacs: 1 }, () => CASES.forEach(([sa, sb, ta, tb], i) => {
      tf.tidy(() => {
        const [a, b] = [values(sa, 2 * i + 1), values(sb, 2 * i + 2)];
        const what = `[${sa.join(', ')}]${ta ? 'ᵀ' : ''} x [${sb.join(', ')}]${tb ? 'ᵀ' : ''}`;
        const y = ranOps(() => tf.matMul(a, b, ta, tb), (ops) => expect(ops, what).to.include(i < MATRIX_CASES ? 'MatMul' : 'BatchMatMulV2').and.not.include(i < MATRIX_CASES ? 'BatchMatMulV2' : 'MatMul'));
        expectClose(y, reference(a, b, ta, tb), 1e-6, `${what} value`);
        // d/da and d/db of sum(y * dy) by tfjs' own gradient of the op (whose products run on the same kernels),
        // against a directional difference of the float64 product: f(a + eps u, b + eps v) - f(a - eps u, b - eps v),
        // exact for a bilinear f. tfjs' gradient does not reduce broadcast batch dimensions, so an operand whose
        // batch is broadcast stays fixed (u or v = 0).
        const dy = values(y.shape, 100 + i);
        const full = (s: number[]): boolean => s.length === y.rank && s.slice(0, -2).every((d, j) => d === y.shape[j]);
        const [ga, gb] = [full(sa), full(sb)];
        const eps = 1e-2;
        const u = ga ? values(sa, 200 + i) : tf.zeros(sa);
        const v = gb ? values(sb, 300 + i) : tf.zeros(sb);
        const loss = (x: tf.Tensor, w: tf.Tensor): tf.Scalar => tf.sum(tf.mul(tf.matMul(x, w, ta, tb), dy));
        let analytic = 0;
        if (ga) analytic += tf.sum(tf.mul(tf.grad((x: tf.Tensor) => loss(x, b))(a), u)).dataSync()[0]!;
        if (gb) analytic += tf.sum(tf.mul(tf.grad((w: tf.Tensor) => loss(a, w))(b), v)).dataSync()[0]!;
        const f = (x: tf.Tensor, w: tf.Tensor): number => tf.sum(tf.mul(reference(x, w, ta, tb), dy)).dataSync()[0]!;
        const numeric = (f(tf.add(a, tf.mul(u, eps)), tf.add(b, tf.mul(v, eps))) - f(tf.sub(a, tf.mul(u, eps)), tf.sub(b, tf.mul(v, eps)))) / (2 * eps);
        expect(ga || gb, `${what}: no gradient checked`).to.equal(true);
        expect(Math.abs(analytic - numeric), `${what} gradient: ${analytic} vs ${numeric}`).to.be.at.most(1e-4 * Math.max(1, Math.abs(numeric)));
      });
    }));
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('leaves products under the floor to BatchMatMulV2', function () {
    tf.tidy(() => {
      const [a, b] = [values([2, 5, 7], 1), values([7, 3], 2)];
      const exact = reference(a, b, false, false);
      for (const [floor, op] of [[2 * 5 * 7 * 3 + 1, 'BatchMatMulV2'], [2 * 5 * 7 * 3, 'MatMul']] as const) {
        withKernelChoices({ matrixProductMinMacs: floor }, () => {
          const y = ranOps(() => tf.matMul(a, b), (ops) => expect(ops, `floor ${floor}`).to.include(op));
          expectClose(y, exact, 1e-6, `floor ${floor} value`);
        });
      }
    });
  });
});
