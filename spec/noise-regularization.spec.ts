import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { RecordedShifts, autoCorrLoss, klDivergence, regularizeNoise, type ShiftSource } from '../lib/editing/noise-regularization.js';
import { TorchGenerator } from '../lib/random/torch-generator.js';
import { FIXTURES, expectClose, forEachBackend, readReference } from './helpers/tensors.js';

const DIR = path.join(FIXTURES, 'reference', 'regularization');
interface Case {
  seed: number;
  prediction_type: 'epsilon' | 'v_prediction';
  alpha_prod_t: number;
  lambda_ac: number;
  lambda_kl: number;
  num_reg_steps: number;
  num_auto_corr_rolls: number;
}
const nhwc = (t: tf.Tensor): tf.Tensor4D => tf.transpose(t, [0, 2, 3, 1]) as tf.Tensor4D;

/** `torch.roll(x, k, axis)`: element i moves to (i + k) mod n. */
function roll(x: tf.Tensor, k: number, axis: number): tf.Tensor {
  const n = x.shape[axis]!;
  const s = ((k % n) + n) % n;
  if (s === 0) return x;
  const [head, tail] = tf.split(x, [n - s, s], axis);
  return tf.concat([tail!, head!], axis);
}

/** The auto-correlation loss as the reference writes it: map by map, level by level, with rolls. */
function autoCorrLossByRolls(noise: tf.Tensor4D, shifts: ShiftSource, minShift: 0 | 1): tf.Scalar {
  const [b, , , c] = noise.shape;
  const terms: tf.Tensor[] = [];
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < c; j++) {
      let map = tf.slice(noise, [i, 0, 0, j], [1, -1, -1, 1]) as tf.Tensor4D;
      for (;;) {
        const side = map.shape[1];
        const half = Math.floor(side / 2);
        const k = minShift === 1 ? 1 + shifts.randint(Math.max(half - 1, 1)) : shifts.randint(Math.max(half, 1));
        terms.push(tf.square(tf.mean(tf.mul(map, roll(map, k, 1)))));
        terms.push(tf.square(tf.mean(tf.mul(map, roll(map, k, 2)))));
        if (side <= 8) break;
        map = tf.avgPool(map, 2, 2, 'valid');
      }
    }
  }
  return tf.addN(terms) as tf.Scalar;
}

