import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { writeSafetensors, SafetensorsFile } from '../lib/io/safetensors.js';
import { withKernelChoices } from '../lib/backend.js';
import { conv2dFastGrad, runsAsProduct } from '../lib/models/layers/conv2d.js';
import { AttentionRecorder, UNet2DConditionModel, parseUNetConfig } from '../lib/models/unet/index.js';
import { CrossAttentionLoss } from '../lib/editing/cross-attention-loss.js';
import { FIXTURES, TINY_SD, expectClose, forEachBackend, readReference } from './helpers/tensors.js';

const MODELS = {
  sd1: path.join(TINY_SD, 'unet'),
  sd2: path.join(FIXTURES, 'models', 'unet-sd2'),
};
const TIMESTEPS = [1, 500, 981];
const nhwc = (t: tf.Tensor): tf.Tensor4D => tf.transpose(t, [0, 2, 3, 1]) as tf.Tensor4D;

forEachBackend('UNet2DConditionModel matches diffusers', function () {
  for (const [name, dir] of Object.entries(MODELS)) {
    describe(name, function () {
      let unet: UNet2DConditionModel;
      let ref: Record<string, tf.Tensor>;
      before(function () {
        unet = UNet2DConditionModel.fromFolder(dir);
        ref = readReference(path.join(FIXTURES, 'reference', 'unet', `${name}.safetensors`));
      });
      after(function () {
        unet.disposeAll();
        tf.dispose(Object.values(ref));
      });

      it('output at t = 1, 500, 981 within 1e-4', function () {
        for (const t of TIMESTEPS) {
          tf.tidy(() => {
            const out = unet.predict(nhwc(ref.sample!), t, ref.context as tf.Tensor3D);
            expectClose(out, nhwc(ref[`t${t}.out`]!), 1e-4, `${name} output t=${t}`);
          });
        }
      });

      it('records every attn2 map, equal to diffusers attention probabilities', function () {
        const rec = new AttentionRecorder();
        tf.tidy(() => {
          unet.predict(nhwc(ref.sample!), 500, ref.context as tf.Tensor3D, { hook: rec });
        });
        const maps = rec.take();
        const expected = Object.keys(ref).filter((k) => k.startsWith('t500.maps.')).map((k) => k.slice('t500.maps.'.length));
        expect([...maps.keys()].sort()).to.deep.equal(expected.sort());
        for (const [layer, m] of maps) expectClose(m, ref[`t500.maps.${layer}`]!, 1e-4, layer);
        tf.dispose([...maps.values()]);
      });

      it('gradient of the pix2pix-zero loss w.r.t. the latent matches torch autograd within 1e-3', function () {
        const reference = new Map<string, tf.Tensor3D>();
        const rec = new AttentionRecorder();
        tf.tidy(() => {
          unet.predict(nhwc(ref.sample!), 500, ref.context_ref as tf.Tensor3D, { hook: rec });
        });
        for (const [k, v] of rec.take()) {
          expectClose(v, ref[`t500.ref.${k}`]!, 1e-4, `reference map ${k}`);
          reference.set(k, v);
        }
        const start = tf.memory().numTensors;
        // Round 0 on the plain tape (what 'auto' does at this size), round 1 with every layer recomputed in the
        // backward pass (gradient checkpointing, what 'auto' does at full size).
        for (const checkpoint of [false, true]) {
          tf.tidy(() => {
            const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => {
              const hook = new CrossAttentionLoss(reference);
              unet.predict(x as tf.Tensor4D, 500, ref.context as tf.Tensor3D, { hook, checkpoint });
              return hook.loss();
            })(nhwc(ref.sample!));
            const how = checkpoint ? ', recomputed' : '';
            expectClose(value, tf.reshape(ref['t500.loss']!, []), 1e-4, `loss${how}`);
            expectClose(grad, nhwc(ref['t500.grad']!), 1e-3, `gradient${how}`);
          });
          expect(tf.memory().numTensors, 'tensors after a gradient step').to.equal(start);
        }
        tf.dispose([...reference.values()]);
      });

      it('every convolution as a product (the large-model path): output and checkpointed loss gradient as diffusers', function () {
        const reference = new Map<string, tf.Tensor3D>();
        const rec = new AttentionRecorder();
        tf.tidy(() => {
          unet.predict(nhwc(ref.sample!), 500, ref.context_ref as tf.Tensor3D, { hook: rec });
        });
        for (const [k, v] of rec.take()) reference.set(k, v);
        withKernelChoices({ convAsProductMaxPositions: Infinity, convAsProductMinMacs: 0 }, () =>
          tf.tidy(() => {
            const sample = nhwc(ref.sample!);
            expect(runsAsProduct(sample.shape, unet.convIn.kernel.read() as tf.Tensor4D, 1, unet.convIn.pad), 'conv_in as a product').to.equal(true);
            expectClose(unet.predict(nhwc(ref.sample!), 500, ref.context as tf.Tensor3D), nhwc(ref['t500.out']!), 1e-4, `${name} output as products`);
            const grad = tf.grad((x: tf.Tensor) => {
              const hook = new CrossAttentionLoss(reference);
              unet.predict(x as tf.Tensor4D, 500, ref.context as tf.Tensor3D, { hook, checkpoint: true });
              return hook.loss();
            })(nhwc(ref.sample!));
            expectClose(grad, nhwc(ref['t500.grad']!), 1e-3, `${name} gradient as products`);
          }),
        );
        tf.dispose([...reference.values()]);
      });

      it('odd latent sizes (5x3) at a fractional timestep: output, loss and gradient as diffusers (upsample_size)', function () {
        const t = ref['odd.t']!.dataSync()[0]!;
        const context = tf.slice(ref.context!, [0, 0, 0], [1, -1, -1]) as tf.Tensor3D;
        const contextRef = tf.slice(ref.context_ref!, [0, 0, 0], [1, -1, -1]) as tf.Tensor3D;
        const x = nhwc(ref['odd.sample']!);
        tf.tidy(() => expectClose(unet.predict(x, t, context), nhwc(ref['odd.out']!), 1e-4, `${name} odd-size output`));
        const rec = new AttentionRecorder();
        tf.tidy(() => {
          unet.predict(x, t, contextRef, { hook: rec });
        });
        const reference = rec.take();
        tf.tidy(() => {
          const { value, grad } = tf.valueAndGrad((v: tf.Tensor) => {
            const hook = new CrossAttentionLoss(reference);
            unet.predict(v as tf.Tensor4D, t, context, { hook }).dispose();
            return hook.loss();
          })(x);
          expectClose(value, tf.reshape(ref['odd.loss']!, []), 1e-4, `${name} odd-size loss`);
          expectClose(grad, nhwc(ref['odd.grad']!), 1e-3, `${name} odd-size gradient`);
        });
        tf.dispose([x, context, contextRef, ...reference.values()]);
      });

      it('keeps no tensors after a forward', function () {
        const x = nhwc(ref.sample!);
        const start = tf.memory().numTensors;
        for (let i = 0; i < 2; i++) unet.predict(x, 981, ref.context as tf.Tensor3D).dispose();
        expect(tf.memory().numTensors).to.equal(start);
        x.dispose();
      });
    });
  }
});

