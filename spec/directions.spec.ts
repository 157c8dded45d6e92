import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { loadDirection, loadInversion, saveDirection, saveInversion } from '../lib/editing/artefacts.js';
import { SentenceDirectionDiscovery, embeddingCacheKey } from '../lib/editing/direction-discovery.js';
import { MAX_SENTENCES, builtinConcepts, builtinSentences, chatSentences, cleanSentence, parseSentences, readSentenceFile } from '../lib/editing/sentences.js';
import { FakeEmbedder } from './helpers/fake-embedder.js';
import { forEachBackend } from './helpers/tensors.js';

const mean = (xs: readonly string[]): number => xs.reduce((a, s) => a + s.length, 0) / xs.length;

describe('sentence sources', function () {
  it('ships banks of at least 100 distinct sentences for common concepts, each mentioning it', function () {
    const concepts = builtinConcepts();
    expect(concepts).to.include.members(['car', 'cat', 'dog', 'horse', 'tree', 'zebra']);
    for (const c of concepts) {
      const s = builtinSentences(c);
      expect(s.length, c).to.be.at.least(100);
      expect(new Set(s).size, `${c}: distinct`).to.equal(s.length);
      for (const line of s) expect(line, c).to.include(c);
    }
  });
  it('refuses an unknown concept, listing the known ones and what to do', function () {
    expect(() => builtinSentences('unicorn')).to.throw(/unknown concept 'unicorn': built-in sentence banks exist for [a-z, ]*\bcar, cat\b.*\bdog\b.*give sentences instead/);
    expect(() => builtinSentences('../package')).to.throw(/unknown concept/);
  });
  it('reads sentence files: one a line, comments and blanks skipped; empty files refused', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-sent-'));
    try {
      const f = path.join(dir, 's.txt');
      fs.writeFileSync(f, '# my sentences\na cat\r\n\n  a small cat  \n');
      expect(readSentenceFile(f)).to.deep.equal(['a cat', 'a small cat']);
      const empty = path.join(dir, 'empty.txt');
      fs.writeFileSync(empty, '\n# nothing\n');
      expect(() => readSentenceFile(empty)).to.throw(/sentence file .*empty.txt has no sentences/);
      expect(() => readSentenceFile(path.join(dir, 'missing.txt'))).to.throw(/cannot read sentence file .*ENOENT/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(parseSentences('a\n\nb')).to.deep.equal(['a', 'b']);
    expect(cleanSentence('12. A cat on 2 mats "here"')).to.equal('A cat on mats here');
  });
  it('applies one rule to sentence files: trimmed lines, blank and # lines skipped, a BOM ignored, at most MAX_SENTENCES', function () {
    expect(parseSentences('\ufeff# a comment\r\n\t a cat \t\r\n   # an indented comment\n\u00a0\na dog # not a comment\na cat\n  two  spaces  ')).to.deep.equal([
      'a cat',
      'a dog # not a comment',
      'a cat',
      'two  spaces',
    ]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-sent-'));
    try {
      const bom = path.join(dir, 'bom.txt');
      fs.writeFileSync(bom, '\ufeffa cat\n');
      expect(readSentenceFile(bom)).to.deep.equal(['a cat']);
      const most = path.join(dir, 'most.txt');
      fs.writeFileSync(most, 'a cat\n'.repeat(MAX_SENTENCES));
      expect(readSentenceFile(most)).to.have.length(MAX_SENTENCES);
      const tooMany = path.join(dir, 'too-many.txt');
      fs.writeFileSync(tooMany, 'a cat\n'.repeat(MAX_SENTENCES + 1));
      expect(() => readSentenceFile(tooMany)).to.throw(new RegExp(`sentence file .*too-many.txt has ${MAX_SENTENCES + 1} sentences, more than ${MAX_SENTENCES}`));
      expect(() => readSentenceFile(dir)).to.throw(/cannot read sentence file .*: it is a folder/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  it('asks an OpenAI-compatible endpoint for sentences (a local stand-in server)', async function () {
    let request: { model?: string; messages?: { content: string }[] } = {};
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        request = JSON.parse(body) as typeof request;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ choices: [{ message: { content: '1. A red kite in the sky\n2. A boy flying a kite\nno match here\n3. A kite on 3 strings' } }] }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const s = await chatSentences('kite', { baseUrl: `http://127.0.0.1:${port}/v1/`, model: 'm', count: 3 });
      expect(s).to.deep.equal(['A red kite in the sky', 'A boy flying a kite', 'A kite on strings']);
      expect(request.model).to.equal('m');
      expect(request.messages?.at(-1)?.content).to.equal('Provide 3 captions for images containing kite.');
    } finally {
      server.close();
    }
  });
  it('reports an unreachable endpoint clearly', async function () {
    let err: unknown;
    try {
      await chatSentences('kite', { baseUrl: 'http://127.0.0.1:9', model: 'm', timeoutMs: 5000 });
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).to.match(/chat endpoint http:\/\/127.0.0.1:9\/chat\/completions could not be reached/);
  });
});

forEachBackend('direction discovery', function () {
  let dir: string;
  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-dir-'));
  });
  afterEach(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is mean(E(target)) - mean(E(source)), cached on disk per model and sentences', async function () {
    const start = tf.memory().numTensors;
    const embedder = new FakeEmbedder();
    const dd = new SentenceDirectionDiscovery(embedder, { modelId: 'abc', cacheDir: dir });
    const events: number[] = [];
    const d = await dd.direction('cat', 'dog', { onProgress: (e) => events.push(e.step) });
    expect(d.shape).to.deep.equal([1, 77, 4]);
    expect(d.dataSync()[0]).to.be.closeTo(mean(builtinSentences('dog')) - mean(builtinSentences('cat')), 1e-4);
    expect(events).to.deep.equal([1, 2]);
    expect(embedder.calls).to.equal(2);
    d.dispose();
    const again = await new SentenceDirectionDiscovery(embedder, { modelId: 'abc', cacheDir: dir }).direction('cat', 'dog');
    expect(embedder.calls, 'second run reads the cache').to.equal(2);
    again.dispose();
    const other = await new SentenceDirectionDiscovery(embedder, { modelId: 'xyz', cacheDir: dir }).direction('cat', 'dog');
    expect(embedder.calls, 'another model does not share the cache').to.equal(4);
    other.dispose();
    expect(tf.memory().numTensors).to.equal(start);
  });
  it('takes sentences for any concept, and recomputes a damaged cache entry', async function () {
    const embedder = new FakeEmbedder();
    const dd = new SentenceDirectionDiscovery(embedder, { modelId: 'm', cacheDir: dir });
    const src = { name: 'kite', sentences: ['a kite', 'two kites'] };
    const key = embeddingCacheKey('m', src.sentences);
    const e1 = await dd.conceptEmbedding(src);
    e1.dispose();
    fs.writeFileSync(path.join(dir, 'embeddings', `${key}.safetensors`), 'garbage');
    const e2 = await dd.conceptEmbedding(src);
    expect(e2.dataSync()[0]).to.be.closeTo(mean(src.sentences), 1e-6);
    expect(embedder.calls).to.equal(2);
    e2.dispose();
    let err: unknown;
    try {
      await dd.direction({ name: 'nothing', sentences: [] }, 'dog');
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).to.match(/concept 'nothing' has no sentences/);
  });
  it('works without a cache', async function () {
    const embedder = new FakeEmbedder();
    const dd = new SentenceDirectionDiscovery(embedder, { modelId: 'm', cacheDir: false });
    (await dd.direction('cat', 'dog')).dispose();
    (await dd.direction('cat', 'dog')).dispose();
    expect(embedder.calls).to.equal(4);
  });
});

forEachBackend('artefacts', function () {
  let dir: string;
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-art-'));
  });
  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('saves and loads a direction, checking it fits the model', function () {
    const d = tf.randomNormal([1, 77, 8]) as tf.Tensor3D;
    const file = path.join(dir, 'd.safetensors');
    saveDirection(file, d, { source: 'cat', target: 'dog', model: 'abc' });
    const back = loadDirection(file, { tokens: 77, width: 8 });
    expect(Array.from(back.direction.dataSync())).to.deep.equal(Array.from(d.dataSync()));
    expect(back.meta).to.deep.equal({ source: 'cat', target: 'dog', model: 'abc' });
    expect(() => loadDirection(file, { tokens: 77, width: 768 })).to.throw(/direction is \[1, 77, 8\] but the model's text embeddings are \[1, 77, 768\]/);
    tf.dispose([d, back.direction]);
  });
  it('refuses a file without a direction', function () {
    const file = path.join(dir, 'inv.safetensors');
    const latent = tf.zeros([1, 8, 8, 4]) as tf.Tensor4D;
    saveInversion(file, latent, { caption: 'a cat', steps: 10, imageSize: [64, 64], model: 'u', settings: {} });
    expect(() => loadDirection(file)).to.throw(/holds no 'direction' tensor \(it has latent\)/);
    latent.dispose();
  });
  it('saves an inversion NCHW (as diffusers) and loads it back NHWC with its settings', function () {
    const latent = tf.randomNormal([1, 6, 4, 4]) as tf.Tensor4D;
    const file = path.join(dir, 'inv2.safetensors');
    saveInversion(file, latent, { caption: 'a dog', steps: 50, imageSize: [48, 32], model: 'u1', settings: { lambdaAc: 20 } });
    const back = loadInversion(file);
    expect(back.meta.caption).to.equal('a dog');
    expect(back.meta.settings).to.deep.equal({ lambdaAc: 20 });
    expect(back.latent.shape).to.deep.equal([1, 6, 4, 4]);
    expect(Array.from(back.latent.dataSync())).to.deep.equal(Array.from(latent.dataSync()));
    tf.dispose([latent, back.latent]);
    const d = tf.zeros([1, 77, 8]);
    const dfile = path.join(dir, 'd2.safetensors');
    saveDirection(dfile, d, { source: 'a', target: 'b' });
    expect(() => loadInversion(dfile)).to.throw(/is not a pix2pix-zero inversion/);
    d.dispose();
  });
});
