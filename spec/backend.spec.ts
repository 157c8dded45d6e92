import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import {
  BACKEND_ENV,
  BACKENDS,
  NATIVE_DIR_ENV,
  initBackend,
  installedBackends,
  kernelChoices,
  parseBackendChoice,
  resolveBackendChoice,
} from '../lib/backend.js';
import { cli } from './helpers/cli.js';

const nativeInstalled = installedBackends().includes('tensorflow');

describe('backend choice', function () {
  const saved = process.env[BACKEND_ENV];
  afterEach(function () {
    if (saved === undefined) delete process.env[BACKEND_ENV];
    else process.env[BACKEND_ENV] = saved;
  });

  it('picks the best backend present: tensorflow when set up, else wasm after trying tfjs-node-gpu and tfjs-node', async function () {
    delete process.env[BACKEND_ENV];
    const info = await initBackend();
    expect(tf.getBackend()).to.equal(info.name);
    if (nativeInstalled) {
      expect(info.name).to.equal('tensorflow');
      expect(info.version).to.match(/^tfjs-node(-gpu)? 4\.22\.0, TensorFlow \d+\.\d+\.\d+$/);
      expect(info.threads).to.be.at.least(1);
    } else {
      expect(info.name).to.equal('wasm');
      expect(info.skipped.map((s) => s.name)).to.deep.equal(['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']);
    }
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
    const wasm = await initBackend();
    expect(wasm.name).to.equal('wasm');
    expect(wasm.threads).to.equal(1);
    expect(wasm.version).to.equal('tfjs-backend-wasm 4.22.0');
  });
  it('rejects unknown names, saying where they came from', function () {
    process.env[BACKEND_ENV] = 'gpu';
    expect(() => resolveBackendChoice()).to.throw(/PIX2PIX_ZERO_BACKEND: unknown backend 'gpu'; expected one of auto, tensorflow, wasm, cpu/);
    expect(() => parseBackendChoice('webgl', '--backend')).to.throw(/--backend: unknown backend 'webgl'/);
  });
  it('reads the kernel variants of the active backend from the one table', async function () {
    for (const spec of BACKENDS) {
      if (!installedBackends().includes(spec.name)) continue;
      await initBackend({ backend: spec.name });
      expect(kernelChoices()).to.deep.equal(spec.kernels);
    }
    expect(BACKENDS.find((b) => b.name === 'wasm')!.kernels.plainProducts).to.equal(true);
  });
  it('computes the same matmul on every installed backend', async function () {
    const a = [1, 2, 3, 4, 5, 6];
    const results: number[][] = [];
    for (const backend of installedBackends()) {
      await initBackend({ backend });
      results.push(Array.from(tf.tidy(() => tf.matMul(tf.tensor2d(a, [2, 3]), tf.tensor2d(a, [3, 2]))).dataSync()));
    }
    expect(results[0]).to.deep.equal([22, 28, 49, 64]);
    for (const r of results) expect(r).to.deep.equal(results[0]);
  });
});

describe('the tensorflow backend from the command line', function () {
  it('--backend tensorflow without it installed fails in one line that names npm run setup:tensorflow', function () {
    // An empty folder in place of the offline build (tfjs-node is not in node_modules here).
    const r = cli(['info', '--backend', 'tensorflow'], { [NATIVE_DIR_ENV]: os.tmpdir() + '/no-native-backend-here' });
    expect(r.code).to.equal(1);
    expect(r.err.trim().split('\n')).to.have.length(1);
    expect(r.err).to.match(/backend 'tensorflow' is not available: run 'npm run setup:tensorflow' in .*, or install @tensorflow\/tfjs-node 4\.22\.0/);
  });
  it('PIX2PIX_ZERO_BACKEND=tensorflow fails the same way', function () {
    const r = cli(['info'], { [NATIVE_DIR_ENV]: os.tmpdir() + '/no-native-backend-here', [BACKEND_ENV]: 'tensorflow' });
    expect(r.code).to.equal(1);
    expect(r.err).to.match(/npm run setup:tensorflow/);
  });
  it('info shows the backend, its version and its threads, with nothing from TensorFlow on stderr', function () {
    if (!nativeInstalled) this.skip();
    const r = cli(['info', '--backend', 'tensorflow'], { TF_CPP_MIN_LOG_LEVEL: undefined, TF_ENABLE_ONEDNN_OPTS: undefined });
    expect(r.code, r.err).to.equal(0);
    expect(r.err).to.equal('');
    expect(r.out).to.match(/backend: tensorflow \(@tensorflow\/tfjs-node.*\), tfjs-node 4\.22\.0, TensorFlow \d+\.\d+\.\d+, \d+ threads?/);
    const json = JSON.parse(cli(['info', '--backend', 'tensorflow', '--json']).out) as { backend: { name: string; threads: number; version: string } };
    expect(json.backend.name).to.equal('tensorflow');
    expect(json.backend.threads).to.equal(os.availableParallelism());
    const one = JSON.parse(cli(['info', '--backend', 'tensorflow', '--json'], { TF_NUM_INTRAOP_THREADS: '1' }).out) as typeof json;
    expect(one.backend.threads).to.equal(1);
  });
});
