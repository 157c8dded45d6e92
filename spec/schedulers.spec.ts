import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { parseDDIMConfig, roundHalfEven } from '../lib/schedulers/config.js';
import { DDIMScheduler } from '../lib/schedulers/ddim.js';
import { DDIMInverseScheduler } from '../lib/schedulers/ddim-inverse.js';
import type { JsonObject } from '../lib/io/json.js';
import { FIXTURES, expectClose, forEachBackend, readReference } from './helpers/tensors.js';

const DIR = path.join(FIXTURES, 'reference', 'schedulers');
const TOL = 1e-5;

forEachBackend('DDIM schedulers match diffusers', function () {
  const cases = JSON.parse(fs.readFileSync(path.join(DIR, 'cases.json'), 'utf8')) as Record<string, { config: JsonObject; steps: number }>;
  let ref: Record<string, tf.Tensor>;
  before(function () {
    ref = readReference(path.join(DIR, 'schedulers.safetensors'));
  });
  after(function () {
    Object.values(ref).forEach((t) => t.dispose());
  });

  for (const [name, { config, steps }] of Object.entries(cases)) {
    it(`${name}: alphas_cumprod, timesteps and steps`, function () {
      const start = tf.memory().numTensors;
      const ddim = DDIMScheduler.fromConfig(config);
      const acp = tf.tensor(ddim.alphasCumprod);
      expectClose(acp, ref[`${name}.alphas_cumprod`]!, TOL, 'alphas_cumprod');
      acp.dispose();
      expect(ddim.setTimesteps(steps)).to.deep.equal(Array.from(ref[`${name}.ddim.timesteps`]!.dataSync()));
      const mo = ref[`${name}.model_output`]!;
      const sample = ref[`${name}.sample`]!;
      ddim.timesteps.forEach((t, i) => {
        const prev = ref[`${name}.ddim.step${i}.prev`];
        if (prev === undefined) return;
        const r = ddim.step(mo, t, sample);
        expectClose(r.prevSample, prev, TOL, `ddim step ${i} (t=${t}) prev_sample`);
        expectClose(r.predOriginalSample, ref[`${name}.ddim.step${i}.x0`]!, TOL, `ddim step ${i} x0`);
        tf.dispose([r.prevSample, r.predOriginalSample]);
      });
      const invTs = ref[`${name}.inverse.timesteps`];
      if (invTs !== undefined) {
        const inv = DDIMInverseScheduler.fromConfig(config);
        expect(inv.setTimesteps(steps)).to.deep.equal(Array.from(invTs.dataSync()));
        inv.timesteps.forEach((t, i) => {
          const prev = ref[`${name}.inverse.step${i}.prev`];
          if (prev === undefined) return;
          const r = inv.step(mo, t, sample);
          expectClose(r.prevSample, prev, TOL, `inverse step ${i} (t=${t}) prev_sample`);
          expectClose(r.predOriginalSample, ref[`${name}.inverse.step${i}.x0`]!, TOL, `inverse step ${i} x0`);
          tf.dispose([r.prevSample, r.predOriginalSample]);
        });
      }
      expect(tf.memory().numTensors).to.equal(start);
    });
  }
});

describe('scheduler config', function () {
  it('rejects bad values naming the field', function () {
    expect(() => parseDDIMConfig({ beta_schedule: 'sigmoid' })).to.throw(/'beta_schedule' must be/);
    expect(() => parseDDIMConfig({ prediction_type: 'flow' })).to.throw(/'prediction_type' must be/);
    expect(() => parseDDIMConfig({ num_train_timesteps: -3 })).to.throw(/'num_train_timesteps' must be a positive integer/);
    expect(() => parseDDIMConfig({ thresholding: true })).to.throw(/thresholding/);
    expect(() => parseDDIMConfig({ trained_betas: [0.1, 0.2], num_train_timesteps: 3 })).to.throw(/'trained_betas' has 2 values/);
  });
  it('refuses steps out of range and steps before setTimesteps', function () {
    const s = DDIMScheduler.fromConfig({});
    expect(() => s.setTimesteps(0)).to.throw(/number of steps/);
    expect(() => s.setTimesteps(1001)).to.throw(/number of steps/);
    const x = tf.zeros([1]);
    expect(() => s.step(x, 10, x)).to.throw(/setTimesteps/);
    x.dispose();
  });
  it('rounds halves to even like NumPy', function () {
    expect([0.5, 1.5, 2.5, 812.5, 937.5, -0.5, 3.2].map(roundHalfEven)).to.deep.equal([0, 2, 2, 812, 938, -0, 3]);
  });
});
