/**
 * The text embedding service (ClipTextEmbedder): prompt embeddings equal transformers' last_hidden_state, the
 * mean of a sentence bank equals the mean of its embeddings whatever the batch size, no tensor leaks, progress,
 * abort, loading and releasing the encoder, and the container binding.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { Container } from 'inversify';
import { initBackend } from '../lib/backend.js';
import { createContainer, resolveService } from '../lib/container.js';
import { type TextEmbedder, type ProgressEvent, TYPES } from '../lib/editing/services.js';
import { ClipTextEmbedder, TEXT_EMBEDDER_OPTIONS, TEXT_ENCODER_SOURCE } from '../lib/editing/text-embedder.js';
import { ClipTextEncoder } from '../lib/models/clip-text/text-encoder.js';
import { FIXTURES, expectClose, forEachBackend, readReference } from './helpers/tensors.js';

const MODEL = path.join(FIXTURES, 'models', 'clip-gelu-sd2');
const PROMPTS = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'reference', 'clip', 'prompts.json'), 'utf8')) as string[];
/** A bank of 40 sentences (prompts and variations). */
const BANK = Array.from({ length: 40 }, (_, i) => `${PROMPTS[i % PROMPTS.length]} ${i % 3 === 0 ? 'at night' : ''}`.trim());

forEachBackend('text embedder', (backend) => {
  // The pure-JS cpu backend is ~20x slower: a smaller bank there.
  const bank = backend === 'cpu' ? BANK.slice(0, 12) : BANK;
  const batchSizes = backend === 'cpu' ? [1, 5, 16] : [1, 7, 16, 64];
  let embedder: ClipTextEmbedder;
  before(function () {
    embedder = new ClipTextEmbedder(MODEL);
  });
  after(async function () {
    await embedder.release();
  });

  it('embeds prompts as transformers (last_hidden_state, batched)', async function () {
    const ref = readReference(path.join('reference', 'clip', 'gelu_sd2.safetensors'));
    const out = await embedder.embed(PROMPTS, { batchSize: 5 });
    expect(out.shape).to.deep.equal([PROMPTS.length, 77, 24]);
    expectClose(out, ref.last_hidden_state!, 1e-4, 'embed');
    const skipped = await embedder.embed(PROMPTS.slice(0, 6), { clipSkip: 1 });
    expectClose(skipped, ref.clip_skip_1!, 1e-4, 'embed clipSkip 1');
    tf.dispose([out, skipped, ...Object.values(ref)]);
  });

  it('mean embedding = mean of the individual embeddings, independent of the batch size, no leaks', async function () {
    const all = await embedder.embed(bank);
    const expected = tf.mean(all, 0, true);
    const before = tf.memory().numTensors;
    const means: tf.Tensor3D[] = [];
    for (const batchSize of batchSizes) means.push(await embedder.meanEmbedding(bank, { batchSize }));
    expect(tf.memory().numTensors).to.equal(before + means.length);
    expect(means[0]!.shape).to.deep.equal([1, 77, 24]);
    expectClose(means[0]!, expected, 1e-6, 'mean vs mean of embeddings');
    const first = means[0]!.dataSync();
    for (const m of means.slice(1)) {
      const d = m.dataSync();
      let maxDiff = 0;
      for (let i = 0; i < d.length; i++) maxDiff = Math.max(maxDiff, Math.abs(d[i]! - first[i]!));
      // wasm and cpu compute each row of a product alone; TensorFlow's kernels block their sums by the batch's
      // shape, so another batch size rounds differently (measured: 2.4e-7 on embeddings of magnitude ~3).
      expect(maxDiff, 'difference between batch sizes').to.be.at.most(backend === 'tensorflow' ? 1e-6 : 1e-7);
    }
    tf.dispose([all, expected, ...means]);
    // Two more runs leave nothing behind.
    const n0 = tf.memory().numTensors;
    (await embedder.meanEmbedding(bank)).dispose();
    (await embedder.embed(bank.slice(0, 10), { batchSize: 6 })).dispose();
    expect(tf.memory().numTensors).to.equal(n0);
  });
});

