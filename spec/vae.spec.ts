/**
 * AutoencoderKL against diffusers (fixtures from tools/reference/vae_outputs.py) on two VAEs: the tiny-sd VAE
 * (4 blocks, factor 8, mid-block attention, quant convs) and a variant (2 blocks, 2 layers per block, 3 latent
 * channels, no attention, no quant convs). Posterior mean and log-variance, sampling (given noise, and a seed
 * drawing torch.randn's noise), decoding, the encode+decode round trip; memory; weight namings (deprecated
 * attention names, Stable Diffusion's original names with 1x1-conv attention); bad checkpoints and configs.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../lib/io/safetensors.js';
import { TorchGenerator } from '../lib/random/torch-generator.js';
import { AutoencoderKL } from '../lib/models/vae/autoencoder-kl.js';
import { parseVaeConfig } from '../lib/models/vae/config.js';
import { DiagonalGaussianDistribution } from '../lib/models/vae/distribution.js';
import { torchRandn } from '../lib/models/vae/torch-randn.js';
import { conv2dForInference, downsampleForInference, groupNormForInference, resnetForInference, siluForInference, upsampleForInference } from '../lib/models/vae/inference.js';
import { detectVaeCheckpointFormat, diffusersToLdmName } from '../lib/models/vae/weights.js';
import { silu } from '../lib/models/layers/activations.js';
import { Conv2d } from '../lib/models/layers/conv2d.js';
import { GroupNorm } from '../lib/models/layers/group-norm.js';
import type { Module } from '../lib/models/layers/module.js';
import { ResnetBlock2D } from '../lib/models/layers/resnet-block-2d.js';
import { Downsample2D, Upsample2D } from '../lib/models/layers/sampling.js';
import { FIXTURES, TINY_SD, expectClose, forEachBackend, readReference, relativeError } from './helpers/tensors.js';

const TINY_VAE = path.join(TINY_SD, 'vae');
const REF_DIR = path.join(FIXTURES, 'reference', 'vae');
/** The reference models: fixture name -> VAE folder. */
const MODELS: Record<string, string> = {
  tiny_sd: TINY_VAE,
  variant: path.join(REF_DIR, 'variant'),
};
const TOL = 1e-4;

/** Largest errors seen, per backend and model (printed at the end, for the record). */
const measured: string[] = [];

/** NCHW (diffusers) -> NHWC (ours). */
const nhwc = (t: tf.Tensor): tf.Tensor4D => tf.transpose(t, [0, 2, 3, 1]) as tf.Tensor4D;

/** Reads every tensor of a safetensors file as float32 values to write back. */
function readAll(file: string): Map<string, TensorToWrite> {
  const f = SafetensorsFile.open(file);
  try {
    const out = new Map<string, TensorToWrite>();
    for (const name of f.names()) {
      const t = f.read(name);
      out.set(name, { dtype: 'F32', shape: t.shape, data: t.data });
    }
    return out;
  } finally {
    f.close();
  }
}

/** A copy of the tiny VAE folder whose weights are `tensors`. */
function vaeFolder(root: string, name: string, tensors: Map<string, TensorToWrite>, config?: string): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), config ?? fs.readFileSync(path.join(TINY_VAE, 'config.json'), 'utf8'));
  writeSafetensors(path.join(dir, 'diffusion_pytorch_model.safetensors'), tensors);
  return dir;
}

