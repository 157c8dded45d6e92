/**
 * Issue 21, in process: the HTTP fields are parsed by the CLI's own option parser (same values, same refusals),
 * and the service's EditRunner gives the facade's result, reuses an inversion for the same image and settings,
 * stops on its AbortSignal and leaves no tensor behind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { encodePng } from '../lib/io/image.js';
import { guidanceOptions, invertOptions } from '../lib/options/edit-options.js';
import { Pix2PixZero } from '../lib/pix2pix-zero.js';
import { parseEditFields } from '../lib/service/edit-request.js';
import { EditRunner } from '../lib/service/edit-runner.js';
import { LruCache } from '../lib/service/lru-cache.js';
import { ROOT, TINY_SD } from './helpers/tensors.js';

const EXAMPLE = path.join(ROOT, 'assets', 'examples', 'example.png');

describe('service: edit fields and the edit runner (issue 21)', function () {
  describe('parseEditFields', function () {
    it("gives the CLI parser's options for the same values", function () {
      const fields: [string, string][] = [
        ['task', 'cat2dog'],
        ['caption', 'a cat'],
        ['steps', '12'],
        ['size', '64'],
        ['guidance-scale', '3.5'],
        ['xa-guidance', '.2'],
        ['reg-steps', '0'],
        ['seed', '42'],
        ['direct-inversion', 'on'],
        ['fit', 'crop'],
      ];
      const r = parseEditFields(fields);
      const values = { ...Object.fromEntries(fields), 'direct-inversion': true };
      const cli = Object.fromEntries(Object.entries({ ...invertOptions(values), ...guidanceOptions(values) }).filter(([, v]) => v !== undefined));
      expect(r).to.deep.equal({ source: 'cat', target: 'dog', options: cli });
      expect(JSON.parse(JSON.stringify(r))).to.deep.equal(r);
    });
    it('takes source and target, leaves empty fields unset, and reads flags as a form sends them', function () {
      const r = parseEditFields([['source', 'cat'], ['target', 'dog'], ['steps', ''], ['direct-inversion', 'false']]);
      expect(r.source).to.equal('cat');
      expect(r.options.steps).to.equal(undefined);
      expect(r.options.directInversion).to.equal(false);
      expect(parseEditFields([['task', 'a2b'], ['direct-inversion', 'true']]).options.directInversion).to.equal(true);
    });
    const refused: [[string, string][], RegExp][] = [
      [[['task', 'cat2dog'], ['steps', '1001']], /^--steps must be an integer in \[1, 1000\], got '1001'$/],
      [[['task', 'cat2dog'], ['seed', '-1']], /^--seed must be an integer/],
      [[['task', 'cat2dog'], ['vae-encode', 'max']], /^--vae-encode must be 'mean' or 'sample', got 'max'$/],
      [[['task', 'cat2dog'], ['direct-inversion', 'maybe']], /^--direct-inversion is a flag: give true or false, got 'maybe'$/],
      [[['task', 'cat2dog'], ['steps', '5'], ['steps', '6']], /^--steps is given twice/],
      [[['task', 'cat2dog'], ['out', 'x.png']], /^unknown field 'out'/],
      [[['task', 'cat2dog'], ['inversion', 'x.safetensors']], /^unknown field 'inversion'/],
      [[['source', 'cat']], /^the target concept is missing/],
      [[['task', 'cat2dog'], ['target', 'dog']], /^--task and --target contradict each other: give one of them$/],
    ];
    for (const [fields, message] of refused) {
      it(`refuses ${fields.map(([k, v]) => `${k}=${v}`).join(' ')}`, function () {
        expect(() => parseEditFields(fields)).to.throw(message);
      });
    }
  });

  describe('LruCache', function () {
    it('drops and frees the least recently used entry', function () {
      const freed: number[] = [];
      const c = new LruCache<number>(2, (v) => freed.push(v));
      c.set('a', 1);
      c.set('b', 2);
      c.get('a');
      c.set('c', 3);
      expect(freed).to.deep.equal([2]);
      expect(c.get('b')).to.equal(undefined);
      c.set('a', 4);
      expect(freed).to.deep.equal([2, 1]);
      c.clear();
      expect(freed.sort()).to.deep.equal([1, 2, 3, 4]);
      expect(() => new LruCache<number>(0, () => undefined)).to.throw(/positive integer/);
    });
  });

  describe('EditRunner', function () {
    const request = parseEditFields([['task', 'cat2dog'], ['caption', 'a cat'], ['steps', '3'], ['size', '32'], ['reg-steps', '0']]);
    let p2p: Pix2PixZero;
    let runner: EditRunner;
    let start: number;
    before(async function () {
      if (!fs.existsSync(TINY_SD)) this.skip();
      start = tf.memory().numTensors;
      p2p = await Pix2PixZero.load({ model: TINY_SD, cacheDir: false });
      runner = new EditRunner(p2p, { inversions: 1 });
    });

    it("gives the facade's edit, then reuses the inversion (no inversion phase) with the same result", async function () {
      const image = fs.readFileSync(EXAMPLE);
      const phases: string[] = [];
      const first = await runner.run(image, request, { onProgress: (e) => phases.push(e.phase) });
      expect(first.reusedInversion).to.equal(false);
      expect(phases).to.include('inversion');
      const direct = await p2p.direction('cat', 'dog');
      const facade = await p2p.edit(EXAMPLE, direct, { ...request.options });
      expect(first.image.equals(await encodePng(facade.image))).to.equal(true);
      expect(first.reconstruction.equals(await encodePng(facade.reconstruction!))).to.equal(true);
      tf.dispose([direct.tensor, facade.latents]);
      facade.inversion.dispose();
      const held = tf.memory().numTensors;
      const again: string[] = [];
      const second = await runner.run(image, request, { onProgress: (e) => again.push(e.phase) });
      expect(second.reusedInversion).to.equal(true);
      expect(again).to.not.include('inversion');
      expect(second.image.equals(first.image)).to.equal(true);
      expect(tf.memory().numTensors).to.equal(held);
    });

    it('stops on its signal within a step and keeps nothing of the stopped edit', async function () {
      const held = tf.memory().numTensors;
      const controller = new AbortController();
      const other = { ...request, options: { ...request.options, seed: 5 } };
      let steps = 0;
      const run = runner.run(fs.readFileSync(EXAMPLE), other, {
        signal: controller.signal,
        onProgress: (e) => {
          if (e.phase === 'inversion' && e.step >= 1) {
            steps++;
            controller.abort(new Error('cancelled'));
          }
        },
      });
      let error: Error | undefined;
      await run.catch((err: Error) => (error = err));
      expect(error?.message).to.equal('cancelled');
      expect(steps).to.equal(1);
      expect(tf.memory().numTensors).to.equal(held);
    });

    it('frees everything on dispose', function () {
      runner.dispose();
      expect(tf.memory().numTensors).to.equal(start);
    });
  });
});