describe('text embedder: service behaviour', function () {
  before(async function () {
    await initBackend({ backend: 'wasm' });
  });

  it('reports progress per batch and stops on abort, freeing its tensors', async function () {
    const embedder = new ClipTextEmbedder(MODEL, { batchSize: 8 });
    try {
      const events: ProgressEvent[] = [];
      (await embedder.meanEmbedding(BANK, { onProgress: (e) => events.push(e) })).dispose();
      expect(events.map((e) => e.step)).to.deep.equal([8, 16, 24, 32, 40]);
      expect(events.every((e) => e.phase === 'embed' && e.total === 40)).to.equal(true);

      const before = tf.memory().numTensors;
      for (const call of ['embed', 'meanEmbedding'] as const) {
        const controller = new AbortController();
        const seen: number[] = [];
        const run = embedder[call](BANK, {
          signal: controller.signal,
          onProgress: (e) => {
            seen.push(e.step);
            if (e.step === 16) controller.abort(new Error('stop here'));
          },
        });
        let error: unknown;
        await run.then((t) => t.dispose(), (e: unknown) => (error = e));
        expect((error as Error)?.message, call).to.equal('stop here');
        expect(seen).to.deep.equal([8, 16]);
        expect(tf.memory().numTensors, `${call} leaked`).to.equal(before);
      }
      const aborted = new AbortController();
      aborted.abort();
      let error: unknown;
      await embedder.embed(['a'], { signal: aborted.signal }).catch((e: unknown) => (error = e));
      expect(error).to.be.instanceOf(Error);
    } finally {
      await embedder.release();
    }
  });

  it('rejects empty input and bad batch sizes', async function () {
    const embedder = new ClipTextEmbedder(MODEL);
    const failures: string[] = [];
    for (const call of [() => embedder.meanEmbedding([]), () => embedder.embed([]), () => embedder.embed(['a'], { batchSize: 0 })]) {
      await call().then(
        () => failures.push('resolved'),
        (e: Error) => failures.push(e.message),
      );
    }
    expect(failures).to.deep.equal(['no sentences to embed', 'no prompts to embed', 'batchSize must be a positive integer, got 0']);
    expect(() => new ClipTextEmbedder(MODEL, { batchSize: 1.5 })).to.throw(/batchSize/);
  });

  it('loads the encoder once, frees it on release (or after each call), and never frees a borrowed one', async function () {
    const base = tf.memory().numTensors;
    const embedder = new ClipTextEmbedder(MODEL);
    const [a, b] = await Promise.all([embedder.embed(['a cat']), embedder.embed(['a dog'])]);
    const loaded = tf.memory().numTensors;
    expect(await embedder.encoder()).to.equal(await embedder.encoder());
    tf.dispose([a, b]);
    await embedder.release();
    expect(tf.memory().numTensors).to.equal(base);

    const transient = new ClipTextEmbedder(() => ClipTextEncoder.fromFolder(MODEL), { releaseAfterUse: true });
    (await transient.embed(['a cat'])).dispose();
    expect(tf.memory().numTensors).to.equal(base);

    const shared = ClipTextEncoder.fromFolder(MODEL);
    const borrowing = new ClipTextEmbedder(shared);
    (await borrowing.embed(['a cat'])).dispose();
    await borrowing.release();
    expect(tf.memory().numTensors).to.equal(loaded - 2);
    shared.dispose();
    expect(tf.memory().numTensors).to.equal(base);

    const missing = new ClipTextEmbedder(path.join(FIXTURES, 'models', 'no-such-model'));
    let error: unknown;
    await missing.embed(['a']).catch((e: unknown) => (error = e));
    expect((error as Error).message).to.match(/model folder not found/);
  });

  it('is constructed by inversify from its injection tokens, and serves the container built from it', async function () {
    const container = new Container({ defaultScope: 'Singleton' });
    container.bind(TYPES.TextEmbedder).to(ClipTextEmbedder);
    container.bind(TEXT_ENCODER_SOURCE).toConstantValue(MODEL);
    container.bind(TEXT_EMBEDDER_OPTIONS).toConstantValue({ batchSize: 1 });
    const embedder = resolveService<TextEmbedder>(container, TYPES.TextEmbedder);
    expect(embedder).to.be.instanceOf(ClipTextEmbedder);
    expect(resolveService<TextEmbedder>(container, TYPES.TextEmbedder)).to.equal(embedder);
    const mean = await embedder.meanEmbedding(['a cat', 'a dog']);
    expect(mean.shape).to.deep.equal([1, 77, 24]);
    mean.dispose();
    expect(resolveService<TextEmbedder>(createContainer({ textEmbedder: embedder }), TYPES.TextEmbedder)).to.equal(embedder);
    await (embedder as ClipTextEmbedder).release();
  });
});