forEachBackend('AutoencoderKL matches diffusers', (backend) => {
  for (const [name, dir] of Object.entries(MODELS)) {
    describe(name, function () {
      let vae: AutoencoderKL;
      let ref: Record<string, tf.Tensor>;
      let image: tf.Tensor4D;

      before(function () {
        vae = AutoencoderKL.fromFolder(dir);
        ref = readReference(path.join(REF_DIR, `${name}.safetensors`));
        image = nhwc(ref.image!);
      });
      after(function () {
        vae?.disposeAll();
        if (ref !== undefined) for (const t of Object.values(ref)) t.dispose();
        image?.dispose();
      });

      it(`posterior mean and log-variance within ${TOL} (relative)`, function () {
        const posterior = vae.encode(image);
        const expectedMean = nhwc(ref.mean!);
        const expectedLogvar = nhwc(ref.logvar!);
        const e1 = expectClose(posterior.mean, expectedMean, TOL, 'mean');
        const e2 = expectClose(posterior.logvar, expectedLogvar, TOL, 'logvar');
        measured.push(`${backend} ${name}: mean ${e1.toExponential(2)}, logvar ${e2.toExponential(2)}`);
        posterior.dispose();
        tf.dispose([expectedMean, expectedLogvar]);
      });

      it('samples the posterior with given noise, and with a seed as torch.Generator().manual_seed draws it', function () {
        const posterior = vae.encode(image);
        const noise = nhwc(ref.noise!);
        const expected = nhwc(ref.sample!);
        const withNoise = posterior.sample(noise);
        const seed = Number(ref.seed!.dataSync()[0]);
        const withSeed = posterior.sample(seed);
        const e1 = expectClose(withNoise, expected, TOL, 'sample (noise)');
        const e2 = expectClose(withSeed, expected, TOL, 'sample (seed)');
        measured.push(`${backend} ${name}: sample with noise ${e1.toExponential(2)}, with seed ${e2.toExponential(2)}`);
        const scaled = vae.encodeLatents(image, { mode: 'sample', generator: new TorchGenerator(seed) });
        const expectedScaled = tf.mul(expected, vae.scalingFactor);
        expectClose(scaled, expectedScaled, TOL, 'encodeLatents sample (generator)');
        tf.dispose([noise, expected, withNoise, withSeed, scaled, expectedScaled]);
        posterior.dispose();
      });

      it(`decodes latents within ${TOL} (relative), unclamped`, function () {
        const latents = nhwc(ref.latents!);
        const expected = nhwc(ref.decoded!);
        const decoded = vae.decode(latents);
        const e = expectClose(decoded, expected, TOL, 'decoded');
        const scaled = tf.mul(latents, vae.scalingFactor) as tf.Tensor4D;
        const viaScaled = vae.decodeLatents(scaled);
        expectClose(viaScaled, expected, TOL, 'decodeLatents(scalingFactor * z)');
        measured.push(`${backend} ${name}: decoded ${e.toExponential(2)}`);
        tf.dispose([latents, expected, decoded, scaled, viaScaled]);
      });

      it("round trip image -> posterior mean -> image matches diffusers' vae(image)", function () {
        const expected = nhwc(ref.roundtrip!);
        const latents = vae.encodeLatents(image); // scalingFactor * mean
        const back = vae.decodeLatents(latents);
        const e = expectClose(back, expected, TOL, 'round trip');
        const forward = vae.forward(image);
        expectClose(forward, expected, TOL, 'forward');
        const expectedLatents = tf.tidy(() => tf.mul(nhwc(ref.mean!), vae.scalingFactor));
        expectClose(latents, expectedLatents, TOL, 'encodeLatents (mean)');
        measured.push(`${backend} ${name}: round trip ${e.toExponential(2)}`);
        tf.dispose([expected, latents, back, forward, expectedLatents]);
      });

      it('frees every intermediate tensor (encode and decode, twice)', function () {
        const run = (): void => {
          const posterior = vae.encode(image);
          const one = vae.encodeLatents(image, { mode: 'sample', generator: 3 });
          const decoded = vae.decode(posterior.mean);
          tf.dispose([one, decoded]);
          posterior.dispose();
        };
        run();
        const before = tf.memory().numTensors;
        run();
        run();
        expect(tf.memory().numTensors).to.equal(before);
      });
    });
  }
});

/** Random weights (seeded), norm scales around 1. */
function randomize(m: Module, seed: number): void {
  for (const [name, w] of m.namedWeights()) {
    tf.tidy(() => {
      const r = tf.randomNormal(w.variable.shape as number[], 0, 0.3, 'float32', seed++);
      w.variable.write(/norm/.test(name) && name.endsWith('weight') ? tf.add(r, 1) : r);
    });
  }
}

