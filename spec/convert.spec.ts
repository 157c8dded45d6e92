import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { convertModelFolder } from '../lib/cli/convert.js';
import { main } from '../lib/cli/main.js';
import type { CliIO } from '../lib/cli/command.js';
import { inspectPath } from '../lib/cli/inspect.js';
import { BlipCaptioner } from '../lib/editing/captioner.js';
import { decodeElements, floatToHalfBits } from '../lib/io/dtypes.js';
import { readImage } from '../lib/io/image.js';
import { findWeights, openWeights, readBlipFolder, readComponentFolder, readStableDiffusionFolder } from '../lib/io/model-folder.js';
import { writeSafetensors } from '../lib/io/safetensors.js';
import { float16BitsInRange } from '../lib/io/tfjs-weights/float16.js';
import { readTfjsModelJson } from '../lib/io/tfjs-weights/manifest.js';
import { TfjsWeights } from '../lib/io/tfjs-weights/reader.js';
import type { WeightSource } from '../lib/io/weights.js';
import { Pix2PixZero } from '../lib/pix2pix-zero.js';
import { cli } from './helpers/cli.js';
import { FIXTURES, ROOT, TINY_SD, relativeError } from './helpers/tensors.js';

const TINY_BLIP = path.join(FIXTURES, 'models', 'tiny-blip');
const EXAMPLE = path.join(ROOT, 'assets', 'examples', 'example.png');

