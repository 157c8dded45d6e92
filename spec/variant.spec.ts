/**
 * Weights variants (diffusers' `variant=`): a tiny pipeline saved by diffusers with `variant="fp16"` only
 * (spec/fixtures/models/tiny-sd-fp16, the UNet sharded with a variant index) is read with `--variant fp16` and,
 * saying so, without it; what it gives equals what diffusers reads from it, and the float32 folder's embeddings
 * within float16 rounding.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { findWeightFiles, presentVariants, readStableDiffusionFolder, variantWeightNames } from '../lib/io/model-folder.js';
import { SafetensorsFile } from '../lib/io/safetensors.js';
import { cli } from './helpers/cli.js';
import { FIXTURES, TINY_SD, readReference, relativeError } from './helpers/tensors.js';

const FP16 = path.join(FIXTURES, 'models', 'tiny-sd-fp16');
const PROMPTS = (JSON.parse(fs.readFileSync(path.join(FIXTURES, 'reference', 'variant', 'prompts.json'), 'utf8')) as { prompts: string[] }).prompts;

function embeddings(file: string): tf.Tensor {
  const f = SafetensorsFile.open(file);
  try {
    const d = f.read('embeddings');
    return tf.tensor(d.data, d.shape);
  } finally {
    f.close();
  }
}

describe('weights variants', function () {
  let dir: string;
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-variant-'));
  });
  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('names variant files as diffusers and transformers save them', function () {
    expect(variantWeightNames('model', 'fp16')).to.deep.equal(['model.fp16.safetensors', 'model.safetensors.index.fp16.json', 'model.safetensors.fp16.index.json']);
    expect(variantWeightNames('diffusion_pytorch_model')).to.deep.equal(['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.safetensors.index.json']);
    // The names diffusers wrote into the fixture.
    expect(fs.readdirSync(path.join(FP16, 'unet')).sort()).to.deep.equal([
      'config.json',
      'diffusion_pytorch_model.fp16-00001-of-00002.safetensors',
      'diffusion_pytorch_model.fp16-00002-of-00002.safetensors',
      'diffusion_pytorch_model.safetensors.index.fp16.json',
    ]);
    expect(presentVariants(fs.readdirSync(path.join(FP16, 'unet')))).to.deep.equal(['fp16']);
    expect(presentVariants(['model.safetensors', 'model.ema.safetensors', 'diffusion_pytorch_model.safetensors.bf16.index.json'])).to.deep.equal(['bf16', 'ema']);
  });

  it('finds the variant asked for, the only one there, and refuses what is missing or ambiguous', function () {
    const unet = path.join(FP16, 'unet');
    expect(findWeightFiles(unet, 'UNet', 'fp16')).to.deep.equal({ path: path.join(unet, 'diffusion_pytorch_model.safetensors.index.fp16.json'), variant: 'fp16' });
    const auto = findWeightFiles(path.join(FP16, 'text_encoder'), 'text encoder');
    expect(auto.path).to.equal(path.join(FP16, 'text_encoder', 'model.fp16.safetensors'));
    expect(auto.note).to.match(/has only 'fp16' variant weights: model.fp16.safetensors is read/);
    expect(findWeightFiles(path.join(TINY_SD, 'unet'), 'UNet').variant).to.equal(undefined);
    expect(() => findWeightFiles(path.join(TINY_SD, 'unet'), 'UNet', 'fp16')).to.throw(/UNet weights of variant 'fp16' not found in .*tiny-sd.unet: expected diffusion_pytorch_model.fp16.safetensors .* but plain weights/);
    expect(() => findWeightFiles(unet, 'UNet', '../x')).to.throw(/'..\/x' is not a variant name/);
    const two = path.join(dir, 'two');
    fs.mkdirSync(two);
    fs.writeFileSync(path.join(two, 'model.fp16.safetensors'), 'x');
    fs.writeFileSync(path.join(two, 'model.ema.safetensors'), 'x');
    expect(() => findWeightFiles(two, 'text encoder')).to.throw(/no plain weights but the variants ema, fp16: choose one/);
    expect(findWeightFiles(two, 'text encoder', 'ema').path).to.equal(path.join(two, 'model.ema.safetensors'));
    // The older sharded form, <stem>.safetensors.<variant>.index.json.
    const legacy = path.join(dir, 'legacy');
    fs.mkdirSync(legacy);
    fs.writeFileSync(path.join(legacy, 'diffusion_pytorch_model.safetensors.fp16.index.json'), '{}');
    expect(findWeightFiles(legacy, 'UNet', 'fp16').path).to.equal(path.join(legacy, 'diffusion_pytorch_model.safetensors.fp16.index.json'));
  });

  it('reads a pipeline folder of fp16 files only, saying so once; with --variant, silently; refuses a variant nobody has', function () {
    const notices: string[] = [];
    const auto = readStableDiffusionFolder(FP16, { onNotice: (m) => notices.push(m) });
    expect([auto.unet.variant, auto.vae.variant, auto.textEncoder.variant]).to.deep.equal(['fp16', 'fp16', 'fp16']);
    expect(notices).to.have.length(1);
    expect(notices[0]).to.match(/has no plain weights, only a variant: reading it \(unet: fp16, vae: fp16, text_encoder: fp16/);
    const asked: string[] = [];
    readStableDiffusionFolder(FP16, { variant: 'fp16', onNotice: (m) => asked.push(m) });
    expect(asked).to.deep.equal([]);
    expect(() => readStableDiffusionFolder(TINY_SD, { variant: 'fp16' })).to.throw(/has no 'fp16' variant weights in unet, vae, text_encoder/);
    // A component without the variant reads its plain weights, as diffusers' pipelines do, and that is said.
    const mixed = path.join(dir, 'mixed');
    fs.cpSync(FP16, mixed, { recursive: true });
    fs.rmSync(path.join(mixed, 'vae'), { recursive: true });
    fs.cpSync(path.join(TINY_SD, 'vae'), path.join(mixed, 'vae'), { recursive: true });
    const said: string[] = [];
    const m = readStableDiffusionFolder(mixed, { variant: 'fp16', onNotice: (x) => said.push(x) });
    expect([m.unet.variant, m.vae.variant]).to.deep.equal(['fp16', undefined]);
    expect(said[0]).to.match(/lacks the 'fp16' variant for some components: reading their plain weights \(unet: fp16, vae: plain/);
  });

  it('holds the float32 weights rounded to float16, every tensor of every component', function () {
    const f32 = readStableDiffusionFolder(TINY_SD);
    const f16 = readStableDiffusionFolder(FP16, { variant: 'fp16' });
    let tensors = 0;
    for (const part of ['unet', 'vae', 'textEncoder'] as const) {
      const a = f32[part].openWeights();
      const b = f16[part].openWeights();
      try {
        expect(b.names().sort(), part).to.deep.equal(a.names().sort());
        for (const name of a.names()) {
          expect(b.info(name).dtype, `${part} ${name}`).to.equal('F16');
          const x = a.read(name).data;
          const y = b.read(name).data;
          for (let i = 0; i < x.length; i++) {
            // float16 keeps 11 significant bits: a relative step of 2^-11, or 2^-24 near zero (subnormals).
            if (Math.abs(x[i]! - y[i]!) > Math.max(Math.abs(x[i]!) * 2 ** -11, 2 ** -24)) throw new Error(`${part} ${name}[${i}]: ${x[i]} vs ${y[i]}`);
          }
          tensors++;
        }
      } finally {
        a.close();
        b.close();
      }
    }
    expect(tensors).to.be.greaterThan(100);
  });

  it('embed --variant fp16 gives what diffusers reads, and the float32 folder within float16 rounding', function () {
    const args = PROMPTS.flatMap((p) => ['--text', p]);
    const out16 = path.join(dir, 'e16.safetensors');
    const out32 = path.join(dir, 'e32.safetensors');
    const r16 = cli(['embed', '--model', FP16, '--variant', 'fp16', ...args, '--out', out16]);
    expect(r16.code, r16.err).to.equal(0);
    expect(r16.err).to.not.match(/variant/);
    const r32 = cli(['embed', '--model', TINY_SD, ...args, '--out', out32]);
    expect(r32.code, r32.err).to.equal(0);
    const auto = cli(['embed', '--model', FP16, ...args, '--out', path.join(dir, 'auto.safetensors')]);
    expect(auto.code, auto.err).to.equal(0);
    expect(auto.err).to.match(/has only 'fp16' variant weights: model.fp16.safetensors is read \(as --variant fp16\)/);
    const missing = cli(['embed', '--model', TINY_SD, '--variant', 'fp16', ...args, '--out', path.join(dir, 'never.safetensors')]);
    expect(missing.code).to.equal(1);
    expect(missing.err).to.match(/weights of variant 'fp16' not found/);
    const e16 = embeddings(out16);
    const e32 = embeddings(out32);
    const ref = readReference(path.join(FIXTURES, 'reference', 'variant', 'embeddings.safetensors'));
    try {
      const vsDiffusers = relativeError(e16, ref.embeddings!);
      const vsFloat32 = relativeError(e16, e32);
      console.log(`      fp16 variant embeddings: ${vsDiffusers.toExponential(2)} from diffusers' read of the variant, ${vsFloat32.toExponential(2)} from the float32 folder`);
      expect(vsDiffusers).to.be.below(1e-5);
      // Float16 weights move the embeddings by about the weights' own rounding (2^-11 = 4.9e-4), summed over layers.
      expect(vsFloat32).to.be.below(2e-3);
      expect(vsFloat32).to.be.above(0);
    } finally {
      tf.dispose([e16, e32, ...Object.values(ref)]);
    }
  });

  it('edits with --variant fp16 through the facade', function () {
    const out = path.join(dir, 'd.safetensors');
    const r = cli(['direction', '--model', FP16, '--variant', 'fp16', '--task', 'cat2dog', '--out', out, '--no-cache']);
    expect(r.code, r.err).to.equal(0);
    const auto = cli(['direction', '--model', FP16, '--task', 'cat2dog', '--out', out, '--no-cache']);
    expect(auto.code, auto.err).to.equal(0);
    expect(auto.err).to.match(/has no plain weights, only a variant/);
  });
});