forEachBackend('lean inference forwards equal the shared blocks', () => {
  const x = (): tf.Tensor4D => tf.randomNormal([2, 6, 10, 8], 0.5, 2, 'float32', 11) as tf.Tensor4D;
  const same = (lean: tf.Tensor, shared: tf.Tensor, what: string): void => {
    expectClose(lean, shared, 1e-5, what);
    tf.dispose([lean, shared]);
  };

  it('ResnetBlock2D with and without a shortcut, and with an output scale', function () {
    const input = x();
    const before = tf.memory().numTensors;
    for (const [i, config] of [
      { inChannels: 8, outChannels: 16, groups: 4, eps: 1e-6 },
      { inChannels: 8, groups: 2, eps: 1e-6, outputScaleFactor: 2 },
    ].entries()) {
      const block = new ResnetBlock2D(config);
      randomize(block, 100 * i);
      same(resnetForInference(block, input), block.forward(input), `resnet ${i}`);
      block.disposeAll();
    }
    expect(tf.memory().numTensors).to.equal(before);
    input.dispose();
  });

  it('GroupNorm, SiLU, convolutions (asymmetric padding, stride 2, 1x1), down- and upsampling', function () {
    const input = x();
    const norm = new GroupNorm(4, 8, 1e-6);
    const conv = new Conv2d(8, 5, 3, 2, [0, 1, 2, 1]);
    const conv1 = new Conv2d(8, 3, 1);
    const down = new Downsample2D(8, 8, 0);
    const up = new Upsample2D(8, 4);
    const modules: Module[] = [norm, conv, conv1, down, up];
    modules.forEach((m, i) => randomize(m, 10 * i));
    const before = tf.memory().numTensors;
    same(groupNormForInference(norm, input), norm.forward(input), 'group norm');
    same(siluForInference(input), silu(input), 'silu');
    same(conv2dForInference(conv, input), conv.forward(input), 'conv 3x3 stride 2');
    same(conv2dForInference(conv1, input), conv1.forward(input), 'conv 1x1');
    same(downsampleForInference(down, input), down.forward(input), 'downsample');
    same(upsampleForInference(up, input), up.forward(input), 'upsample');
    expect(tf.memory().numTensors).to.equal(before);
    modules.forEach((m) => m.disposeAll());
    input.dispose();
  });
});

after(function () {
  if (measured.length > 0) console.log(`      VAE parity (max relative error):\n        ${measured.join('\n        ')}`);
});

describe('torchRandn: torch.randn of a seeded CPU generator', function () {
  it('draws the values of both of PyTorch paths (< 16 elements, and blocks of 16 with a redrawn tail)', function () {
    const ref = readReference(path.join(REF_DIR, 'randn.safetensors'));
    try {
      const names = Object.keys(ref);
      expect(names.length).to.be.at.least(6);
      for (const name of names) {
        const m = name.match(/seed(\d+)$/);
        expect(m, name).to.not.equal(null);
        const expected = ref[name]!;
        const values = torchRandn(new TorchGenerator(Number(m![1])), expected.size);
        const actual = tf.tensor(values, expected.shape);
        const err = relativeError(actual, expected);
        actual.dispose();
        expect(err, `${name}: relative error ${err}`).to.be.below(1e-6);
      }
    } finally {
      for (const t of Object.values(ref)) t.dispose();
    }
  });

  it('continues the stream of one generator across draws', function () {
    const gen = new TorchGenerator(5);
    torchRandn(gen, 16);
    const second = torchRandn(gen, 16);
    const again = new TorchGenerator(5);
    for (let i = 0; i < 16; i++) again.random32();
    expect(Array.from(torchRandn(again, 16))).to.deep.equal(Array.from(second));
  });
});

