/**
 * Graph execution on the tensorflow backend (lib/native-graph/): the protobuf writer against the wire format's
 * documented bytes; traced functions against their eager runs (values, gradients, leaks, the cases that must stay
 * eager); and the UNet's graph calls (forward, maps, the loss gradient) against diffusers' references, as
 * spec/unet.spec.ts checks the eager ones. The graph tests run where the tensorflow backend is installed.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { initBackend, parseKernelChoices, withKernelChoices } from '../lib/backend.js';
import { UNetDenoiser } from '../lib/editing/adapters.js';
import { ClipTextEncoder } from '../lib/models/clip-text/text-encoder.js';
import { UNet2DConditionModel } from '../lib/models/unet/index.js';
import { GraphFunctions } from '../lib/native-graph/graph-functions.js';
import { ProtoWriter } from '../lib/native-graph/protobuf.js';
import { FIXTURES, TEST_BACKENDS, TINY_SD, expectClose, readReference } from './helpers/tensors.js';

const hex = (w: ProtoWriter): string => Buffer.from(w.bytes()).toString('hex');

describe('ProtoWriter (protobuf wire format)', function () {
  it('writes the encoding guide examples: varints, negative int64, strings, floats, nested messages', function () {
    // https://protobuf.dev/programming-guides/encoding/: field 1 = 150 is 08 96 01; field 2 = "testing" 12 07 74 65 73 74 69 6e 67.
    expect(hex(new ProtoWriter().int(1, 150))).to.equal('089601');
    expect(hex(new ProtoWriter().string(2, 'testing'))).to.equal('120774657374696e67');
    expect(hex(new ProtoWriter().int(1, -1))).to.equal('08ffffffffffffffffff01');
    expect(hex(new ProtoWriter().int(1, -2))).to.equal('08feffffffffffffffff01');
    expect(hex(new ProtoWriter().int(15, 2 ** 40))).to.equal('788080808080' + '20');
    expect(hex(new ProtoWriter().bool(5, true).bool(5, false))).to.equal('28012800');
    expect(hex(new ProtoWriter().float(4, 1.5))).to.equal('250000c03f');
    expect(hex(new ProtoWriter().message(3, new ProtoWriter().int(1, 150)))).to.equal('1a03089601');
    const big = new ProtoWriter().raw(1, new Uint8Array(300).fill(7));
    expect(hex(big).slice(0, 6)).to.equal('0aac02');
    expect(big.bytes().length).to.equal(303);
  });

  it('refuses numbers it cannot encode exactly', function () {
    expect(() => new ProtoWriter().int(1, 1.5)).to.throw(/not an integer/);
    expect(() => new ProtoWriter().int(1, 2 ** 60)).to.throw(/not an integer/);
  });
});

describe('kernel choices from the environment', function () {
  it('parses a JSON object of known choices, naming what is wrong otherwise', function () {
    expect(parseKernelChoices('')).to.deep.equal({});
    expect(parseKernelChoices('{"graphMaxElements": 0, "plainProducts": true}')).to.deep.equal({ graphMaxElements: 0, plainProducts: true });
    expect(() => parseKernelChoices('{"graphMax": 0}')).to.throw(/unknown kernel choice 'graphMax'/);
    expect(() => parseKernelChoices('{"graphMaxElements": "0"}')).to.throw(/'graphMaxElements' must be a number/);
    expect(() => parseKernelChoices('[1]')).to.throw(/must be a JSON object/);
    expect(() => parseKernelChoices('{oops')).to.throw(/must be a JSON object/);
  });
});

describe('GraphFunctions [tensorflow]', function () {
  let w: tf.Tensor2D;
  before(async function () {
    if (!TEST_BACKENDS.includes('tensorflow')) this.skip();
    await initBackend({ backend: 'tensorflow' });
    w = tf.tensor2d([0.5, -1, 2, 0.25, 1.5, -0.75], [3, 2]);
  });
  after(function () {
    w?.dispose();
  });

  const f = (x: tf.Tensor): tf.Tensor[] => [tf.relu(tf.add(tf.matMul(x, w), 0.5)), tf.sum(tf.mul(x, 3))];

  it('runs a function as a graph (its first two calls recorded too), with the eager values, returning its meta, leaking nothing', function () {
    const graphs = new GraphFunctions(() => [w]);
    const start = tf.memory().numTensors;
    for (let i = 0; i < 6; i++) {
      tf.tidy(() => {
        const x = tf.tensor2d([i, 1, -2, 0.5, 3, -i], [2, 3]);
        const r = graphs.call('f', [x], () => ({ outputs: f(x), meta: ['a', 'b'] }));
        expect(r.meta).to.deep.equal(['a', 'b']);
        const want = f(x);
        r.outputs.forEach((o, k) => expectClose(o, want[k]!, 1e-6, `output ${k}, call ${i}`));
        expect(r.outputs[0]!.shape).to.deep.equal([2, 2]);
      });
    }
    expect(graphs.stats).to.include({ traced: 2, compiled: 1, graph: 6, eager: 0 });
    expect(tf.memory().numTensors).to.equal(start);
    graphs.dispose();
  });

  it('takes a gradient inside the graph; inside an outer tape it runs eagerly and differentiates', function () {
    const graphs = new GraphFunctions(() => [w]);
    const g = (x: tf.Tensor): tf.Tensor => tf.grad((v: tf.Tensor) => tf.sum(tf.square(tf.matMul(v, w))))(x);
    for (let i = 0; i < 4; i++) {
      tf.tidy(() => {
        const x = tf.tensor2d([1, 2, 3, i, -1, 0.5], [2, 3]);
        expectClose(graphs.call('g', [x], () => ({ outputs: [g(x)], meta: [] })).outputs[0]!, g(x), 1e-6, `gradient, call ${i}`);
      });
    }
    expect(graphs.stats.graph).to.equal(4);
    // d/dx sum(f(x)[1]) through the graph function: 3 everywhere (the tape sees eager ops).
    tf.tidy(() => {
      const x = tf.ones([2, 3]);
      for (let i = 0; i < 3; i++) graphs.call('f', [x], () => ({ outputs: f(x), meta: [] })).outputs.forEach((o) => o.dispose());
      const dx = tf.grad((v: tf.Tensor) => graphs.call('f', [v], () => ({ outputs: f(v), meta: [] })).outputs[1] as tf.Scalar)(x);
      expect(Array.from(dx.dataSync())).to.deep.equal([3, 3, 3, 3, 3, 3]);
    });
    expect(graphs.stats.eager).to.equal(1);
    graphs.dispose();
  });

  it('keeps eager what is not a graph: values read back, foreign tensors, constants that change', function () {
    const graphs = new GraphFunctions(() => [w]);
    const other = tf.scalar(2);
    let counter = 0;
    const cases: [string, (x: tf.Tensor) => tf.Tensor, RegExp][] = [
      ['reads', (x) => tf.mul(x, tf.max(x).dataSync()[0]!), /reads tensor values back/],
      ['foreign', (x) => tf.mul(x, other), /neither an input nor a parameter/],
      ['changing', (x) => tf.mul(x, ++counter), /changed at each of 3 calls after the first/],
    ];
    for (const [key, fn] of cases) {
      for (let i = 0; i < 5; i++) {
        tf.tidy(() => {
          const x = tf.tensor1d([1, -2, 3 + i]);
          const before = counter;
          const got = graphs.call(key, [x], () => ({ outputs: [fn(x)], meta: [] })).outputs[0]!;
          if (key === 'changing') expect(Array.from(got.dataSync())).to.deep.equal([1, -2, 3 + i].map((v) => v * (before + 1)));
          else expectClose(got, fn(x), 0, `${key}, call ${i}`);
        });
      }
      expect(graphs.stats.failures.get(key), key).to.match(cases.find((c) => c[0] === key)![2]);
    }
    // 'changing' ran its first three calls as their own graphs, then eagerly; 'foreign' its first (the scalar's
    // native handle was made during that call, so it was recorded as that call's constant: right for that call, and
    // the second call, which reads the made handle, is refused).
    expect(graphs.stats).to.include({ graph: 4, compiled: 4 });
    other.dispose();
    graphs.dispose();
  });

  it('frees the least recently used sessions beyond maxGraphs (and every session on dispose)', function () {
    const sessions = (): number => (tf.backend() as unknown as { binding: { getNumOfSavedModels(): number } }).binding.getNumOfSavedModels();
    const start = sessions();
    const graphs = new GraphFunctions(() => [w], 1);
    const x = tf.ones([2, 3]);
    const call = (key: string): void => tf.dispose(graphs.call(key, [x], () => ({ outputs: f(x), meta: [] })).outputs);
    for (let i = 0; i < 3; i++) call('a');
    expect(sessions()).to.equal(start + 1);
    for (let i = 0; i < 3; i++) call('b');
    expect(sessions(), 'a freed when b compiled').to.equal(start + 1);
    call('a');
    expect(graphs.stats).to.include({ traced: 5, compiled: 3, graph: 7 });
    graphs.dispose();
    expect(sessions()).to.equal(start);
    x.dispose();
  });

  it('feeds the parameters as they are now (a reassigned weight), and refuses disposed ones', function () {
    const v = tf.variable(tf.tensor1d([1, 2, 3]));
    const graphs = new GraphFunctions(() => [v]);
    const x = tf.tensor1d([1, 1, 1]);
    const call = (): number[] =>
      tf.tidy(() => Array.from(graphs.call('v', [x], () => ({ outputs: [tf.mul(x, v)], meta: [] })).outputs[0]!.dataSync()));
    for (let i = 0; i < 3; i++) expect(call()).to.deep.equal([1, 2, 3]);
    v.assign(tf.tensor1d([4, 5, 6]));
    expect(call()).to.deep.equal([4, 5, 6]);
    expect(graphs.stats.graph).to.equal(4);
    v.dispose();
    expect(call).to.throw(/parameter 0 is missing or disposed/);
    x.dispose();
    graphs.dispose();
  });
});

describe('UNet as graphs matches diffusers [tensorflow]', function () {
  for (const [name, dir] of Object.entries({ sd1: path.join(TINY_SD, 'unet'), sd2: path.join(FIXTURES, 'models', 'unet-sd2') })) {
    describe(name, function () {
      let denoiser: UNetDenoiser;
      let ref: Record<string, tf.Tensor>;
      const nhwc = (t: tf.Tensor): tf.Tensor4D => tf.transpose(t, [0, 2, 3, 1]) as tf.Tensor4D;
      before(async function () {
        if (!TEST_BACKENDS.includes('tensorflow')) this.skip();
        await initBackend({ backend: 'tensorflow' });
        denoiser = new UNetDenoiser(UNet2DConditionModel.fromFolder(dir));
        ref = readReference(path.join(FIXTURES, 'reference', 'unet', `${name}.safetensors`));
      });
      after(function () {
        denoiser?.dispose();
        denoiser?.unet.disposeAll();
        tf.dispose(Object.values(ref ?? {}));
      });

      it('forward, maps and the loss gradient within the eager tolerances, from graphs after two traces, leaking nothing', function () {
        const sample = nhwc(ref.sample!);
        const context = ref.context as tf.Tensor3D;
        const start = tf.memory().numTensors;
        for (let round = 0; round < 4; round++) {
          for (const t of [1, 500, 981]) {
            tf.tidy(() => expectClose(denoiser.predict(sample, t, context), nhwc(ref[`t${t}.out`]!), 1e-4, `${name} output t=${t}, round ${round}`));
          }
          const r = denoiser.predictWithMaps(sample, 500, context);
          tf.tidy(() => expectClose(r.output, nhwc(ref['t500.out']!), 1e-4, `output with maps, round ${round}`));
          const expected = Object.keys(ref).filter((k) => k.startsWith('t500.maps.')).map((k) => k.slice('t500.maps.'.length));
          expect([...r.maps.keys()].sort()).to.deep.equal(expected.sort());
          for (const [layer, m] of r.maps) expectClose(m, ref[`t500.maps.${layer}`]!, 1e-4, `${layer}, round ${round}`);
          tf.dispose([r.output, ...r.maps.values()]);
          const refMaps = denoiser.predictWithMaps(sample, 500, ref.context_ref as tf.Tensor3D);
          refMaps.output.dispose();
          tf.tidy(() => expectClose(denoiser.crossAttentionLossGradient(sample, 500, context, refMaps.maps), nhwc(ref['t500.grad']!), 1e-3, `gradient, round ${round}`));
          tf.dispose([...refMaps.maps.values()]);
        }
        const s = denoiser.graphStats;
        expect(s.failures.size, [...s.failures.values()].join('; ')).to.equal(0);
        expect(s.compiled).to.equal(3);
        expect(s.graph).to.be.at.least(10);
        expect(tf.memory().numTensors).to.equal(start);
        sample.dispose();
      });

      it('with graphMaxElements 0 runs eagerly, the same values', function () {
        const before = denoiser.graphStats.graph + denoiser.graphStats.traced;
        tf.tidy(() => {
          const sample = nhwc(ref.sample!);
          const graph = denoiser.predict(sample, 500, ref.context as tf.Tensor3D);
          const eager = withKernelChoices({ graphMaxElements: 0 }, () => denoiser.predict(sample, 500, ref.context as tf.Tensor3D));
          expectClose(graph, eager, 1e-5, 'graph against eager');
        });
        expect(denoiser.graphStats.graph + denoiser.graphStats.traced).to.equal(before + 1);
      });
    });
  }
});

describe('CLIP text encoder as graphs matches transformers [tensorflow]', function () {
  let encoder: ClipTextEncoder;
  let ref: Record<string, tf.Tensor>;
  before(async function () {
    if (!TEST_BACKENDS.includes('tensorflow')) this.skip();
    await initBackend({ backend: 'tensorflow' });
    encoder = ClipTextEncoder.fromFolder(TINY_SD);
    ref = readReference(path.join('reference', 'clip', 'tiny_sd.safetensors'));
  });
  after(function () {
    encoder?.dispose();
    tf.dispose(Object.values(ref ?? {}));
  });

  it('last_hidden_state, pooled output and clip skip within 1e-4, from graphs after two traces, leaking nothing', function () {
    const ids = tf.cast(ref.input_ids!, 'int32') as tf.Tensor2D;
    const start = tf.memory().numTensors;
    for (let round = 0; round < 4; round++) {
      tf.tidy(() => {
        const out = encoder.model.encode(ids);
        expectClose(out.lastHiddenState, ref.last_hidden_state!, 1e-4, `last_hidden_state, round ${round}`);
        expectClose(out.pooledOutput!, ref.pooler_output!, 1e-4, `pooler_output, round ${round}`);
        const skip = ref.clip_skip_1;
        if (skip !== undefined) {
          const few = tf.slice(ids, [0, 0], [skip.shape[0]!, -1]) as tf.Tensor2D;
          expectClose(encoder.model.encode(few, { clipSkip: 1, pooled: false }).lastHiddenState, skip, 1e-4, `clip skip 1, round ${round}`);
        }
      });
    }
    expect(tf.memory().numTensors).to.equal(start);
    const stats = encoder.model.graphStats!;
    expect(stats.failures.size, [...stats.failures.values()].join('; ')).to.equal(0);
    expect(stats).to.include({ compiled: 2, graph: 8 });
    ids.dispose();
    const graph = tf.tidy(() => encoder.model.encode(tf.cast(ref.input_ids!, 'int32') as tf.Tensor2D).lastHiddenState);
    const eager = withKernelChoices({ textEncoderGraphs: false }, () => tf.tidy(() => encoder.model.encode(tf.cast(ref.input_ids!, 'int32') as tf.Tensor2D).lastHiddenState));
    expectClose(graph, eager, 1e-5, 'graph against eager');
    tf.dispose([graph, eager]);
  });
});
