/**
 * Kind 4 of issue 18, documented ranges are true, tested at both ends. `--steps` is bounded by the model's
 * scheduler (999 for SD 1.x-style configs, whose 1000th 'leading' timestep with steps_offset 1 is past the
 * schedule, where diffusers fails too): refused before any work above it, and the DDIM loops run at it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { DDIMInverter } from '../lib/editing/ddim-inverter.js';
import { CrossAttentionGuidedSampler } from '../lib/editing/guided-sampler.js';
import { assertRegularizable, regularizeNoise } from '../lib/editing/noise-regularization.js';
import type { ProgressEvent } from '../lib/editing/services.js';
import { readJsonObject } from '../lib/io/json.js';
import { Pix2PixZero } from '../lib/pix2pix-zero.js';
import { TorchGenerator } from '../lib/random/torch-generator.js';
import { ConfigSchedulerFactory } from '../lib/schedulers/factory.js';
import { assertDdimSteps, maxDdimSteps } from '../lib/schedulers/step-limit.js';
import { FakeDenoiser } from './helpers/fake-denoiser.js';
import { ROOT, TINY_SD } from './helpers/tensors.js';
import { cli } from './helpers/cli.js';

const EXAMPLE = path.join(ROOT, 'assets', 'examples', 'example.png');

describe('documented ranges hold at both ends (issue 18, kind 4)', function () {
  let dir: string;
  before(function () {
    if (!fs.existsSync(TINY_SD)) this.skip();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-ranges-'));
  });
  after(function () {
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('steps: the scheduler allows 1 to 999 (SD 1.x config) or 1000 (no offset); more is refused naming the limit', function () {
    const sd = readJsonObject(path.join(TINY_SD, 'scheduler', 'scheduler_config.json'), 'scheduler config');
    expect(maxDdimSteps(sd)).to.equal(999);
    expect(maxDdimSteps({ ...sd, steps_offset: 0 })).to.equal(1000);
    expect(maxDdimSteps({ ...sd, timestep_spacing: 'trailing' })).to.equal(1000);
    expect(() => assertDdimSteps(sd, 1000)).to.throw(/steps 1000: this model's scheduler allows 1 to 999 DDIM steps/);
    expect(() => assertDdimSteps(sd, 0)).to.throw(/allows 1 to 999/);
    assertDdimSteps(sd, 1);
    assertDdimSteps(sd, 999);
  });

  it('the inversion and the guided sampler run at 1 and at the largest step count', async function () {
    this.timeout(600_000);
    const sd = readJsonObject(path.join(TINY_SD, 'scheduler', 'scheduler_config.json'), 'scheduler config');
    const unet = new FakeDenoiser(4);
    const noise = tf.randomNormal([1, 2, 2, 4], 0, 1, 'float32', 2) as tf.Tensor4D;
    const caption = tf.randomNormal([1, 3, 4], 0, 1, 'float32', 3) as tf.Tensor3D;
    const direction = tf.mul(caption, 0.1) as tf.Tensor3D;
    try {
      for (const steps of [1, maxDdimSteps(sd)]) {
        const schedulers = new ConfigSchedulerFactory(sd);
        const trajectory = await new DDIMInverter(unet, schedulers).invert(noise, caption, { steps, numRegSteps: 0 });
        const x = trajectory[trajectory.length - 1]!;
        const out = await new CrossAttentionGuidedSampler(unet, schedulers).sample(x, { caption, negative: caption, direction }, { steps, xaGuidance: 0 });
        for (const t of [x, out.edited, out.reconstruction]) expect(t.dataSync().every(Number.isFinite), `steps ${steps}`).to.equal(true);
        tf.dispose([...trajectory, out.edited, out.reconstruction]);
      }
    } finally {
      tf.dispose([noise, caption, direction]);
      unet.dispose();
    }
  });

  it('the facade refuses steps above the limit before it encodes, and inverts at 1 step', async function () {
    const p2p = await Pix2PixZero.load({ model: TINY_SD, cacheDir: false });
    try {
      const phases: string[] = [];
      const onProgress = (e: ProgressEvent): number => phases.push(e.phase);
      let err: Error | undefined;
      try {
        await p2p.invert(EXAMPLE, { caption: 'a cat', steps: 1000, onProgress });
      } catch (e) {
        err = e as Error;
      }
      expect(err?.message).to.match(/steps 1000: this model's scheduler allows 1 to 999/);
      expect(phases).to.deep.equal([]);
      const one = await p2p.invert(EXAMPLE, { caption: 'a cat', steps: 1, seed: 2 ** 32 - 1 });
      expect(one.meta.steps).to.equal(1);
      one.dispose();
    } finally {
      p2p.dispose();
    }
  });

  it('regularisation at its ends: 100 rounds, 100 rolls, on the smallest latent it takes; a step too large refused', function () {
    const x = tf.randomNormal([1, 8, 8, 4], 0, 1, 'float32', 4) as tf.Tensor4D;
    try {
      // One roll makes the auto-correlation step lambda-ac / 1 = 20: it diverges on 8 x 8 (to NaN, before the check).
      expect(() => assertRegularizable(8, 8, { numRegSteps: 100, numAutoCorrRolls: 1 }, "the noise prediction")).to.throw(/an auto-correlation step of 20 \(lambda-ac \/ ac-rolls\) diverges on the 8x8 latent of the noise prediction \(it needs at least 80 values\)/);
      for (const o of [{ numRegSteps: 100, numAutoCorrRolls: 1, lambdaAc: 4 }, { numRegSteps: 1, numAutoCorrRolls: 100 }, { numRegSteps: 0, numAutoCorrRolls: 0 }]) {
        const y = regularizeNoise(x, new TorchGenerator(0), o);
        expect(y.dataSync().every(Number.isFinite), JSON.stringify(o)).to.equal(true);
        y.dispose();
      }
    } finally {
      x.dispose();
    }
  });

  it('edit options at both ends of their documented ranges, negatives without =', function () {
    const inv = path.join(dir, 'inv.safetensors');
    const d = path.join(dir, 'd.safetensors');
    expect(cli(['invert', EXAMPLE, '--model', TINY_SD, '--caption', 'a cat', '--steps', '2', '--seed', '4294967295', '--out', inv]).code).to.equal(0);
    expect(cli(['direction', '--model', TINY_SD, '--task', 'cat2dog', '--out', d, '--no-cache']).code).to.equal(0);
    for (const ends of [
      ['--direction-scale', '-10', '--guidance-scale', '0', '--xa-guidance', '0'],
      ['--direction-scale', '10', '--guidance-scale', '100', '--xa-guidance', '100'],
    ]) {
      const out = path.join(dir, 'e.png');
      const r = cli(['edit', '--inversion', inv, '--direction', d, '--model', TINY_SD, '--out', out, ...ends]);
      expect(r.code, `${ends.join(' ')}: ${r.err}`).to.equal(0);
      fs.rmSync(out);
    }
  });
});
