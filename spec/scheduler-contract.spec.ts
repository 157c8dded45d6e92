/**
 * The contract every scheduler of the factory keeps (as diffusers' `SchedulerCommonTest`): timesteps in range
 * and in walking order, steps that need `setTimesteps` first, outputs of the sample's shape without leaks,
 * instances that share no state, and, for each prediction type, an epsilon and a step that are exact on the
 * forward-diffusion trajectory x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps (an oracle model predicts it exactly).
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { ConfigSchedulerFactory, registeredSchedulers } from '../lib/schedulers/factory.js';
import type { Scheduler, SchedulerRole } from '../lib/schedulers/scheduler.js';
import { forEachBackend, relativeError } from './helpers/tensors.js';

const BASE = { beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', clip_sample: false, set_alpha_to_one: false, steps_offset: 1 };
const ROLES: SchedulerRole[] = ['sampling', 'inversion'];
const PREDICTIONS = ['epsilon', 'v_prediction', 'sample'] as const;

/** What a model of `prediction` type outputs at alpha `a` for the true x_0 and noise. */
function oracle(prediction: (typeof PREDICTIONS)[number], a: number, x0: tf.Tensor, eps: tf.Tensor): tf.Tensor {
  if (prediction === 'epsilon') return tf.clone(eps);
  if (prediction === 'sample') return tf.clone(x0);
  return tf.sub(tf.mul(eps, Math.sqrt(a)), tf.mul(x0, Math.sqrt(1 - a)));
}

/** x_t on the forward-diffusion trajectory; `a` = 1 at the clean end. */
const noisy = (a: number, x0: tf.Tensor, eps: tf.Tensor): tf.Tensor => tf.add(tf.mul(x0, Math.sqrt(a)), tf.mul(eps, Math.sqrt(1 - a)));

/** One registered class name per distinct pair of schedulers it builds (aliases of DDIM are tested once). */
function distinctClasses(): string[] {
  const seen = new Map<string, string>();
  for (const name of registeredSchedulers()) {
    const f = new ConfigSchedulerFactory({ _class_name: name });
    const key = ROLES.map((r) => f.create(r).constructor.name).join('/');
    if (!seen.has(key)) seen.set(key, name);
  }
  return [...seen.values()];
}