forEachBackend('noise regularisation matches diffusers', function () {
  const cases = JSON.parse(fs.readFileSync(path.join(DIR, 'cases.json'), 'utf8')) as Record<string, Case>;
  let ref: Record<string, tf.Tensor>;
  before(function () {
    ref = readReference(path.join(DIR, 'regularization.safetensors'));
  });
  after(function () {
    tf.dispose(Object.values(ref));
  });

  for (const [name, c] of Object.entries(cases)) {
    it(`${name}: losses, gradients and the regularised noise (seeded shifts = recorded shifts)`, function () {
      const start = tf.memory().numTensors;
      tf.tidy(() => {
      const x = nhwc(ref[`${name}.input`]!);
      const sample = nhwc(ref[`${name}.sample`]!);
      const a = c.alpha_prod_t;
      const toEps = (v: tf.Tensor4D): tf.Tensor4D =>
        c.prediction_type === 'epsilon' ? v : (tf.add(tf.mul(v, Math.sqrt(a)), tf.mul(sample, Math.sqrt(1 - a))) as tf.Tensor4D);

      // Losses and gradients; the generator seeded like torch draws the same shifts torch recorded.
      const recorded = Array.from(ref[`${name}.loss_shifts`]!.dataSync());
      const gen = new TorchGenerator(c.seed);
      const drawn: number[] = [];
      const spy = { randint: (h: number) => { const v = gen.randint(h); drawn.push(v); return v; } };
      const ac = autoCorrLoss(toEps(x), spy);
      expect(drawn).to.deep.equal(recorded);
      expectClose(ac, tf.reshape(ref[`${name}.ac_loss`]!, []), 1e-4, 'L_ac');
      const kl = klDivergence(toEps(x));
      expectClose(kl, tf.reshape(ref[`${name}.kl_loss`]!, []), 1e-4, 'L_kl');
      const acGrad = tf.grad((v: tf.Tensor) => autoCorrLoss(toEps(v as tf.Tensor4D), new RecordedShifts(recorded)))(x);
      expectClose(acGrad, nhwc(ref[`${name}.ac_grad`]!), 1e-4, 'grad L_ac');
      const klGrad = tf.grad((v: tf.Tensor) => klDivergence(toEps(v as tf.Tensor4D)))(x);
      expectClose(klGrad, nhwc(ref[`${name}.kl_grad`]!), 1e-4, 'grad L_kl');

      const opts = { numRegSteps: c.num_reg_steps, numAutoCorrRolls: c.num_auto_corr_rolls, lambdaAc: c.lambda_ac, lambdaKl: c.lambda_kl };
      const shifts = Array.from(ref[`${name}.shifts`]!.dataSync());
      const replay = new RecordedShifts(shifts);
      const out = regularizeNoise(x, replay, opts, toEps);
      expect(replay.used).to.equal(shifts.length);
      expectClose(out, nhwc(ref[`${name}.output`]!), 1e-4, 'regularised noise (recorded shifts)');
      const seeded = regularizeNoise(x, new TorchGenerator(c.seed), opts, toEps);
      expectClose(seeded, nhwc(ref[`${name}.output`]!), 1e-4, 'regularised noise (seeded generator)');
      });
      expect(tf.memory().numTensors).to.equal(start);
    });
  }

  it('rolls like torch.roll', function () {
    const t = tf.tensor4d([1, 2, 3, 4, 5, 6], [1, 3, 2, 1]);
    expect(Array.from(roll(t, 1, 1).dataSync())).to.deep.equal([5, 6, 1, 2, 3, 4]);
    expect(Array.from(roll(t, 1, 2).dataSync())).to.deep.equal([2, 1, 4, 3, 6, 5]);
    expect(Array.from(roll(t, 0, 1).dataSync())).to.deep.equal([1, 2, 3, 4, 5, 6]);
    t.dispose();
  });
  it('the batched auto-correlation loss equals the map-by-map rolls (odd and non-square sides, batch 2, both shift ranges)', function () {
    for (const [shape, minShift] of [
      [[2, 9, 13, 3], 0],
      [[1, 19, 16, 4], 1],
      [[2, 12, 10, 3], 1],
    ] as [[number, number, number, number], 0 | 1][]) {
      tf.tidy(() => {
        const x = tf.randomNormal(shape, 0, 1, 'float32', 3) as tf.Tensor4D;
        const what = `[${shape.join(', ')}], shifts from ${minShift}`;
        const drawn: number[] = [];
        const gen = new TorchGenerator(11);
        const mine = autoCorrLoss(x, { randint: (h: number) => { const v = gen.randint(h); drawn.push(v); return v; } }, minShift);
        expect(new Set(drawn).size, `${what}: distinct shifts drawn`).to.be.above(1);
        expectClose(mine, autoCorrLossByRolls(x, new RecordedShifts(drawn), minShift), 1e-5, `batched L_ac ${what}`);
        const g1 = tf.grad((v: tf.Tensor) => autoCorrLoss(v as tf.Tensor4D, new RecordedShifts(drawn), minShift))(x);
        const g2 = tf.grad((v: tf.Tensor) => autoCorrLossByRolls(v as tf.Tensor4D, new RecordedShifts(drawn), minShift))(x);
        expectClose(g1, g2, 1e-5, `batched grad L_ac ${what}`);
      });
    }
  });

  it('rejects bad hyperparameters naming them', function () {
    const x = tf.zeros([1, 8, 8, 4]) as tf.Tensor4D;
    expect(() => regularizeNoise(x, new TorchGenerator(0), { lambdaAc: -1 })).to.throw(/lambdaAc must be a non-negative number/);
    expect(() => regularizeNoise(x, new TorchGenerator(0), { numRegSteps: 1.5 })).to.throw(/numRegSteps must be a non-negative integer/);
    expect(() => new RecordedShifts([]).randint(4)).to.throw(/all 0 recorded shifts used/);
    x.dispose();
  });
});
