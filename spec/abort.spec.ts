/**
 * Kind 6 of issue 18 (edit), nothing left behind: an abort during the `encode` phase frees every tensor (it
 * leaked the encoded latents), and an abort during `decode` is honoured (it was ignored) and frees the latents.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import type { ProgressEvent } from '../lib/editing/services.js';
import { Direction, Pix2PixZero } from '../lib/pix2pix-zero.js';
import { ROOT, TINY_SD } from './helpers/tensors.js';

const EXAMPLE = path.join(ROOT, 'assets', 'examples', 'example.png');

describe('aborting an edit frees everything, in every phase (issue 18, kind 6)', function () {
  let p2p: Pix2PixZero;
  let direction: Direction;
  before(async function () {
    if (!fs.existsSync(TINY_SD)) this.skip();
    p2p = await Pix2PixZero.load({ model: TINY_SD, cacheDir: false });
    direction = new Direction(tf.randomNormal([1, 77, 32], 0, 0.1, 'float32', 3) as tf.Tensor3D, { source: 'a', target: 'b' });
  });
  after(function () {
    direction?.dispose();
    p2p?.dispose();
  });

  /** Runs an edit that aborts at the first event of `phase` (step `step`); returns the rejection. */
  async function abortAt(phase: string, step: number): Promise<{ error: Error | undefined; phases: string[] }> {
    const controller = new AbortController();
    const phases: string[] = [];
    const onProgress = (e: ProgressEvent): void => {
      phases.push(`${e.phase}:${e.step}`);
      if (e.phase === phase && e.step === step) controller.abort(new Error(`stopped in ${phase}`));
    };
    try {
      const r = await p2p.edit(EXAMPLE, direction, { caption: 'a cat', steps: 2, numRegSteps: 0, onProgress, signal: controller.signal });
      r.latents.dispose();
      r.inversion.dispose();
      return { error: undefined, phases };
    } catch (err) {
      return { error: err as Error, phases };
    }
  }

  for (const [phase, step] of [['encode', 0], ['encode', 1], ['inversion', 1], ['edit', 1], ['decode', 0]] as const) {
    it(`an abort in ${phase} (step ${step}) rejects with the reason and leaks no tensor`, async function () {
      const start = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) {
        const { error, phases } = await abortAt(phase, step);
        expect(error?.message, phases.join(' ')).to.equal(`stopped in ${phase}`);
        expect(phases.at(-1)).to.equal(`${phase}:${step}`);
      }
      expect(tf.memory().numTensors).to.equal(start);
    });
  }
});
