import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { DDIMInverter } from '../lib/editing/ddim-inverter.js';
import { CrossAttentionGuidedSampler } from '../lib/editing/guided-sampler.js';
import { DDIMScheduler } from '../lib/schedulers/ddim.js';
import { ConfigSchedulerFactory } from '../lib/schedulers/factory.js';
import { FakeDenoiser } from './helpers/fake-denoiser.js';
import type { StepEndHook } from '../lib/editing/services.js';
import { forEachBackend, relativeError } from './helpers/tensors.js';

const SCHEDULER = { beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', clip_sample: false, set_alpha_to_one: false, steps_offset: 1 };
const SCHEDULERS = new ConfigSchedulerFactory(SCHEDULER);

/** diffusers' order: a whole reference pass storing every step's maps, then the whole edit pass. */
function twoPass(unet: FakeDenoiser, noise: tf.Tensor4D, caption: tf.Tensor3D, negative: tf.Tensor3D, direction: tf.Tensor3D, steps: number, scale: number, lambda: number) {
  const s = DDIMScheduler.fromConfig(SCHEDULER);
  const ts = s.setTimesteps(steps);
  const refCtx = tf.concat([negative, caption], 0) as tf.Tensor3D;
  const editCtx = tf.concat([negative, tf.add(caption, direction)], 0) as tf.Tensor3D;
  const cfg = (o: tf.Tensor): tf.Tensor4D => {
    const [u, c] = tf.split(o, 2, 0);
    return tf.add(u!, tf.mul(tf.sub(c!, u!), scale)) as tf.Tensor4D;
  };
  const stored: Map<string, tf.Tensor3D>[] = [];
  let x = noise;
  for (const t of ts) {
    const { output, maps } = unet.predictWithMaps(tf.concat([x, x], 0) as tf.Tensor4D, t, refCtx);
    stored.push(maps);
    x = s.step(cfg(output), t, x).prevSample as tf.Tensor4D;
  }
  const reconstruction = x;
  x = noise;
  ts.forEach((t, i) => {
    let xIn = tf.concat([x, x], 0) as tf.Tensor4D;
    const g = tf.grad((v: tf.Tensor) => unet.crossAttentionLoss(v as tf.Tensor4D, t, editCtx, stored[i]!))(xIn);
    xIn = tf.sub(xIn, tf.mul(g, lambda)) as tf.Tensor4D;
    const out = unet.predict(xIn, t, editCtx);
    x = s.step(cfg(out), t, tf.slice(xIn, [0, 0, 0, 0], [1, -1, -1, -1])).prevSample as tf.Tensor4D;
  });
  return { edited: x, reconstruction };
}

forEachBackend('guided sampler (lock-step reference + edit passes)', function () {
  let unet: FakeDenoiser;
  let caption: tf.Tensor3D;
  let negative: tf.Tensor3D;
  let direction: tf.Tensor3D;
  let noise: tf.Tensor4D;
  before(function () {
    unet = new FakeDenoiser(6);
    caption = tf.randomNormal([1, 7, 6], 0, 1, 'float32', 1) as tf.Tensor3D;
    negative = tf.randomNormal([1, 7, 6], 0, 1, 'float32', 2) as tf.Tensor3D;
    direction = tf.randomNormal([1, 7, 6], 0, 1, 'float32', 3) as tf.Tensor3D;
    noise = tf.randomNormal([1, 4, 4, 4], 0, 1, 'float32', 4) as tf.Tensor4D;
  });
  after(function () {
    unet.dispose();
    tf.dispose([caption, negative, direction, noise]);
  });

  it('gives the same latents as running the whole reference pass first (diffusers order)', async function () {
    const sampler = new CrossAttentionGuidedSampler(unet, SCHEDULERS);
    const r = await sampler.sample(noise, { caption, negative, direction }, { steps: 6, guidanceScale: 5, xaGuidance: 0.1 });
    const expected = tf.tidy(() => twoPass(unet, noise, caption, negative, direction, 6, 5, 0.1));
    expect(relativeError(r.edited, expected.edited)).to.be.below(1e-5);
    expect(relativeError(r.reconstruction, expected.reconstruction)).to.be.below(1e-5);
    // The guidance moved the edit: without it the result differs.
    const unguided = await sampler.sample(noise, { caption, negative, direction }, { steps: 6, guidanceScale: 5, xaGuidance: 0 });
    expect(relativeError(unguided.edited, r.edited)).to.be.above(1e-4);
    tf.dispose([r.edited, r.reconstruction, expected.edited, expected.reconstruction, unguided.edited, unguided.reconstruction]);
  });

  it("takes CFG's gradient one half at a time (gradientSplitMinElements) with the same latents as the batch-2 gradient", async function () {
    const sampler = new CrossAttentionGuidedSampler(unet, SCHEDULERS);
    // Another negative prompt, and the caption as the negative (the reference pass's batch-1 shortcut).
    for (const neg of [negative, caption]) {
      const expected = tf.tidy(() => twoPass(unet, noise, caption, neg, direction, 6, 5, 0.1));
      for (const split of [0, Infinity]) {
        const r = await sampler.sample(noise, { caption, negative: neg, direction }, { steps: 6, guidanceScale: 5, xaGuidance: 0.1, gradientSplitMinElements: split });
        expect(relativeError(r.edited, expected.edited), `edited, split from ${split}, ${neg === caption ? 'caption' : 'other'} negative`).to.be.below(1e-5);
        tf.dispose([r.edited, r.reconstruction]);
      }
      tf.dispose([expected.edited, expected.reconstruction]);
    }
    await sampler.sample(noise, { caption, negative, direction }, { gradientSplitMinElements: -1 }).then(
      () => expect.fail('no error'),
      (err: Error) => expect(err.message).to.match(/gradientSplitMinElements must be a non-negative number/),
    );
  });

  it('without guidance runs both passes as one batched forward (jointForwardMaxElements): the same latents and maps', async function () {
    const sampler = new CrossAttentionGuidedSampler(unet, SCHEDULERS);
    for (const [neg, scale] of [
      [negative, 5],
      [caption, 5],
      [negative, 1],
    ] as const) {
      const what = `${neg === caption ? 'caption' : 'other'} negative, guidance ${scale}`;
      const expected = tf.tidy(() => twoPass(unet, noise, caption, neg, direction, 6, scale, 0));
      const maps: Map<string, tf.Tensor3D>[] = [];
      const start = tf.memory().numTensors;
      for (const joint of [Infinity, 0]) {
        const seen = new Map<string, tf.Tensor3D>();
        const r = await sampler.sample(noise, { caption, negative: neg, direction }, {
          steps: 6,
          guidanceScale: scale,
          xaGuidance: 0,
          jointForwardMaxElements: joint,
          onReferenceMaps: (i, m) => {
            for (const [k, v] of m) seen.set(`${i} ${k}`, tf.keep(tf.clone(v)));
          },
        });
        expect(relativeError(r.edited, expected.edited), `edited, ${what}, joint below ${joint}`).to.be.below(1e-5);
        expect(relativeError(r.reconstruction, expected.reconstruction), `reconstruction, ${what}, joint below ${joint}`).to.be.below(1e-5);
        tf.dispose([r.edited, r.reconstruction]);
        maps.push(seen);
      }
      expect([...maps[0]!.keys()]).to.deep.equal([...maps[1]!.keys()]);
      for (const [k, m] of maps[0]!) expect(relativeError(m, maps[1]!.get(k)!), `maps ${k}, ${what}`).to.be.below(1e-5);
      for (const m of maps) tf.dispose([...m.values()]);
      expect(tf.memory().numTensors, `tensors after both runs, ${what}`).to.equal(start);
      tf.dispose([expected.edited, expected.reconstruction]);
    }
    await sampler.sample(noise, { caption, negative, direction }, { jointForwardMaxElements: Number.NaN }).then(
      () => expect.fail('no error'),
      (err: Error) => expect(err.message).to.match(/jointForwardMaxElements must be a non-negative number/),
    );
  });

  it('holds one timestep of attention maps, frees every tensor, and reports progress', async function () {
    const sampler = new CrossAttentionGuidedSampler(unet, SCHEDULERS);
    const start = tf.memory().numTensors;
    const steps: number[] = [];
    let maxLive = 0;
    const base = tf.memory().numTensors;
    for (let run = 0; run < 2; run++) {
      const r = await sampler.sample(noise, { caption, negative, direction }, {
        steps: 5,
        onProgress: (e) => steps.push(e.step),
        onReferenceMaps: () => (maxLive = Math.max(maxLive, tf.memory().numTensors - base)),
      });
      tf.dispose([r.edited, r.reconstruction]);
    }
    expect(tf.memory().numTensors).to.equal(start);
    expect(steps).to.deep.equal([1, 2, 3, 4, 5, 1, 2, 3, 4, 5]);
    expect(maxLive, 'live tensors during a step').to.be.below(20);
  });

  it('onStepEnd: sees every step after both passes, may replace either latent, and nothing leaks', async function () {
    const sampler = new CrossAttentionGuidedSampler(unet, SCHEDULERS);
    const plain = await sampler.sample(noise, { caption, negative, direction }, { steps: 4 });
    const start = tf.memory().numTensors;
    const seen: [number, number, number][] = [];
    // Returning the latents it was given (or nothing) changes nothing.
    const same = await sampler.sample(noise, { caption, negative, direction }, {
      steps: 4,
      onStepEnd: (s) => {
        seen.push([s.step, s.timestep, s.steps]);
        return s.step % 2 === 0 ? { reference: s.reference, edit: s.edit } : undefined;
      },
    });
    expect(seen).to.deep.equal(DDIMScheduler.fromConfig(SCHEDULER).setTimesteps(4).map((t, i) => [i, t, 4]));
    expect(relativeError(same.edited, plain.edited)).to.equal(0);
    expect(relativeError(same.reconstruction, plain.reconstruction)).to.equal(0);
    // Pinning the reference to zeros after the last step, and the edit to its negation, shows in the result.
    const fixed = await sampler.sample(noise, { caption, negative, direction }, {
      steps: 4,
      onStepEnd: (s) => (s.step === 3 ? { reference: tf.zerosLike(s.reference), edit: tf.neg(s.edit) } : undefined),
    });
    const zeroMax = tf.tidy(() => tf.max(tf.abs(fixed.reconstruction)).dataSync()[0]);
    expect(zeroMax).to.equal(0);
    const negated = tf.neg(plain.edited);
    expect(relativeError(fixed.edited, negated)).to.equal(0);
    negated.dispose();
    tf.dispose([same.edited, same.reconstruction, fixed.edited, fixed.reconstruction]);
    expect(tf.memory().numTensors).to.equal(start);
    tf.dispose([plain.edited, plain.reconstruction]);
  });

  it("with guidance runs the next step's reference forward with the edit prediction, checked against the hooks' reference", async function () {
    const sampler = new CrossAttentionGuidedSampler(unet, SCHEDULERS);
    const steps = 5;
    // A trajectory the hook pins the reference to (as Direct Inversion does), announced right, wrongly, or not at all.
    const trajectory = Array.from({ length: steps }, (_, k) => tf.tidy(() => tf.mul(noise, 0.8 - k * 0.1) as tf.Tensor4D));
    const pin = (announce?: (step: number) => tf.Tensor4D | undefined): StepEndHook => {
      const hook: StepEndHook = ({ step }) => ({ reference: tf.clone(trajectory[step]!) });
      if (announce !== undefined) hook.referenceAfter = (step) => announce(step);
      return hook;
    };
    const wrong = tf.zerosLike(noise);
    const hooks: [string, StepEndHook | undefined][] = [
      ['no hook', undefined],
      ['pinned, announced', pin((step) => trajectory[step])],
      ['pinned, wrongly announced', pin(() => wrong)],
      ['pinned, not announced', pin()],
      ['scaled, not announced', ({ reference }) => ({ reference: tf.mul(reference, 0.9) as tf.Tensor4D })],
    ];
    const calls: Record<string, number> = {};
    for (const [name, hook] of hooks) {
      for (const neg of [negative, caption]) {
        const run = (jointForwardMaxElements: number) => {
          const before = unet.calls;
          const r = sampler.sample(noise, { caption, negative: neg, direction }, { steps, guidanceScale: 5, xaGuidance: 0.1, jointForwardMaxElements, onStepEnd: hook });
          return r.then((out) => ({ ...out, calls: unet.calls - before }));
        };
        const start = tf.memory().numTensors;
        const apart = await run(0);
        const joined = await run(Infinity);
        const what = `${name}, ${neg === caption ? 'caption' : 'other'} negative`;
        expect(relativeError(joined.edited, apart.edited), `edited, ${what}`).to.be.below(1e-5);
        expect(relativeError(joined.reconstruction, apart.reconstruction), `reconstruction, ${what}`).to.be.below(1e-5);
        calls[what] = joined.calls;
        tf.dispose([apart.edited, apart.reconstruction, joined.edited, joined.reconstruction]);
        expect(tf.memory().numTensors, `tensors, ${what}`).to.equal(start);
      }
    }
    // Run ahead, a step costs the gradient and one joint forward; a wrong or missing announcement costs the
    // reference forward again.
    expect(calls['no hook, other negative']).to.equal(1 + 2 * steps);
    expect(calls['pinned, announced, other negative']).to.equal(1 + 2 * steps);
    expect(calls['pinned, wrongly announced, other negative']).to.equal(1 + 3 * steps - 1);
    tf.dispose([...trajectory, wrong]);
  });

  it('stops between steps when aborted, freeing its tensors', async function () {
    const sampler = new CrossAttentionGuidedSampler(unet, SCHEDULERS);
    const start = tf.memory().numTensors;
    const ac = new AbortController();
    let err: unknown;
    try {
      await sampler.sample(noise, { caption, negative, direction }, { steps: 10, signal: ac.signal, onProgress: (e) => e.step === 2 && ac.abort(new Error('stop now')) });
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).to.equal('stop now');
    expect(tf.memory().numTensors).to.equal(start);
  });

  it('rejects bad options naming them', async function () {
    const sampler = new CrossAttentionGuidedSampler(unet, SCHEDULERS);
    for (const [opts, msg] of [[{ steps: 0 }, /steps must be/], [{ guidanceScale: -1 }, /guidanceScale/], [{ xaGuidance: NaN }, /xaGuidance/]] as const) {
      let err: unknown;
      try {
        await sampler.sample(noise, { caption, negative, direction }, opts);
      } catch (e) {
        err = e;
      }
      expect((err as Error).message).to.match(msg);
    }
  });

  it('inverts without leaking, deterministically for a seed', async function () {
    const inverter = new DDIMInverter(unet, SCHEDULERS);
    const start = tf.memory().numTensors;
    // 10 x 10: the regularisation refuses latents where it diverges (under 8 x 8, or under 80 values for one roll; issue 18).
    const latents = tf.randomNormal([1, 10, 10, 4], 0, 1, 'float32', 5) as tf.Tensor4D;
    const a = await inverter.invert(latents, caption, { steps: 3, seed: 1, numRegSteps: 1, numAutoCorrRolls: 1 });
    const b = await inverter.invert(latents, caption, { steps: 3, seed: 1, numRegSteps: 1, numAutoCorrRolls: 1 });
    expect(a).to.have.length(4);
    a.forEach((z, k) => expect(relativeError(z, b[k]!), `z_${k}`).to.equal(0));
    expect(relativeError(a[0]!, latents), 'z_0 is the input').to.equal(0);
    tf.dispose([...a, ...b, latents]);
    expect(tf.memory().numTensors).to.equal(start);
  });
});
