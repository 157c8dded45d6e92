/**
 * Kind 2 of issue 18, never a NaN or infinite result with exit 0. Noise regularisation diverges on latents under
 * 8 x 8 (in diffusers too: its fixed-size gradient steps overshoot once the latent is small, see
 * MIN_REGULARIZED_SIDE), so it is refused up front there; an inversion that diverges anyway is an error; and every
 * artefact and image is checked for non-finite values before it is written, naming the file.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { saveDirection, saveInversion } from '../lib/editing/artefacts.js';
import { writeCacheEntry } from '../lib/editing/embedding-cache.js';
import { MIN_REGULARIZED_SIDE, RecordedShifts, assertRegularizable, regularizeNoise } from '../lib/editing/noise-regularization.js';
import { tensorToImage } from '../lib/io/image.js';
import { SafetensorsFile, writeSafetensors } from '../lib/io/safetensors.js';
import { type Inverter, TYPES } from '../lib/editing/services.js';
import { Pix2PixZero } from '../lib/pix2pix-zero.js';
import { ROOT, TINY_SD } from './helpers/tensors.js';
import { cli } from './helpers/cli.js';

const EXAMPLE = path.join(ROOT, 'assets', 'examples', 'example.png');
const META = { caption: 'a cat', steps: 2, imageSize: [64, 64] as [number, number], model: 'x', settings: {} };

describe('no NaN or infinity is ever written (issue 18, kind 2)', function () {
  let dir: string;
  before(function () {
    if (!fs.existsSync(TINY_SD)) this.skip();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-nonfinite-'));
  });
  after(function () {
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('invert at --size 8 and 48 on tiny-sd: refused up front with regularisation, finite without it', function () {
    for (const size of ['8', '48']) {
      const out = path.join(dir, `inv${size}.safetensors`);
      const r = cli(['invert', EXAMPLE, '--model', TINY_SD, '--caption', 'a cat', '--size', size, '--steps', '2', '--out', out]);
      expect(r.code, r.err).to.equal(1);
      expect(r.err).to.match(/noise regularisation needs latents of at least 8x8 .* gives \d+x\d+: use a larger size, or turn the regularisation off \(--reg-steps 0/);
      expect(fs.existsSync(out)).to.equal(false);
    }
    const out = path.join(dir, 'inv48-off.safetensors');
    const r = cli(['invert', EXAMPLE, '--model', TINY_SD, '--caption', 'a cat', '--size', '48', '--steps', '2', '--reg-steps', '0', '--out', out]);
    expect(r.code, r.err).to.equal(0);
    const f = SafetensorsFile.open(out);
    try {
      expect(f.read('latent').data.every(Number.isFinite)).to.equal(true);
    } finally {
      f.close();
    }
  });

  it('latents below 8 x 8 are refused up front (the regulariser would diverge) unless it does nothing; the regulariser itself follows diffusers', function () {
    expect(MIN_REGULARIZED_SIDE).to.equal(8);
    expect(() => assertRegularizable(6, 6, {}, 'the noise prediction')).to.throw(/at least 8x8 .* the noise prediction gives 6x6/);
    expect(() => assertRegularizable(6, 6, { numRegSteps: 0 })).to.not.throw();
    const small = tf.randomNormal([1, 6, 6, 4], 0, 1, 'float32', 1) as tf.Tensor4D;
    try {
      const off = regularizeNoise(small, new RecordedShifts([]), { numRegSteps: 0 });
      off.dispose();
    } finally {
      small.dispose();
    }
    expect(() => assertRegularizable(4, 8, { lambdaAc: 0, lambdaKl: 0 })).to.not.throw();
    expect(() => assertRegularizable(4, 8, { numAutoCorrRolls: 0 })).to.throw(/at least 8x8/); // the KL step still runs
  });

  it('an inversion that diverges anyway is an error, not an Inversion of NaNs, and frees its tensors', async function () {
    const p2p = await Pix2PixZero.load({ model: TINY_SD, cacheDir: false });
    try {
      // Settings the up-front check lets through but that overflow (a huge KL step), and an inverter that diverges.
      const diverging: Inverter = { invert: (latents) => Promise.resolve([tf.clone(latents), tf.mul(latents, Infinity) as tf.Tensor4D]) };
      for (const [options, swap] of [[{ numRegSteps: 2, lambdaAc: 0, lambdaKl: 1e30 }, false], [{ numRegSteps: 0 }, true]] as const) {
        if (swap) p2p.container.rebindSync<Inverter>(TYPES.Inverter).toConstantValue(diverging);
        const start = tf.memory().numTensors;
        let err: Error | undefined;
        try {
          (await p2p.invert(EXAMPLE, { caption: 'a cat', steps: 2, ...options })).dispose();
        } catch (e) {
          err = e as Error;
        }
        expect(err?.message, JSON.stringify(options)).to.match(/the inversion has \d+ non-finite values.*the inversion diverged/);
        expect(tf.memory().numTensors).to.equal(start);
      }
    } finally {
      p2p.dispose();
    }
  });

  it('artefacts and cache entries with NaN or infinity are not written, and the error names the file', function () {
    const nan = tf.tensor4d([NaN, 1, 2, 3], [1, 1, 1, 4]);
    const inf = tf.tensor3d([Infinity, 0], [1, 1, 2]);
    const huge = tf.tensor3d([1e30, 0], [1, 1, 2]);
    try {
      const inv = path.join(dir, 'nan.safetensors');
      expect(() => saveInversion(inv, nan, META)).to.throw(/cannot write .*nan\.safetensors: the latent has 1 non-finite value/);
      const d = path.join(dir, 'inf.safetensors');
      expect(() => saveDirection(d, inf, { source: 'a', target: 'b' })).to.throw(/cannot write .*inf\.safetensors: the direction has 1 non-finite value/);
      expect(() => saveDirection(d, huge, { source: 'a', target: 'b' })).to.throw(/magnitude 1\.00e\+30/);
      expect(() => writeCacheEntry(path.join(dir, 'c.safetensors'), { model: 'm', sentences: ['a'] }, inf)).to.throw(/non-finite/);
      expect(fs.readdirSync(dir).filter((f) => !f.startsWith('inv'))).to.deep.equal([]);
    } finally {
      tf.dispose([nan, inf, huge]);
    }
  });

  it('a text encoder that yields NaN: embed and direction fail naming what, and write nothing', function () {
    const model = path.join(dir, 'nan-encoder');
    fs.cpSync(TINY_SD, model, { recursive: true });
    const file = path.join(model, 'text_encoder', 'model.safetensors');
    const f = SafetensorsFile.open(file);
    const tensors = Object.fromEntries(f.names().map((n) => [n, { dtype: 'F32' as const, shape: f.info(n).shape, data: f.read(n).data as Float32Array }]));
    f.close();
    const bias = Object.keys(tensors).find((n) => n.endsWith('final_layer_norm.bias'))!;
    tensors[bias]!.data.fill(NaN);
    writeSafetensors(file, tensors);
    const e = cli(['embed', '--model', model, '--text', 'a cat', '--out', path.join(dir, 'e.safetensors')]);
    expect(e.code).to.equal(1);
    expect(e.err).to.match(/cannot write .*e\.safetensors: the embeddings has \d+ non-finite values/);
    const d = cli(['direction', '--model', model, '--task', 'cat2dog', '--out', path.join(dir, 'd.safetensors'), '--cache-dir', path.join(dir, 'cache')]);
    expect(d.code).to.equal(1);
    expect(d.err).to.match(/the mean embedding of concept 'cat' has \d+ non-finite values/);
    for (const out of ['e.safetensors', 'd.safetensors']) expect(fs.existsSync(path.join(dir, out)), out).to.equal(false);
    expect(fs.existsSync(path.join(dir, 'cache', 'embeddings')) ? fs.readdirSync(path.join(dir, 'cache', 'embeddings')) : []).to.deep.equal([]);
  });

  it('an image tensor with infinities counts them as broken, as NaNs', function () {
    const t = tf.tensor4d([Infinity, -Infinity, NaN, 0.5, 0, 0], [1, 1, 2, 3]);
    expect(tensorToImage(t).nanCount).to.equal(3);
    t.dispose();
  });
});
