import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { BACKEND_ENV, initBackend, parseBackendChoice, resolveBackendChoice } from '../lib/backend.js';

describe('backend choice', function () {
  const saved = process.env[BACKEND_ENV];
  afterEach(function () {
    if (saved === undefined) delete process.env[BACKEND_ENV];
    else process.env[BACKEND_ENV] = saved;
  });

  it('picks the best backend present: wasm here (no tfjs-node), after trying tfjs-node-gpu and tfjs-node', async function () {
    delete process.env[BACKEND_ENV];
    const info = await initBackend();
    expect(info.name).to.equal('wasm');
    expect(tf.getBackend()).to.equal('wasm');
    expect(info.skipped.map((s) => s.name)).to.deep.equal(['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']);
  });
  it('honours the option, and the option wins over the environment variable', async function () {
    process.env[BACKEND_ENV] = 'wasm';
    expect((await initBackend({ backend: 'cpu' })).name).to.equal('cpu');
    expect(tf.getBackend()).to.equal('cpu');
  });
  it('honours PIX2PIX_ZERO_BACKEND', async function () {
    process.env[BACKEND_ENV] = 'cpu';
    expect(resolveBackendChoice()).to.equal('cpu');
    expect((await initBackend()).name).to.equal('cpu');
    process.env[BACKEND_ENV] = ' WASM ';
    expect((await initBackend()).name).to.equal('wasm');
  });
  it('rejects unknown names, saying where they came from', function () {
    process.env[BACKEND_ENV] = 'gpu';
    expect(() => resolveBackendChoice()).to.throw(/PIX2PIX_ZERO_BACKEND: unknown backend 'gpu'; expected one of auto, tensorflow, wasm, cpu/);
    expect(() => parseBackendChoice('webgl', '--backend')).to.throw(/--backend: unknown backend 'webgl'/);
  });
  it('fails clearly when tensorflow is forced but tfjs-node is not installed', async function () {
    let err: unknown;
    try {
      await initBackend({ backend: 'tensorflow' });
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).to.match(/backend 'tensorflow' is not available \(install @tensorflow\/tfjs-node or -gpu 4.22.0\)/);
  });
  it('computes the same matmul on wasm and cpu', async function () {
    const a = [1, 2, 3, 4, 5, 6];
    const results: number[][] = [];
    for (const backend of ['wasm', 'cpu'] as const) {
      await initBackend({ backend });
      results.push(Array.from(tf.tidy(() => tf.matMul(tf.tensor2d(a, [2, 3]), tf.tensor2d(a, [3, 2]))).dataSync()));
    }
    expect(results[0]).to.deep.equal([22, 28, 49, 64]);
    expect(results[1]).to.deep.equal(results[0]);
  });
});
