/**
 * End-to-end parity with diffusers' StableDiffusionPix2PixZeroPipeline on the tiny pipeline (fixtures made by
 * tools/reference/pipeline_outputs.py): each stage is fed the reference's inputs (so stage errors do not
 * compound) and compared with the reference's outputs; then the whole chain runs from the image file alone.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { readStableDiffusionFolder } from '../lib/io/model-folder.js';
import { imageToTensor, readImage } from '../lib/io/image.js';
import { SafetensorsFile, writeSafetensors } from '../lib/io/safetensors.js';
import { type ModelPorts, loadModelPorts } from '../lib/editing/adapters.js';
import { DDIMInverter } from '../lib/editing/ddim-inverter.js';
import { CrossAttentionGuidedSampler } from '../lib/editing/guided-sampler.js';
import { RecordedShifts } from '../lib/editing/noise-regularization.js';
import { TorchGenerator } from '../lib/random/torch-generator.js';
import { ConfigSchedulerFactory } from '../lib/schedulers/factory.js';
import { Pix2PixZero } from '../lib/pix2pix-zero.js';
import { FIXTURES, ROOT, TINY_SD, expectClose, forEachBackend, readReference } from './helpers/tensors.js';
import { cli } from './helpers/cli.js';

const DIR = path.join(FIXTURES, 'reference', 'pipeline');
const meta = JSON.parse(fs.readFileSync(path.join(DIR, 'cases.json'), 'utf8')) as {
  caption: string;
  source: string[];
  target: string[];
  steps: number;
  cases: Record<string, { lambda_auto_corr: number; lambda_kl: number; num_reg_steps: number; num_auto_corr_rolls: number; seed: number; size: number; model?: string; vae?: 'sample' }>;
};
const nhwc = (t: tf.Tensor): tf.Tensor4D => tf.transpose(t, [0, 2, 3, 1]) as tf.Tensor4D;

forEachBackend('pix2pix-zero end to end vs diffusers', function () {
  for (const [name, c] of Object.entries(meta.cases)) {
    const model = c.model !== undefined ? path.join(ROOT, c.model) : TINY_SD;
    describe(`${name} (${path.basename(model)}, ${c.size}x${c.size}, ${meta.steps} steps, regularisation ${c.num_reg_steps > 0 ? 'on' : 'off'})`, function () {
      let ref: Record<string, tf.Tensor>;
      let ports: ModelPorts;
      const schedulerConfig = new ConfigSchedulerFactory(readStableDiffusionFolder(model).schedulerConfig);
      before(async function () {
        ref = readReference(path.join(DIR, `${name}.safetensors`));
        ports = await loadModelPorts(readStableDiffusionFolder(model));
      });
      after(function () {
        tf.dispose(Object.values(ref));
        ports.dispose();
      });
      const inv = () => ({
        steps: meta.steps,
        numRegSteps: c.num_reg_steps,
        numAutoCorrRolls: c.num_auto_corr_rolls,
        lambdaAc: c.lambda_auto_corr,
        lambdaKl: c.lambda_kl,
      });

      it('image, VAE latents (posterior mean), caption and sentence embeddings, direction', async function () {
        const img = imageToTensor(await readImage(path.join(DIR, `input${c.size}.png`)));
        expectClose(img, nhwc(ref.image!), 1e-6, 'preprocessed image');
        const latents = ports.vae.encode(img, 'mean');
        expectClose(latents, nhwc(ref.image_latents!), 1e-4, 'image latents');
        const cap = await ports.textEmbedder.embed([meta.caption]);
        expectClose(cap, ref.caption_embeds!, 1e-4, 'caption embedding');
        const src = await ports.textEmbedder.meanEmbedding(meta.source);
        const tgt = await ports.textEmbedder.meanEmbedding(meta.target);
        expectClose(src, ref.source_embeds!, 1e-4, 'source mean embedding');
        expectClose(tf.sub(tgt, src), ref.direction!, 1e-4, 'direction');
        tf.dispose([img, latents, cap, src, tgt]);
      });

      it('inversion: x_T within 1e-3 (shifts replayed, and drawn from the same seed)', async function () {
        const inverter = new DDIMInverter(ports.denoiser, schedulerConfig);
        if (c.vae === 'sample') {
          // diffusers samples the posterior and then draws the roll shifts from one generator.
          const img = imageToTensor(await readImage(path.join(DIR, `input${c.size}.png`)));
          const generator = new TorchGenerator(c.seed);
          const sampled = ports.vae.encode(img, 'sample', generator);
          const x = await inverter.invert(sampled, ref.caption_embeds as tf.Tensor3D, { ...inv(), shifts: generator });
          expectClose(x[meta.steps]!, nhwc(ref.inverted!), 1e-3, 'x_T (posterior sample + shifts from one seeded generator)');
          tf.dispose([img, sampled, ...x]);
          return;
        }
        const x0 = nhwc(ref.image_latents!);
        const shifts = Array.from(ref.shifts!.dataSync());
        const replay = new RecordedShifts(shifts);
        const a = await inverter.invert(x0, ref.caption_embeds as tf.Tensor3D, { ...inv(), shifts: replay });
        expect(replay.used).to.equal(shifts.length);
        expectClose(a[meta.steps]!, nhwc(ref.inverted!), 1e-3, 'x_T (recorded shifts)');
        const b = await inverter.invert(x0, ref.caption_embeds as tf.Tensor3D, { ...inv(), seed: c.seed });
        expectClose(b[meta.steps]!, nhwc(ref.inverted!), 1e-3, 'x_T (seeded generator)');
        tf.dispose([x0, ...a, ...b]);
      });

      it('reference + edit passes: every step\'s reference maps and the edited latents within 1e-3', async function () {
        const sampler = new CrossAttentionGuidedSampler(ports.denoiser, schedulerConfig);
        const caption = ref.caption_embeds as tf.Tensor3D;
        let compared = 0;
        const start = tf.memory().numTensors;
        const noise = nhwc(ref.inverted!);
        const r = await sampler.sample(noise, { caption, negative: caption, direction: ref.direction as tf.Tensor3D }, {
          steps: meta.steps,
          guidanceScale: 5,
          xaGuidance: 0.1,
          onReferenceMaps: (step, maps) => {
            [...maps.values()].forEach((m, j) => {
              const expected = ref[`ref_maps.step${step}.layer${j}`];
              if (expected === undefined) return;
              expectClose(m, expected, 1e-3, `reference map step ${step} layer ${j}`);
              compared++;
            });
          },
        });
        tf.tidy(() => expectClose(r.edited, nhwc(ref.edited_latents!), 1e-3, 'edited latents'));
        if (name === 'reg_off') expect(compared).to.equal(meta.steps * 4);
        tf.dispose([r.edited, r.reconstruction, noise]);
        expect(tf.memory().numTensors).to.equal(start);
      });

      it('decoded edited image within 1e-4', function () {
        const img = tf.tidy(() => ports.vae.decode(nhwc(ref.edited_latents!)));
        expectClose(img, nhwc(ref.edited_image!), 1e-4, 'decoded image');
        img.dispose();
      });
    });
  }
});

describe('pix2pix-zero from a file, as a user runs it', function () {
  const c = meta.cases.reg_off!;
  let dir: string;
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-e2e-'));
    fs.writeFileSync(path.join(dir, 'cat.txt'), meta.source.join('\n'));
    fs.writeFileSync(path.join(dir, 'dog.txt'), meta.target.join('\n'));
  });
  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the facade reproduces diffusers from the image file, and frees every tensor', async function () {
    const p2p = await Pix2PixZero.load({ model: TINY_SD, backend: 'wasm', cacheDir: false });
    const ref = readReference(path.join(DIR, 'reg_off.safetensors'));
    try {
      const start = tf.memory().numTensors;
      for (let run = 0; run < 2; run++) {
        const d = await p2p.direction({ name: 'cat', sentences: meta.source }, { name: 'dog', sentences: meta.target });
        const result = await p2p.edit(path.join(DIR, `input${c.size}.png`), d, { caption: meta.caption, size: c.size, steps: meta.steps, numRegSteps: 0 });
        tf.tidy(() => expectClose(result.latents, nhwc(ref.edited_latents!), 1e-3, 'edited latents (facade)'));
        const expected = tf.tidy(() => tf.round(tf.mul(tf.clipByValue(tf.add(tf.div(nhwc(ref.edited_image!), 2), 0.5), 0, 1), 255)));
        const got = tf.tensor4d(Float32Array.from(result.image.data), [1, c.size, c.size, 3]);
        const maxDiff = tf.tidy(() => tf.max(tf.abs(tf.sub(got, expected))).dataSync()[0]!);
        expect(maxDiff, 'PNG pixel difference (levels of 255)').to.be.at.most(1);
        tf.dispose([expected, got, result.latents, d.tensor]);
        result.inversion.dispose();
        expect(tf.memory().numTensors, `tensors after run ${run + 1}`).to.equal(start);
      }
    } finally {
      tf.dispose(Object.values(ref));
      p2p.dispose();
    }
  });

  it('the CLI edits an image and writes the PNGs; artefacts can be saved and reused', function () {
    const out = path.join(dir, 'dog.png');
    const inv = path.join(dir, 'inv.safetensors');
    const dirFile = path.join(dir, 'dir.safetensors');
    const r = cli([
      'edit', path.join(DIR, `input${c.size}.png`), '--caption', meta.caption,
      '--source-sentences', path.join(dir, 'cat.txt'), '--target-sentences', path.join(dir, 'dog.txt'),
      '--steps', String(meta.steps), '--size', String(c.size), '--reg-steps', '0', '--out', out,
      '--reconstruction', path.join(dir, 'rec.png'), '--save-inversion', inv, '--save-direction', dirFile, '--json', '--no-cache',
    ]);
    expect(r.code, r.err).to.equal(0);
    const report = JSON.parse(r.out) as { timings: Record<string, number>; caption: string };
    expect(report.caption).to.equal(meta.caption);
    expect(Object.keys(report.timings)).to.include.members(['inversion', 'edit', 'decode', 'total']);
    for (const f of [out, path.join(dir, 'rec.png'), inv, dirFile]) expect(fs.existsSync(f), f).to.equal(true);
    // Without --steps, a saved inversion is edited over its own steps.
    const again = cli(['edit', '--inversion', inv, '--direction', dirFile, '--out', path.join(dir, 'dog2.png'), '--no-cache']);
    expect(again.code, again.err).to.equal(0);
    expect(fs.readFileSync(path.join(dir, 'dog2.png')).equals(fs.readFileSync(out)), 'reusing the artefacts gives the same image').to.equal(true);
    const other = cli(['edit', '--inversion', inv, '--direction', dirFile, '--out', path.join(dir, 'dog3.png'), '--steps', String(meta.steps + 1), '--no-cache']);
    expect(other.code).to.equal(1);
    expect(other.err).to.match(new RegExp(`inversion was made with ${meta.steps} steps`));
    expect(fs.existsSync(path.join(dir, 'dog3.png'))).to.equal(false);
  });

  it('memory: peak does not grow with the number of steps (lock-step keeps one step of maps)', async function () {
    const ports = await loadModelPorts(readStableDiffusionFolder(TINY_SD));
    try {
      const sampler = new CrossAttentionGuidedSampler(ports.denoiser, new ConfigSchedulerFactory(readStableDiffusionFolder(TINY_SD).schedulerConfig));
      const noise = tf.randomNormal([1, 8, 8, 4], 0, 1, 'float32', 5) as tf.Tensor4D;
      const caption = tf.randomNormal([1, 77, 32], 0, 1, 'float32', 6) as tf.Tensor3D;
      const direction = tf.mul(caption, 0.1) as tf.Tensor3D;
      const peak: Record<number, number> = {};
      for (const steps of [10, 50]) {
        const base = tf.memory().numBytes;
        let max = 0;
        const r = await sampler.sample(noise, { caption, negative: caption, direction }, {
          steps,
          onReferenceMaps: () => (max = Math.max(max, tf.memory().numBytes - base)),
        });
        peak[steps] = max;
        tf.dispose([r.edited, r.reconstruction]);
        expect(tf.memory().numBytes, `bytes after ${steps} steps`).to.equal(base);
      }
      expect(peak[50], `peak bytes: 10 steps ${peak[10]}, 50 steps ${peak[50]}`).to.be.at.most(peak[10]! * 1.05);
      tf.dispose([noise, caption, direction]);
    } finally {
      ports.dispose();
    }
  });

  it('refuses an inversion made with another model', function () {
    const inv = path.join(dir, 'inv.safetensors');
    expect(fs.existsSync(inv), 'made by the CLI test').to.equal(true);
    const f = SafetensorsFile.open(inv);
    const latent = f.read('latent');
    const metaJson = JSON.parse(f.metadata.meta!) as Record<string, unknown>;
    f.close();
    const other = path.join(dir, 'other-model.safetensors');
    writeSafetensors(other, { latent: { dtype: 'F32', shape: latent.shape, data: latent.data as Float32Array } }, { format: 'pix2pix-zero', kind: 'inversion', meta: JSON.stringify({ ...metaJson, model: '0123456789abcdef' }) });
    const r = cli(['edit', '--inversion', other, '--task', 'cat2dog', '--out', path.join(dir, 'never2.png'), '--no-cache']);
    expect(r.code).to.equal(1);
    expect(r.err).to.match(/the inversion was made with another model \(UNet 0123456789abcdef/);
    const wide = path.join(dir, 'wide-direction.safetensors');
    writeSafetensors(wide, { direction: { dtype: 'F32', shape: [1, 77, 24], data: new Float32Array(77 * 24) } });
    const w = cli(['edit', '--inversion', inv, '--direction', wide, '--out', path.join(dir, 'never3.png'), '--no-cache']);
    expect(w.err).to.match(/direction is \[1, 77, 24\] but the model's text embeddings are \[1, 77, 32\]/);
    expect(fs.existsSync(path.join(dir, 'never2.png')) || fs.existsSync(path.join(dir, 'never3.png'))).to.equal(false);
  });

  it('bad input: clear errors, nothing written', function () {
    const out = path.join(dir, 'never.png');
    const img = path.join(DIR, `input${c.size}.png`);
    const base = ['edit', img, '--caption', 'x', '--size', String(c.size), '--steps', '2', '--out', out, '--no-cache'];
    // A word without a bank gets generated sentences (spec/sentence-generator.spec.ts); what is not a word is refused.
    const unknown = cli([...base, '--source', 'uni;corn', '--target', 'dog']);
    expect(unknown.code).to.equal(1);
    expect(unknown.err).to.match(/concept 'uni;corn' is not a word or short phrase/);
    fs.writeFileSync(path.join(dir, 'empty.txt'), '\n');
    const empty = cli([...base, '--source-sentences', path.join(dir, 'empty.txt'), '--target', 'dog']);
    expect(empty.err).to.match(/has no sentences/);
    const wrongWidth = path.join(dir, 'wide.safetensors');
    fs.copyFileSync(path.join(FIXTURES, 'safetensors', 'dtypes.safetensors'), wrongWidth);
    expect(cli([...base, '--direction', wrongWidth]).err).to.match(/holds no 'direction' tensor/);
    const notImage = path.join(dir, 'text.png');
    fs.writeFileSync(notImage, 'not an image');
    expect(cli(['edit', notImage, '--caption', 'x', '--task', 'cat2dog', '--out', out, '--size', '32', '--no-cache']).err).to.match(/not a PNG, JPEG/);
    expect(cli([...base, '--task', 'cat2dog', '--guidance-scale', '-3']).code).to.equal(2);
    expect(cli(['edit', img, '--caption', 'x', '--task', 'cat2dog', '--out', out, '--size', '30', '--no-cache']).err).to.match(/multiple of 8/);
    expect(cli([...base, '--task', 'cat2dog', '--size', '40']).err).to.match(/--size is given twice/);
    expect(cli(['edit', img, '--task', 'cat2dog', '--out', out, '--size', '32', '--reg-steps', '0', '--no-cache']).err).to.match(/no captioner loaded/);
    expect(fs.existsSync(out), 'nothing written').to.equal(false);
  });
});
