/**
 * Kind 3 of issue 18, artefacts and caches are verified, not trusted: a direction of another text encoder is
 * refused by fingerprint (as inversions of another UNet are), an inversion with absurd latents, metadata that
 * does not match its tensor, or the x_0 latents of --save-latents is refused with the reason, and a cache entry
 * that is corrupt, of the wrong shape, NaN or made from something else is reported once and recomputed.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { loadInversion, saveDirection, saveInversion } from '../lib/editing/artefacts.js';
import { SentenceDirectionDiscovery, embeddingCacheKey } from '../lib/editing/direction-discovery.js';
import type { TextEmbedder } from '../lib/editing/services.js';
import { writeSafetensors } from '../lib/io/safetensors.js';
import { Direction, Inversion, Pix2PixZero } from '../lib/pix2pix-zero.js';
import { ROOT, TINY_SD } from './helpers/tensors.js';
import { cli } from './helpers/cli.js';

const EXAMPLE = path.join(ROOT, 'assets', 'examples', 'example.png');

/** A text embedder whose mean embedding is a fixed function of the sentence count, counting its calls. */
class CountingEmbedder implements TextEmbedder {
  calls = 0;
  embed(): Promise<tf.Tensor3D> {
    throw new Error('not used');
  }
  meanEmbedding(sentences: readonly string[]): Promise<tf.Tensor3D> {
    this.calls++;
    return Promise.resolve(tf.fill([1, 4, 3], sentences.length) as tf.Tensor3D);
  }
}