/** Runs the CLI in this process (fast), capturing its output. */
async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIO = { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`), errRaw: (t) => (err += t), isTTY: false };
  const code = await main(args, io);
  return { code, out, err };
}

/** float32 values rounded to float16 and back (the rounding tested in safetensors.spec.ts). */
function f16Round(values: Float32Array): Float32Array {
  const bits = Uint16Array.from(values, (v) => floatToHalfBits(v));
  return decodeElements(new Uint8Array(bits.buffer), 'F16', values.length, 'expected') as Float32Array;
}

/** Every tensor of `converted` against `original`: names, shapes, and values (exact, or float16-rounded). */
function compareSources(original: WeightSource, converted: WeightSource, half: boolean): { tensors: number; maxRel: number } {
  expect(converted.names()).to.deep.equal(original.names());
  let maxRel = 0;
  for (const name of original.names()) {
    const a = original.read(name);
    const b = converted.read(name);
    expect(b.shape, name).to.deep.equal(a.shape);
    expect(b.dtype, name).to.equal(a.dtype);
    const want = half && a.data instanceof Float32Array ? f16Round(a.data) : a.data;
    expect(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength)), `${name} values`).to.equal(true);
    for (let i = 0; i < a.data.length; i++) {
      const x = a.data[i]!;
      if (Math.abs(x) > 2 ** -14) maxRel = Math.max(maxRel, Math.abs(b.data[i]! - x) / Math.abs(x));
    }
  }
  return { tensors: original.names().length, maxRel };
}

function withSources<T>(a: string, b: string, body: (x: WeightSource, y: WeightSource) => T): T {
  const x = openWeights(a);
  try {
    const y = openWeights(b);
    try {
      return body(x, y);
    } finally {
      y.close();
    }
  } finally {
    x.close();
  }
}

describe('convert: TensorFlow.js weights folders', function () {
  let dir: string;
  const out = (name: string): string => path.join(dir, name);
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-convert-'));
    convertModelFolder(TINY_SD, out('sd32'));
    convertModelFolder(TINY_SD, out('sd16'), { dtype: 'float16', shardBytes: 100_000 });
    convertModelFolder(TINY_BLIP, out('blip32'));
    convertModelFolder(TINY_BLIP, out('blip16'), { dtype: 'float16' });
  });
  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('the converted folders', function () {
    it('hold model.json + shards for each component and copies of every other file', function () {
      for (const c of ['unet', 'vae', 'text_encoder']) {
        const files = fs.readdirSync(path.join(out('sd32'), c));
        expect(files, c).to.deep.equal(['group1-shard1of1.bin', 'model.json']);
        const model = readTfjsModelJson(path.join(out('sd32'), c, 'model.json'));
        expect(model.config).to.deep.equal(JSON.parse(fs.readFileSync(path.join(TINY_SD, c, 'config.json'), 'utf8')));
        expect(model.weightsManifest[0]!.weights[0]).to.have.keys('name', 'shape', 'dtype');
      }
      for (const f of ['model_index.json', 'scheduler/scheduler_config.json', 'tokenizer/vocab.json', 'tokenizer/merges.txt', 'tokenizer/tokenizer_config.json']) {
        expect(fs.readFileSync(path.join(out('sd32'), f)).equals(fs.readFileSync(path.join(TINY_SD, f))), f).to.equal(true);
      }
      expect(fs.readdirSync(out('blip32')).sort()).to.deep.equal(
        ['generation_config.json', 'group1-shard1of1.bin', 'model.json', 'preprocessor_config.json', 'processor_config.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt'],
      );
      const blip = readBlipFolder(out('blip16'));
      expect(blip.model.config).to.deep.equal(JSON.parse(fs.readFileSync(path.join(TINY_BLIP, 'config.json'), 'utf8')));
      expect(path.basename(blip.model.weightsPath)).to.equal('model.json');
    });

    it('float32: every tensor reads back exactly, with the PyTorch names and shapes', function () {
      const sd = readStableDiffusionFolder(TINY_SD);
      const conv = readStableDiffusionFolder(out('sd32'));
      let n = 0;
      for (const c of ['unet', 'vae', 'textEncoder'] as const) {
        n += withSources(sd[c].weightsPath, conv[c].weightsPath, (a, b) => compareSources(a, b, false)).tensors;
      }
      n += withSources(readBlipFolder(TINY_BLIP).model.weightsPath, readBlipFolder(out('blip32')).model.weightsPath, (a, b) => compareSources(a, b, false)).tensors;
      expect(n).to.equal(208 + 180 + 36 + 91);
    });

    it('float16: every tensor is the float16 rounding of the original (relative error <= 2^-11), stored in half the bytes', function () {
      const sd = readStableDiffusionFolder(TINY_SD);
      const conv = readStableDiffusionFolder(out('sd16'));
      for (const c of ['unet', 'vae', 'textEncoder'] as const) {
        const { maxRel } = withSources(sd[c].weightsPath, conv[c].weightsPath, (a, b) => compareSources(a, b, true));
        expect(maxRel, c).to.be.greaterThan(0).and.at.most(2 ** -11);
      }
      const blip = withSources(readBlipFolder(TINY_BLIP).model.weightsPath, readBlipFolder(out('blip16')).model.weightsPath, (a, b) => compareSources(a, b, true));
      expect(blip.maxRel).to.be.at.most(2 ** -11);
      const entry = readTfjsModelJson(path.join(out('sd16'), 'unet', 'model.json')).weightsManifest[0]!.weights[0]!;
      expect(entry.dtype).to.equal('float32');
      expect(entry.quantization).to.deep.equal({ dtype: 'float16', original_dtype: 'float32' });
      const bytes = (d: string): number => fs.readdirSync(d).filter((f) => f.endsWith('.bin')).reduce((s, f) => s + fs.statSync(path.join(d, f)).size, 0);
      expect(bytes(path.join(out('sd16'), 'unet')) * 2).to.equal(bytes(path.join(out('sd32'), 'unet')));
    });

    it('float16 storage rounds to the nearest float16, ties to even, and refuses values beyond its range', function () {
      // Checked against the decoder (itself checked against PyTorch-written F16 files in safetensors.spec): each
      // pattern decodes to a float16 no farther from the value than its neighbours, and an exact tie goes to the
      // even pattern.
      const bits = new Uint32Array(120_000);
      for (let i = 0; i < bits.length; i++) bits[i] = Math.imul(i, 0x9e3779b1) >>> 0;
      const edge = [1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65519.99, 2 ** -24, 2 ** -25, 3e-8, 2 ** -14 - 2 ** -25, -0, 0];
      const all = new Float32Array([...new Float32Array(bits.buffer), ...edge]);
      const values = all.filter((v) => Number.isFinite(v) && Math.abs(v) < 65519);
      const got = float16BitsInRange(values);
      const decode = (h: number): number => decodeElements(new Uint8Array(Uint16Array.of(h).buffer), 'F16', 1, 'h')[0]!;
      let ties = 0;
      for (let i = 0; i < values.length; i++) {
        const v = values[i]!;
        const h = got[i]!;
        const d = Math.abs(v - decode(h));
        for (const n of [h - 1, h + 1]) {
          if ((n & 0x7c00) === 0x7c00 || (n & 0x7fff) === 0x7fff || ((n ^ h) & 0x8000) !== 0) continue; // past inf or across the sign
          const dn = Math.abs(v - decode(n));
          if (dn < d || (dn === d && (h & 1) === 1)) expect.fail(`value ${v}: pattern ${h} (off by ${d}), but ${n} is off by ${dn}`);
          if (dn === d) ties++;
        }
      }
      expect(values.length).to.be.greaterThan(50_000);
      expect(ties).to.be.greaterThan(0);
      expect(floatToHalfBits(65520)).to.equal(0x7c00); // the plain rounding overflows to infinity, as PyTorch's
      expect(() => float16BitsInRange(new Float32Array([1, 65520]), "tensor 'w'")).to.throw(/tensor 'w': value 65520 is beyond the float16 range.*--dtype float32/);
    });

    it('are standard tfjs weights: tf.io.decodeWeights reads the same values from the shards', function () {
      for (const name of ['sd32', 'sd16']) {
        const unet = path.join(out(name), 'unet');
        const model = readTfjsModelJson(path.join(unet, 'model.json'));
        const group = model.weightsManifest[0]!;
        const buffers = group.paths.map((p) => {
          const b = fs.readFileSync(path.join(unet, p));
          return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
        });
        const decoded = tf.io.decodeWeights(buffers, group.weights.map((w) => ({ ...w, shape: [...w.shape] })));
        const ours = new TfjsWeights(path.join(unet, 'model.json'));
        try {
          for (const w of group.weights) {
            const t = decoded[w.name]!;
            expect(t.shape, w.name).to.deep.equal(ours.info(w.name).shape);
            expect(Array.from(t.dataSync()), `${name} ${w.name}`).to.deep.equal(Array.from(ours.read(w.name).data));
          }
        } finally {
          ours.close();
          tf.dispose(Object.values(decoded));
        }
      }
    });

    it('shards are at most the shard size, all full but the last, and tensors may straddle them', function () {
      const unet = path.join(out('sd16'), 'unet');
      const model = readTfjsModelJson(path.join(unet, 'model.json'));
      const paths = model.weightsManifest[0]!.paths;
      expect(paths.length).to.equal(5); // 406,408 bytes of float16 in 100,000-byte shards
      paths.forEach((p, i) => {
        expect(p).to.equal(`group1-shard${i + 1}of5.bin`);
        const size = fs.statSync(path.join(unet, p)).size;
        if (i < paths.length - 1) expect(size).to.equal(100_000);
        else expect(size).to.be.above(0).and.at.most(100_000);
      });
      const r = convertModelFolder(TINY_SD, out('sd-mb'), { shardBytes: 256 * 1024 });
      for (const c of r.components) {
        for (const f of fs.readdirSync(path.join(out('sd-mb'), c.folder)).filter((x) => x.endsWith('.bin'))) {
          expect(fs.statSync(path.join(out('sd-mb'), c.folder, f)).size).to.be.at.most(256 * 1024);
        }
      }
      expect(r.components.find((c) => c.folder === 'unet')!.shards).to.equal(4);
    });
  });

  describe('loading converted folders', function () {
    it('an edit gives the same latents and image as the original folder (float32 exactly; float16 close)', async function () {
      const run = async (model: string): Promise<{ latents: Float32Array; image: Uint8Array | Uint8ClampedArray | number[] }> => {
        const p2p = await Pix2PixZero.load({ model, backend: 'wasm', cacheDir: false });
        try {
          const d = await p2p.direction({ name: 'cat', sentences: ['a cat', 'a photo of a cat'] }, { name: 'dog', sentences: ['a dog', 'a photo of a dog'] });
          const start = tf.memory().numTensors;
          const r = await p2p.edit(EXAMPLE, d, { caption: 'a cat on a sofa', steps: 4, numRegSteps: 0, size: 32 });
          const latents = r.latents.dataSync() as Float32Array;
          tf.dispose([r.latents, d.tensor]);
          r.inversion.dispose();
          expect(tf.memory().numTensors).to.equal(start - 1); // the direction, created before `start`, is freed too
          return { latents, image: r.image.data };
        } finally {
          p2p.dispose();
        }
      };
      const before = tf.memory().numTensors;
      const original = await run(TINY_SD);
      const f32 = await run(out('sd32'));
      const f16 = await run(out('sd16'));
      expect(tf.memory().numTensors).to.equal(before);
      expect(Array.from(f32.latents)).to.deep.equal(Array.from(original.latents));
      expect(Array.from(f32.image)).to.deep.equal(Array.from(original.image));
      const rel = relativeError(tf.tensor(f16.latents), tf.tensor(original.latents));
      expect(rel, `float16 edited latents: relative error ${rel}`).to.be.above(0).and.below(2e-2);
    });

    it('a converted BLIP folder captions exactly as the original', async function () {
      const image = await readImage(EXAMPLE);
      const ids = async (dir: string): Promise<number[]> => {
        const c = BlipCaptioner.load(dir);
        try {
          return [...(await c.captionImage(image, { maxNewTokens: 8 })).ids];
        } finally {
          c.dispose();
        }
      };
      expect(await ids(out('blip32'))).to.deep.equal(await ids(TINY_BLIP));
    });

    it('a BLIP folder saved by transformers 5 (processor_config.json, no preprocessor_config.json) converts and reads', function () {
      const src = out('blip-t5');
      fs.cpSync(TINY_BLIP, src, { recursive: true });
      fs.rmSync(path.join(src, 'preprocessor_config.json'));
      convertModelFolder(src, out('blip-t5-c'));
      const expected = readBlipFolder(TINY_BLIP).preprocessorConfig;
      expect(readBlipFolder(src).preprocessorConfig).to.deep.equal(expected);
      expect(readBlipFolder(out('blip-t5-c')).preprocessorConfig).to.deep.equal(expected);
    });

    it('inspect and info report converted folders as they do the originals (dtype F16 for float16)', async function () {
      const a = inspectPath(TINY_SD);
      const b = inspectPath(out('sd16'));
      expect(b.kind).to.equal('stable-diffusion');
      expect(b.components.map((c) => [c.name, c.class, c.parameters])).to.deep.equal(a.components.map((c) => [c.name, c.class, c.parameters]));
      expect(b.components[0]!.tensors![0]!.dtype).to.equal('F16');
      expect(inspectPath(out('blip32')).kind).to.equal('blip');
      const r = await run(['inspect', path.join(out('sd32'), 'vae')]);
      expect(r.code, r.err).to.equal(0);
      expect(r.out).to.match(/AutoencoderKL .*81215 parameters in 180 tensors/);
    });

    it('a single component converts and reads through readComponentFolder', function () {
      const r = convertModelFolder(path.join(TINY_SD, 'vae'), out('vae-only'), { dtype: 'float16' });
      expect(r.kind).to.equal('component');
      expect(r.components).to.have.length(1);
      const c = readComponentFolder(out('vae-only'), 'VAE');
      expect(c.config._class_name).to.equal('AutoencoderKL');
      expect(findWeights(out('vae-only'), 'VAE')).to.equal(path.join(out('vae-only'), 'model.json'));
    });
  });

  describe('bad manifests give errors naming the file and tensor', function () {
    let base: string;
    before(function () {
      base = out('toy-src');
      fs.mkdirSync(base);
      fs.writeFileSync(path.join(base, 'config.json'), JSON.stringify({ _class_name: 'Toy' }));
      writeSafetensors(path.join(base, 'model.safetensors'), {
        a: { dtype: 'F32', shape: [10], data: new Float32Array(10).fill(1) },
        b: { dtype: 'F32', shape: [2, 5], data: new Float32Array(10).fill(2) },
        c: { dtype: 'I64', shape: [3], data: new Int32Array([1, 2, 3]) },
      });
    });
    let n = 0;
    /** A fresh converted toy (92 bytes in shards of 32: 'a' and 'b' straddle shard boundaries), changed by `mutate`. */
    function broken(mutate: (d: string, model: { weightsManifest?: { paths: string[]; weights: Record<string, unknown>[] }[]; config?: unknown }) => void): string {
      const d = out(`toy-${n++}`);
      convertModelFolder(base, d, { shardBytes: 32 });
      const file = path.join(d, 'model.json');
      const model = JSON.parse(fs.readFileSync(file, 'utf8')) as Parameters<typeof mutate>[1];
      mutate(d, model);
      fs.writeFileSync(file, JSON.stringify(model));
      return d;
    }

    it('the baseline reads: int tensors as int32, tensors straddling shards', function () {
      const d = broken(() => {});
      expect(fs.readdirSync(d).filter((f) => f.endsWith('.bin'))).to.deep.equal(['group1-shard1of3.bin', 'group1-shard2of3.bin', 'group1-shard3of3.bin']);
      const w = readComponentFolder(d, 'toy').openWeights();
      try {
        expect(w.info('c')).to.deep.equal({ dtype: 'I32', shape: [3] });
        expect(Array.from(w.read('b').data)).to.deep.equal(new Array(10).fill(2));
        expect(Array.from(w.read('c').data)).to.deep.equal([1, 2, 3]);
        expect(() => w.read('zzz')).to.throw(/model.json: tensor 'zzz': no such tensor/);
      } finally {
        w.close();
      }
    });

    const cases: [string, Parameters<typeof broken>[0], RegExp][] = [
      ['a missing shard', (d) => fs.rmSync(path.join(d, 'group1-shard2of3.bin')), /model\.json: shard group1-shard2of3\.bin \(holding 'a'\) is missing/],
      ['a truncated shard', (d) => fs.truncateSync(path.join(d, 'group1-shard3of3.bin'), 5), /model\.json: weights group 1: its shards hold 69 bytes .*group1-shard3of3\.bin: 5\) but its 3 tensors need 92; tensor 'b' ends at byte 80: a shard is truncated/],
      ['a shard of the wrong size', (d) => fs.appendFileSync(path.join(d, 'group1-shard3of3.bin'), Buffer.alloc(4)), /its shards hold 96 bytes .* need 92; 4 bytes after the last tensor 'c' are not described/],
      ['an unknown dtype', (_d, m) => (m.weightsManifest![0]!.weights[1]!.dtype = 'float64'), /model\.json: tensor 'b': unknown or unsupported dtype "float64"/],
      ['an unknown quantization', (_d, m) => (m.weightsManifest![0]!.weights[0]!.quantization = { dtype: 'uint8', scale: 1, min: 0 }), /tensor 'a': unknown or unsupported quantization dtype "uint8"/],
      ['a duplicate name', (_d, m) => (m.weightsManifest![0]!.weights[2]!.name = 'a'), /model\.json: tensor 'a': appears more than once/],
      ['a negative dimension', (_d, m) => (m.weightsManifest![0]!.weights[1]!.shape = [-2, -5]), /tensor 'b': shape \[-2,-5\] must be a list of at most 32 non-negative integers/],
      ['a fractional dimension', (_d, m) => (m.weightsManifest![0]!.weights[1]!.shape = [2.5, 4]), /tensor 'b': shape \[2.5,4\] must be/],
      ['a shard path outside the folder', (_d, m) => (m.weightsManifest![0]!.paths[0] = '../../etc/passwd'), /paths must be a list of file names in the folder/],
      ['no config', (_d, m) => delete m.config, /has no 'config' object/],
      ['no manifest', (_d, m) => delete m.weightsManifest, /has no 'weightsManifest' list/],
    ];
    for (const [what, mutate, pattern] of cases) {
      it(what, function () {
        const d = broken(mutate);
        expect(() => readComponentFolder(d, 'toy').openWeights()).to.throw(pattern);
      });
    }
    it('a model.json that is not JSON, and shards without a model.json', function () {
      const d = broken(() => {});
      fs.writeFileSync(path.join(d, 'model.json'), '{"config": {');
      expect(() => new TfjsWeights(path.join(d, 'model.json'))).to.throw(/model\.json is not valid JSON/);
      fs.rmSync(path.join(d, 'model.json'));
      expect(() => findWeights(d, 'toy')).to.throw(/toy weights not found .*tfjs weight shards but no model\.json/);
    });
    it('inspect of a broken converted folder exits 1 with a one-line error', async function () {
      const d = broken((x) => fs.truncateSync(path.join(x, 'group1-shard1of3.bin'), 3));
      const r = await run(['inspect', d]);
      expect(r.code).to.equal(1);
      expect(r.err.trim().split('\n')).to.have.length(1);
      expect(r.err).to.match(/shard is truncated/);
    });
  });

  describe('the convert command', function () {
    it('bad usage exits 2', async function () {
      for (const args of [['convert'], ['convert', TINY_SD], ['convert', TINY_SD, out('u1'), '--dtype', 'float64'], ['convert', TINY_SD, out('u2'), '--shard-mb', '0'], ['convert', TINY_SD, out('u3'), '--frob']]) {
        const r = await run(args);
        expect(r.code, args.join(' ')).to.equal(2);
        expect(r.err).to.match(/pix2pix-zero convert --help/);
      }
      expect(fs.existsSync(out('u1'))).to.equal(false);
    });

    it('bad input exits 1 and writes nothing', async function () {
      const missing = await run(['convert', path.join(dir, 'nope'), out('x1')]);
      expect(missing.code).to.equal(1);
      expect(missing.err).to.match(/model folder not found: .*nope/);
      const notModel = await run(['convert', path.join(ROOT, 'assets'), out('x2')]);
      expect(notModel.code).to.equal(1);
      expect(notModel.err).to.match(/is not a model folder/);
      const inside = await run(['convert', out('sd32'), path.join(out('sd32'), 'again')]);
      expect(inside.code).to.equal(1);
      expect(inside.err).to.match(/must not be the model folder/);
      // A corrupt VAE weights file fails mid-way: no output, no temporary folder left.
      const bad = out('bad-src');
      fs.cpSync(TINY_SD, bad, { recursive: true });
      const vae = path.join(bad, 'vae', 'diffusion_pytorch_model.safetensors');
      fs.truncateSync(vae, fs.statSync(vae).size - 100);
      const parent = out('bad-out-parent');
      fs.mkdirSync(parent);
      const r = await run(['convert', bad, path.join(parent, 'sd')]);
      expect(r.code).to.equal(1);
      expect(r.err).to.match(/vae.*diffusion_pytorch_model\.safetensors/);
      expect(fs.readdirSync(parent)).to.deep.equal([]);
      expect(fs.existsSync(out('x1')) || fs.existsSync(out('x2'))).to.equal(false);
    });

    it('refuses a non-empty output unless --force, which replaces it', async function () {
      const target = out('occupied');
      fs.mkdirSync(target);
      fs.writeFileSync(path.join(target, 'keep.txt'), 'x');
      const r = await run(['convert', TINY_BLIP, target]);
      expect(r.code).to.equal(1);
      expect(r.err).to.match(/exists and is not an empty folder.*--force/);
      expect(fs.readdirSync(target)).to.deep.equal(['keep.txt']);
      const forced = await run(['convert', TINY_BLIP, target, '--force', '--json']);
      expect(forced.code, forced.err).to.equal(0);
      const report = JSON.parse(forced.out) as { kind: string; dtype: string; components: { folder: string; tensors: number }[]; copied: string[] };
      expect(report.kind).to.equal('blip');
      expect(report.dtype).to.equal('float32');
      expect(report.components).to.deep.equal([{ folder: '.', tensors: 91, bytes: 231528, shards: 1 }]);
      expect(report.copied).to.include('tokenizer.json');
      expect(fs.existsSync(path.join(target, 'keep.txt'))).to.equal(false);
      expect(fs.readdirSync(dir).filter((f) => f.includes('.converting-'))).to.deep.equal([]);
      // An empty folder is fine without --force.
      fs.mkdirSync(out('empty'));
      expect((await run(['convert', TINY_BLIP, out('empty'), '--dtype', 'float16'])).code).to.equal(0);
    });

    it('runs as a program: converts with --shard-mb, exit 0, and lists itself in --help', async function () {
      const target = out('cli-sd');
      const r = cli(['convert', TINY_SD, target, '--dtype', 'float16', '--shard-mb', '0.25']);
      expect(r.code, r.err).to.equal(0);
      expect(r.out).to.match(/unet\s+208 tensors\s+396\.9 KiB in 2 shards/);
      expect(readStableDiffusionFolder(target).unet.config._class_name).to.equal('UNet2DConditionModel');
      expect((await run(['--help'])).out).to.match(/convert\s+convert a single-file SD checkpoint to a diffusers folder, or a model folder/);
    });
  });
});