forEachBackend('fast convolution gradient', function () {
  it('equals tfjs built-in gradient for strided, padded and asymmetric convolutions', function () {
    const cases: [number, number, number, [number, number, number, number]][] = [
      [8, 3, 1, [1, 1, 1, 1]],
      [9, 3, 2, [1, 1, 1, 1]],
      [8, 3, 2, [0, 1, 0, 1]],
      [7, 1, 1, [0, 0, 0, 0]],
    ];
    for (const [size, k, stride, pad] of cases) {
      tf.tidy(() => {
        const x = tf.randomNormal([2, size, size, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
        const w = tf.randomNormal([k, k, 3, 5], 0, 1, 'float32', 2) as tf.Tensor4D;
        const padded = (v: tf.Tensor4D) => tf.pad(v, [[0, 0], [pad[0], pad[1]], [pad[2], pad[3]], [0, 0]]) as tf.Tensor4D;
        const mine = tf.grad((v: tf.Tensor) => tf.sum(tf.square(conv2dFastGrad(v as tf.Tensor4D, w, stride, pad))))(x);
        const builtin = tf.grad((v: tf.Tensor) => tf.sum(tf.square(tf.conv2d(padded(v as tf.Tensor4D), w, stride, 'valid'))))(x);
        expectClose(mine, builtin, 1e-5, `conv ${size}x${size} k${k} s${stride} pad ${pad}`);
      });
    }
  });
});

describe('UNet config and weights', function () {
  it('refuses unsupported configs, naming the field', function () {
    const base = JSON.parse(fs.readFileSync(path.join(MODELS.sd1, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(() => parseUNetConfig({ ...base, only_cross_attention: true })).to.throw(/'only_cross_attention' = true is not supported/);
    expect(() => parseUNetConfig({ ...base, down_block_types: ['AttnDownBlock2D', 'DownBlock2D'] })).to.throw(/'down_block_types' must be/);
    expect(() => parseUNetConfig({ ...base, norm_num_groups: 7 })).to.throw(/not divisible by norm_num_groups 7/);
    expect(() => parseUNetConfig({ ...base, class_embed_type: 'timestep' })).to.throw(/class_embed_type/);
    // Fields that would change the numbers if ignored.
    expect(() => parseUNetConfig({ ...base, attention_type: 'gated' })).to.throw(/'attention_type' = "gated" is not supported/);
    expect(() => parseUNetConfig({ ...base, mid_block_scale_factor: 1.5 })).to.throw(/'mid_block_scale_factor' = 1.5/);
    expect(() => parseUNetConfig({ ...base, timestep_post_act: 'silu' })).to.throw(/'timestep_post_act'/);
    expect(() => parseUNetConfig({ ...base, time_embedding_act_fn: 'mish' })).to.throw(/'time_embedding_act_fn'/);
    expect(() => parseUNetConfig({ ...base, norm_num_groups: null })).to.throw(/'norm_num_groups' = null/);
    expect(() => parseUNetConfig({ ...base, layers_per_block: [1, 2] })).to.throw(/'layers_per_block' must be a positive integer/);
    // Defaults written out explicitly, and a time embedding width other than 4x the first block's channels.
    expect(parseUNetConfig({ ...base, attention_type: 'default', mid_block_scale_factor: 1, timestep_post_act: null }).timeEmbeddingDim).to.equal(64);
    expect(parseUNetConfig({ ...base, time_embedding_dim: 48 }).timeEmbeddingDim).to.equal(48);
  });
  it('refuses a checkpoint with a missing or mis-shaped tensor, naming it', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-unet-'));
    try {
      fs.copyFileSync(path.join(MODELS.sd1, 'config.json'), path.join(dir, 'config.json'));
      const src = SafetensorsFile.open(path.join(MODELS.sd1, 'diffusion_pytorch_model.safetensors'));
      const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
      for (const n of src.names()) {
        const t = src.read(n);
        tensors[n] = { dtype: 'F32', shape: t.shape, data: t.data as Float32Array };
      }
      src.close();
      delete tensors['mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight'];
      tensors['conv_in.bias'] = { dtype: 'F32', shape: [3], data: new Float32Array(3) };
      writeSafetensors(path.join(dir, 'diffusion_pytorch_model.safetensors'), tensors);
      let err: unknown;
      try {
        UNet2DConditionModel.fromFolder(dir);
      } catch (e) {
        err = e;
      }
      const msg = (err as Error).message;
      expect(msg).to.match(/missing tensor 'mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight'/);
      expect(msg).to.match(/'conv_in.bias' has shape \[3\], expected \[16\]/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