describe('artefacts and caches are verified, not trusted (issue 18, kind 3)', function () {
  let dir: string;
  let p2p: Pix2PixZero;
  let inversion: Inversion;
  before(async function () {
    if (!fs.existsSync(TINY_SD)) this.skip();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-verify-'));
    p2p = await Pix2PixZero.load({ model: TINY_SD, cacheDir: false });
    inversion = await p2p.invert(EXAMPLE, { caption: 'a cat', steps: 2 });
  });
  after(function () {
    inversion?.dispose();
    p2p?.dispose();
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a direction of another text encoder of the same width is refused by fingerprint', async function () {
    const own = await p2p.direction('cat', 'dog');
    const foreign = new Direction(tf.clone(own.tensor), { ...own.meta, model: '0123456789abcdef' });
    try {
      let err: Error | undefined;
      try {
        await p2p.edit(inversion, foreign, { steps: 2 });
      } catch (e) {
        err = e as Error;
      }
      expect(err?.message).to.match(/the direction was made with another text encoder \(0123456789abcdef, this model's is [0-9a-f]{16}\)/);
      expect(() => own.plus(foreign)).to.throw(/cannot add directions of two text encoders/);
      const file = path.join(dir, 'foreign.safetensors');
      saveDirection(file, foreign.tensor, foreign.meta);
      const inv = path.join(dir, 'own.safetensors');
      inversion.save(inv);
      const r = cli(['edit', '--inversion', inv, '--direction', file, '--model', TINY_SD, '--out', path.join(dir, 'never.png')]);
      expect(r.code).to.equal(1);
      expect(r.err).to.match(/another text encoder/);
    } finally {
      own.dispose();
      foreign.dispose();
    }
  });

  it('inversions with absurd latents, inconsistent metadata, or edited latents are refused with the reason', function () {
    const save = (name: string, latent: tf.Tensor4D, meta: object, kind?: 'latents', image?: { shape: number[]; data: Float32Array }): string => {
      const file = path.join(dir, name);
      // Written as a tampered file would be: past saveInversion's own checks.
      const nchw = tf.transpose(latent, [0, 3, 1, 2]);
      writeSafetensors(
        file,
        { latent: { dtype: 'F32', shape: nchw.shape, data: nchw.dataSync() as Float32Array }, ...(image !== undefined ? { image: { dtype: 'F32', ...image } } : {}) },
        { format: 'pix2pix-zero', kind: kind ?? 'inversion', meta: JSON.stringify(meta) },
      );
      nchw.dispose();
      return file;
    };
    const [ih, iw] = inversion.meta.imageSize;
    const pixels = (v: number, h = ih, w = iw) => ({ shape: [1, 3, h, w], data: new Float32Array(3 * h * w).fill(v) });
    const good = inversion.meta;
    const flipped = tf.tidy(() => tf.concat([tf.fill([1, 1, 8, 4], 1e30), tf.slice(inversion.latent, [0, 1, 0, 0], [-1, -1, -1, -1])], 1)) as tf.Tensor4D;
    const nan = tf.fill([1, 8, 8, 4], NaN) as tf.Tensor4D;
    try {
      const cases: [string, RegExp][] = [
        [save('flipped.safetensors', flipped, good), /flipped\.safetensors: latent has a value of magnitude 1\.00e\+30, beyond any valid one/],
        [save('nan.safetensors', nan, good), /nan\.safetensors: latent has 256 non-finite values/],
        [save('steps.safetensors', inversion.latent, { ...good, steps: 0 }), /says steps 0, expected an integer in \[1, 1000\]/],
        [save('steps2.safetensors', inversion.latent, { ...good, steps: 2.5 }), /says steps 2\.5/],
        [save('size.safetensors', inversion.latent, { ...good, imageSize: [64, 48] }), /image size 64x48 does not fit the 8x8 latent/],
        [save('size2.safetensors', inversion.latent, { ...good, imageSize: [64, 'x'] }), /says imageSize \[64,"x"\]/],
        [save('latents.safetensors', inversion.latent, good, 'latents'), /holds an edit's x_0 latents \(written by --save-latents\), not an inversion/],
        [save('legacy.safetensors', inversion.latent, { ...good, settings: { kind: 'edited x_0' } }), /holds an edit's x_0 latents/],
        // the input image kept for the overlay: [1, 3, H, W] of the metadata's size, values in [-1, 1]
        [save('image-size.safetensors', inversion.latent, good, undefined, pixels(0, ih, iw / 2)), new RegExp(`image has shape \\[1, 3, ${ih}, ${iw / 2}\\], expected \\[1, 3, ${ih}, ${iw}\\]`)],
        [save('image-range.safetensors', inversion.latent, good, undefined, pixels(3)), /image-range\.safetensors: image has a value of magnitude 3\.00e\+0, beyond any valid one/],
        [save('image-nan.safetensors', inversion.latent, good, undefined, pixels(NaN)), /image has \d+ non-finite values/],
      ];
      for (const [file, message] of cases) expect(() => loadInversion(file), file).to.throw(message);
      const start = tf.memory().numTensors;
      const fine = loadInversion(save('image-fine.safetensors', inversion.latent, good, undefined, pixels(-1)));
      expect(fine.image?.shape).to.deep.equal([1, ih, iw, 3]);
      expect(Math.min(...(fine.image!.dataSync() as Float32Array))).to.equal(-1);
      tf.dispose([fine.latent, fine.image!]);
      expect(tf.memory().numTensors).to.equal(start);
    } finally {
      tf.dispose([flipped, nan]);
    }
  });

  it('edit refuses an inversion whose latent does not fit its image size on this model', async function () {
    const odd = new Inversion(tf.zeros([1, 16, 16, 4]), { ...inversion.meta, imageSize: [64, 64] });
    const d = new Direction(tf.zeros([1, 77, 32]), { source: 'a', target: 'b' });
    try {
      let err: Error | undefined;
      try {
        await p2p.edit(odd, d);
      } catch (e) {
        err = e as Error;
      }
      expect(err?.message).to.match(/the inversion's 16x16x4 latent does not fit its image size 64x64 with this model \(4 channels, 8x downscale\)/);
    } finally {
      odd.dispose();
      d.dispose();
    }
  });

  it('--save-latents writes latents that --inversion refuses', function () {
    const latents = path.join(dir, 'x0.safetensors');
    saveInversion(latents, inversion.latent, inversion.meta, undefined, 'latents');
    const r = cli(['edit', '--inversion', latents, '--task', 'cat2dog', '--model', TINY_SD, '--out', path.join(dir, 'never.png'), '--no-cache']);
    expect(r.code).to.equal(1);
    expect(r.err).to.match(/x0\.safetensors holds an edit's x_0 latents/);
  });

  it('cache entries: corrupt, wrong-shape, NaN, stale or unverifiable ones are reported once and recomputed', async function () {
    const cacheDir = path.join(dir, 'cache');
    const embedder = new CountingEmbedder();
    const warnings: string[] = [];
    const dd = new SentenceDirectionDiscovery(embedder, { modelId: 'enc1', cacheDir, onWarning: (m) => warnings.push(m) });
    const concept = { name: 'c', sentences: ['one', 'two'] };
    const file = path.join(cacheDir, 'embeddings', `${embeddingCacheKey('enc1', concept.sentences)}.safetensors`);
    const mean = async (): Promise<number[]> => {
      const t = await dd.conceptEmbedding(concept);
      const v = Array.from(t.dataSync());
      t.dispose();
      return v;
    };
    const expected = Array(12).fill(2) as number[];
    expect(await mean()).to.deep.equal(expected);
    expect(embedder.calls).to.equal(1);
    expect(await mean()).to.deep.equal(expected); // from the cache
    expect(embedder.calls).to.equal(1);
    /** Writes an entry as a tampered or foreign file would be, with a record that is right unless overridden. */
    const entry = (data: Float32Array, shape: number[], record: Record<string, string> = {}): void => {
      const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
      writeSafetensors(file, { mean: { dtype: 'F32', shape, data } }, {
        model: 'enc1',
        sentences: '2',
        sentences_sha256: sha(concept.sentences.join('\n')),
        shape: shape.join(','),
        checksum: sha(Buffer.from(data.buffer)),
        ...record,
      });
    };
    const damage: [string, () => void, RegExp][] = [
      ['a flipped byte', () => {
        const bytes = fs.readFileSync(file);
        bytes[bytes.length - 3]! ^= 0x40;
        fs.writeFileSync(file, bytes);
      }, /checksum does not match its values/],
      ['a wrong shape', () => entry(new Float32Array(12).fill(2), [1, 2, 6], { shape: '1,4,3' }), /its tensor is \[1, 2, 6\], its record says \[1,4,3\]/],
      ['NaN values', () => entry(new Float32Array(12).fill(NaN), [1, 4, 3]), /mean has 12 non-finite values/],
      ['another encoder', () => entry(new Float32Array(12), [1, 4, 3], { model: 'enc0' }), /another text encoder \(enc0\)/],
      ['other sentences', () => entry(new Float32Array(12), [1, 4, 3], { sentences_sha256: '00' }), /made from other sentences/],
      ['a legacy entry without its record', () => writeSafetensors(file, { mean: { dtype: 'F32', shape: [1, 4, 3], data: new Float32Array(12) } }, { model: 'enc1', sentences: '2' }), /does not record what it was made from/],
      ['not safetensors', () => fs.writeFileSync(file, 'garbage'), /too short/],
    ];
    for (const [what, breakIt, reason] of damage) {
      breakIt();
      const calls = embedder.calls;
      warnings.length = 0;
      expect(await mean(), what).to.deep.equal(expected);
      expect(embedder.calls, what).to.equal(calls + 1);
      expect(warnings, what).to.have.length(1);
      expect(warnings[0], what).to.match(reason);
      expect(warnings[0]).to.match(/cache entry .* of concept 'c' is not used .*; recomputing it/);
      expect(await mean(), `${what}, then rewritten`).to.deep.equal(expected);
      expect(embedder.calls).to.equal(calls + 1);
      expect(warnings).to.have.length(1);
    }
  });
});