forEachBackend('scheduler contract', function () {
  for (const className of distinctClasses()) {
    for (const role of ROLES) {
      describe(`${className} (${role})`, function () {
        const make = (extra: Record<string, unknown> = {}): Scheduler => new ConfigSchedulerFactory({ _class_name: className, ...BASE, ...extra }).create(role);

        it('timesteps: integers in [0, T), distinct, in walking order; for any step count', function () {
          for (const spacing of ['leading', 'trailing']) {
            for (const n of spacing === 'leading' ? [1, 7, 50, 999] : [1, 7, 50, 1000]) {
              const s = make({ timestep_spacing: spacing });
              const ts = s.setTimesteps(n);
              expect(ts, `${spacing} ${n}`).to.have.length(n);
              expect(s.timesteps).to.deep.equal(ts);
              for (const t of ts) expect(Number.isInteger(t) && t >= 0 && t < 1000, `timestep ${t}`).to.equal(true);
              for (let i = 1; i < n; i++) expect(role === 'sampling' ? ts[i]! < ts[i - 1]! : ts[i]! > ts[i - 1]!, `${spacing} ${n}: order at ${i}`).to.equal(true);
            }
          }
          expect(() => make({ timestep_spacing: 'leading' }).setTimesteps(1000), 'steps_offset 1 would reach t = 1000').to.throw(/reach timestep 1000, past the schedule/);
          expect(() => make().setTimesteps(0)).to.throw(/number of steps/);
          expect(() => make().setTimesteps(2.5)).to.throw(/number of steps/);
        });

        it('step needs setTimesteps, rejects timesteps outside the schedule, keeps the shape and frees its tensors', function () {
          const s = make();
          const x = tf.ones([1, 2, 2, 4]);
          expect(() => s.step(x, 10, x)).to.throw(/setTimesteps/);
          s.setTimesteps(10);
          expect(() => s.step(x, 1000, x)).to.throw(/timestep 1000/);
          expect(() => s.epsilon(x, -1, x)).to.throw(/timestep -1/);
          const start = tf.memory().numTensors;
          for (const t of s.timesteps) {
            const r = s.step(x, t, x);
            expect(r.prevSample.shape).to.deep.equal(x.shape);
            expect(r.predOriginalSample.shape).to.deep.equal(x.shape);
            tf.dispose([r.prevSample, r.predOriginalSample]);
          }
          expect(tf.memory().numTensors).to.equal(start);
          x.dispose();
        });

        it('instances share no state (one per pass)', function () {
          const f = new ConfigSchedulerFactory({ _class_name: className, ...BASE });
          const a = f.create(role);
          const b = f.create(role);
          expect(a).to.not.equal(b);
          a.setTimesteps(10);
          b.setTimesteps(4);
          expect(a.timesteps).to.have.length(10);
          expect(b.timesteps).to.have.length(4);
        });

        for (const prediction of PREDICTIONS) {
          it(`${prediction}: epsilon and step are exact on the diffusion trajectory`, function () {
            const s = make({ prediction_type: prediction });
            const ts = s.setTimesteps(10);
            const x0 = tf.randomNormal([1, 3, 3, 4], 0, 1, 'float32', 7);
            const eps = tf.randomNormal([1, 3, 3, 4], 0, 1, 'float32', 8);
            const acp = s.alphasCumprod;
            const start = tf.memory().numTensors;
            // The alpha of the walk's neighbour: the next timestep down (sampling) or the one before (inversion).
            const ratio = 1000 / 10;
            for (const t of ts) {
              tf.tidy(() => {
                const xt = noisy(acp[t]!, x0, eps);
                const e = s.epsilon(oracle(prediction, acp[t]!, x0, eps), t, xt);
                expect(relativeError(e, eps), `epsilon at t=${t}`).to.be.below(1e-4);
                const other = role === 'sampling' ? t - ratio : t - ratio;
                const aOther = other >= 0 ? acp[other]! : acp[0]!; // set_alpha_to_one false: alphas_cumprod[0]
                if (role === 'sampling') {
                  const r = s.step(oracle(prediction, acp[t]!, x0, eps), t, xt);
                  expect(relativeError(r.prevSample, noisy(aOther, x0, eps)), `sampling step at t=${t}`).to.be.below(1e-4);
                  expect(relativeError(r.predOriginalSample, x0), `x_0 at t=${t}`).to.be.below(1e-4);
                } else {
                  // The inverse step walks from the previous timestep's sample to t.
                  const from = noisy(aOther, x0, eps);
                  const r = s.step(oracle(prediction, aOther, x0, eps), t, from);
                  expect(relativeError(r.prevSample, xt), `inverse step to t=${t}`).to.be.below(1e-4);
                }
              });
            }
            expect(tf.memory().numTensors).to.equal(start);
            tf.dispose([x0, eps]);
          });
        }
      });
    }
  }
});

describe('scheduler factory', function () {
  it('builds DDIM and its inverse from _class_name, DDIM by default', function () {
    const f = new ConfigSchedulerFactory({ _class_name: 'DDIMScheduler' });
    expect(f.className).to.equal('DDIMScheduler');
    expect(f.create('sampling').constructor.name).to.equal('DDIMScheduler');
    expect(f.create('inversion').constructor.name).to.equal('DDIMInverseScheduler');
    expect(new ConfigSchedulerFactory({}).className).to.equal('DDIMScheduler');
    expect(new ConfigSchedulerFactory({ _class_name: 'PNDMScheduler' }).create('sampling').constructor.name).to.equal('DDIMScheduler');
  });
  it('names an unsupported class and a bad field', function () {
    expect(() => new ConfigSchedulerFactory({ _class_name: 'FlowMatchEulerDiscreteScheduler' })).to.throw(/'_class_name' "FlowMatchEulerDiscreteScheduler" is not a supported scheduler \(supported: DDIMScheduler/);
    expect(() => new ConfigSchedulerFactory({ _class_name: 3 })).to.throw(/'_class_name' must be a string/);
    expect(() => new ConfigSchedulerFactory({ prediction_type: 'flow' })).to.throw(/'prediction_type' must be/);
  });
});