describe('DiagonalGaussianDistribution', function () {
  it('clamps the log-variance to [-30, 20] and splits mean first', function () {
    const params = tf.tensor4d([1, -2, -50, 25], [1, 1, 1, 4]) as tf.Tensor4D;
    const d = new DiagonalGaussianDistribution(params);
    expect(Array.from(d.mean.dataSync())).to.deep.equal([1, -2]);
    expect(Array.from(d.logvar.dataSync())).to.deep.equal([-30, 20]);
    params.dispose();
    d.dispose();
  });

  it('rejects noise of the wrong shape', function () {
    const params = tf.zeros([1, 2, 2, 8]) as tf.Tensor4D;
    const d = new DiagonalGaussianDistribution(params);
    const noise = tf.zeros([1, 4, 2, 2]) as tf.Tensor4D;
    expect(() => d.sample(noise)).to.throw(/noise has shape \[1, 4, 2, 2\], expected the mean's \[1, 2, 2, 4\]/);
    tf.dispose([params, noise]);
    d.dispose();
  });
});

describe('AutoencoderKL config and checkpoints', function () {
  let tmp: string;
  let original: Map<string, TensorToWrite>;
  let reference: AutoencoderKL;
  let latents: tf.Tensor4D;
  let expected: tf.Tensor4D;
  const config = (): Record<string, unknown> => JSON.parse(fs.readFileSync(path.join(TINY_VAE, 'config.json'), 'utf8')) as Record<string, unknown>;

  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vae-'));
    original = readAll(path.join(TINY_VAE, 'diffusion_pytorch_model.safetensors'));
    reference = AutoencoderKL.fromFolder(TINY_VAE);
    latents = tf.randomNormal([1, 2, 3, 4], 0, 1, 'float32', 7) as tf.Tensor4D;
    expected = reference.decode(latents);
  });
  after(function () {
    reference?.disposeAll();
    tf.dispose([latents, expected]);
    if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** Loads a folder and checks that it decodes exactly as the original tiny VAE. */
  const expectSameModel = (dir: string): void => {
    const vae = AutoencoderKL.fromFolder(dir);
    const out = vae.decode(latents);
    expect(relativeError(out, expected)).to.equal(0);
    out.dispose();
    vae.disposeAll();
  };

  it('reads a Stable Diffusion pipeline folder (its vae/) as well as a vae/ folder', function () {
    const vae = AutoencoderKL.fromFolder(TINY_SD);
    expect(vae.downscale).to.equal(8);
    expect(vae.scalingFactor).to.equal(0.18215);
    expect(vae.latentChannels).to.equal(4);
    vae.disposeAll();
  });

  it('names a missing tensor, and a left-over one', function () {
    const missing = new Map(original);
    missing.delete('decoder.up_blocks.1.resnets.0.conv2.weight');
    const dir = vaeFolder(tmp, 'missing', missing);
    expect(() => AutoencoderKL.fromFolder(dir)).to.throw(/missing tensor 'decoder\.up_blocks\.1\.resnets\.0\.conv2\.weight'/);
    const extra = new Map(original);
    extra.set('decoder.extra.weight', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
    expect(() => AutoencoderKL.fromFolder(vaeFolder(tmp, 'extra', extra))).to.throw(/unexpected tensor 'decoder\.extra\.weight'/);
  });

  it('names a tensor of the wrong shape (a config that does not fit the weights)', function () {
    const c = config();
    c.latent_channels = 8;
    const dir = vaeFolder(tmp, 'shape', original, JSON.stringify(c));
    // Caught by the config check against the header shapes, before the model is built (issue 18).
    expect(() => AutoencoderKL.fromFolder(dir)).to.throw(/config\.json: latent_channels is 8, but 'decoder\.conv_in\.weight' in .* has 4 there/);
  });

  it('rejects a bad or unsupported config, naming the field', function () {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ block_out_channels: [8, 'x'] }, /'block_out_channels' must be a non-empty list of integers/],
      [{ block_out_channels: [] }, /'block_out_channels' must be a non-empty list/],
      [{ norm_num_groups: 3 }, /'norm_num_groups' \(3\) does not divide the block channels/],
      [{ down_block_types: ['DownEncoderBlock2D'] }, /'down_block_types' must list one block per entry of block_out_channels \(4\)/],
      [{ up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D', 'AttnUpDecoderBlock2D', 'UpDecoderBlock2D'] }, /'up_block_types' has "AttnUpDecoderBlock2D"; only "UpDecoderBlock2D"/],
      [{ act_fn: 'gelu' }, /'act_fn' is "gelu"; only "silu"/],
      [{ layers_per_block: 0 }, /'layers_per_block' must be an integer >= 1, got 0/],
      [{ latent_channels: 2.5 }, /'latent_channels' must be an integer >= 1/],
      [{ scaling_factor: -1 }, /'scaling_factor' must be a positive number/],
      [{ mid_block_add_attention: 'yes' }, /'mid_block_add_attention' must be true or false/],
      [{ use_quant_conv: null, use_post_quant_conv: 1 }, /'use_post_quant_conv' must be true or false/],
      [{ shift_factor: 0.1159 }, /'shift_factor' \(0\.1159\) is not supported/],
      [{ latents_mean: [0, 0, 0, 0] }, /'latents_mean' .* is not supported/],
      [{ _class_name: 'AutoencoderTiny' }, /'_class_name' is "AutoencoderTiny"; only "AutoencoderKL"/],
    ];
    for (const [patch, message] of cases) {
      expect(() => parseVaeConfig({ ...config(), ...patch }, 'vae/config.json'), JSON.stringify(patch)).to.throw(message);
    }
    expect(() => parseVaeConfig({ ...config(), norm_num_groups: 3 }, 'vae/config.json')).to.throw(/^vae\/config\.json: /);
    const dir = vaeFolder(tmp, 'bad-config', original, JSON.stringify({ ...config(), act_fn: 'mish' }));
    expect(() => AutoencoderKL.fromFolder(dir)).to.throw(/config\.json: 'act_fn' is "mish"/);
  });

  it("takes diffusers' defaults for missing fields", function () {
    const c = parseVaeConfig({}, 'empty');
    expect(c).to.deep.include({ inChannels: 3, outChannels: 3, layersPerBlock: 1, latentChannels: 4, normNumGroups: 32, scalingFactor: 0.18215 });
    expect(c.blockOutChannels).to.deep.equal([64]);
    expect(c).to.deep.include({ midBlockAddAttention: true, useQuantConv: true, usePostQuantConv: true });
  });

  it('reads the deprecated attention names (query, key, value, proj_attn) as diffusers does', function () {
    const renamed = new Map<string, TensorToWrite>();
    let count = 0;
    for (const [name, t] of original) {
      const old = name.replace(/\.attentions\.0\.(to_q|to_k|to_v|to_out\.0)\./, (_, p: string) => `.attentions.0.${{ to_q: 'query', to_k: 'key', to_v: 'value', 'to_out.0': 'proj_attn' }[p]}.`);
      if (old !== name) count++;
      renamed.set(old, t);
    }
    expect(count).to.equal(16); // weight + bias of 4 projections in the encoder's and decoder's mid blocks
    expect(renamed.has('encoder.mid_block.attentions.0.proj_attn.weight')).to.equal(true);
    expectSameModel(vaeFolder(tmp, 'deprecated', renamed));

    // Both names for one tensor is ambiguous: the left-over one is an error.
    const both = new Map(original);
    both.set('decoder.mid_block.attentions.0.query.weight', original.get('decoder.mid_block.attentions.0.to_q.weight')!);
    expect(() => AutoencoderKL.fromFolder(vaeFolder(tmp, 'both', both))).to.throw(/unexpected tensor 'decoder\.mid_block\.attentions\.0\.query\.weight'/);
  });

  it("reads Stable Diffusion's original (LDM) names with 1x1-conv attention, inside a full checkpoint", function () {
    const ldm = new Map<string, TensorToWrite>();
    for (const [name, t] of original) {
      const to = diffusersToLdmName(name, 4);
      const conv = /mid\.attn_1\.(q|k|v|proj_out)\.weight$/.test(to);
      ldm.set(`first_stage_model.${to}`, conv ? { ...t, shape: [...t.shape, 1, 1] } : t);
    }
    // Names as Stable Diffusion v1 checkpoints spell them.
    for (const n of [
      'first_stage_model.encoder.down.0.block.0.conv1.weight',
      'first_stage_model.encoder.down.0.downsample.conv.weight',
      'first_stage_model.encoder.down.1.block.0.nin_shortcut.weight',
      'first_stage_model.encoder.mid.block_1.norm1.weight',
      'first_stage_model.encoder.mid.attn_1.norm.weight',
      'first_stage_model.encoder.norm_out.weight',
      'first_stage_model.decoder.mid.block_2.conv2.bias',
      'first_stage_model.decoder.up.0.block.0.nin_shortcut.weight',
      'first_stage_model.decoder.up.3.upsample.conv.weight',
      'first_stage_model.decoder.up.0.block.1.norm2.bias',
      'first_stage_model.quant_conv.weight',
      'first_stage_model.post_quant_conv.bias',
    ]) {
      expect(ldm.has(n), n).to.equal(true);
    }
    expect(ldm.get('first_stage_model.decoder.mid.attn_1.proj_out.weight')!.shape).to.deep.equal([16, 16, 1, 1]);
    expect(ldm.has('first_stage_model.decoder.up.0.upsample.conv.weight')).to.equal(false);
    // The rest of a full checkpoint is not the VAE's.
    ldm.set('model.diffusion_model.conv_in.weight', { dtype: 'F32', shape: [2], data: new Float32Array(2) });
    ldm.set('cond_stage_model.transformer.text_model.final_layer_norm.weight', { dtype: 'F32', shape: [2], data: new Float32Array(2) });
    const names = [...ldm.keys()];
    expect(detectVaeCheckpointFormat(names)).to.deep.equal({ kind: 'ldm', prefix: 'first_stage_model.' });
    expectSameModel(vaeFolder(tmp, 'ldm', ldm));

    // Without the prefix (a standalone VAE file such as vae-ft-mse-840000-ema-pruned), a missing tensor is named
    // by its LDM name and ours.
    const bare = new Map<string, TensorToWrite>();
    for (const [n, t] of ldm) if (n.startsWith('first_stage_model.')) bare.set(n.slice('first_stage_model.'.length), t);
    expectSameModel(vaeFolder(tmp, 'ldm-bare', bare));
    bare.delete('encoder.mid.attn_1.k.bias');
    expect(() => AutoencoderKL.fromFolder(vaeFolder(tmp, 'ldm-missing', bare))).to.throw(
      /missing tensor 'encoder\.mid\.attn_1\.k\.bias' \(for encoder\.mid_block\.attentions\.0\.to_k\.bias\)/,
    );
  });

  it('rejects images and latents of the wrong layout or size, and sampling without noise', function () {
    const nchw = tf.zeros([1, 3, 16, 16]) as tf.Tensor4D;
    const odd = tf.zeros([1, 12, 16, 3]) as tf.Tensor4D;
    const z = tf.zeros([1, 2, 2, 3]) as tf.Tensor4D;
    const img = tf.zeros([1, 16, 16, 3]) as tf.Tensor4D;
    expect(() => reference.encode(nchw)).to.throw(/image must have 3 channels \(NHWC, channels last\), got shape \[1, 3, 16, 16\]/);
    expect(() => reference.encode(odd)).to.throw(/image height and width must be multiples of 8/);
    expect(() => reference.decode(z)).to.throw(/latents must have 4 channels/);
    expect(() => reference.encodeLatents(img, { mode: 'sample' })).to.throw(/mode 'sample' needs noise/);
    tf.dispose([nchw, odd, z, img]);
  });
});
