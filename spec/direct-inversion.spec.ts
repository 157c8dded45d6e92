/**
 * Direct Inversion against its reference on diffusers' components (tools/reference/direct_inversion.py, fixtures
 * by direct_inversion_outputs.py): the inversion trajectory, every step's reference maps, the reconstruction and
 * the edited latents; then from the image file through the facade and the CLI, and with saved inversions old
 * and new.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { readStableDiffusionFolder } from '../lib/io/model-folder.js';
import { SafetensorsFile, writeSafetensors } from '../lib/io/safetensors.js';
import { type ModelPorts, loadModelPorts } from '../lib/editing/adapters.js';
import { DDIMInverter } from '../lib/editing/ddim-inverter.js';
import { directInversion } from '../lib/editing/direct-inversion.js';
import { CrossAttentionGuidedSampler } from '../lib/editing/guided-sampler.js';
import { RecordedShifts } from '../lib/editing/noise-regularization.js';
import { ConfigSchedulerFactory } from '../lib/schedulers/factory.js';
import { Inversion, Pix2PixZero } from '../lib/pix2pix-zero.js';
import { FIXTURES, ROOT, TINY_SD, expectClose, forEachBackend, readReference, relativeError } from './helpers/tensors.js';
import { cli } from './helpers/cli.js';
import { type SentenceFolder, readSavedLatents, sentenceFolder } from './helpers/edit-files.js';

const DIR = path.join(FIXTURES, 'reference', 'direct_inversion');
interface Case {
  lambda_auto_corr: number;
  lambda_kl: number;
  num_reg_steps: number;
  num_auto_corr_rolls: number;
  seed: number;
  guidance_scale: number;
  xa: number;
  size: number;
  maps?: boolean;
  model?: string;
}
const meta = JSON.parse(fs.readFileSync(path.join(DIR, 'cases.json'), 'utf8')) as {
  caption: string;
  source: string[];
  target: string[];
  steps: number;
  images: Record<string, string>;
  cases: Record<string, Case>;
} & Record<string, unknown>;
const nhwc = (t: tf.Tensor): tf.Tensor4D => tf.transpose(t, [0, 2, 3, 1]) as tf.Tensor4D;
/** The reference trajectory [T + 1, c, h, w] as T + 1 NHWC latents. */
const latentsOf = (t: tf.Tensor): tf.Tensor4D[] => tf.tidy(() => tf.split(nhwc(t), t.shape[0]!, 0) as tf.Tensor4D[]);

forEachBackend('Direct Inversion vs its reference on diffusers', function () {
  for (const [name, c] of Object.entries(meta.cases)) {
    const model = c.model !== undefined ? path.join(ROOT, c.model) : TINY_SD;
    describe(`${name} (${path.basename(model)}, ${c.size} px, guidance ${c.guidance_scale}, regularisation ${c.num_reg_steps > 0 ? 'on' : 'off'})`, function () {
      let ref: Record<string, tf.Tensor>;
      let ports: ModelPorts;
      let refTrajectory: tf.Tensor4D[];
      const schedulers = new ConfigSchedulerFactory(readStableDiffusionFolder(model).schedulerConfig);
      const T = meta.steps;
      before(async function () {
        ref = readReference(path.join(DIR, `${name}.safetensors`));
        refTrajectory = latentsOf(ref.trajectory!);
        ports = await loadModelPorts(readStableDiffusionFolder(model));
      });
      after(function () {
        tf.dispose([...Object.values(ref), ...refTrajectory]);
        ports.dispose();
      });
      const invert = (latents: tf.Tensor4D): Promise<tf.Tensor4D[]> => {
        const shifts = new RecordedShifts(Array.from(ref.shifts!.dataSync()));
        return new DDIMInverter(ports.denoiser, schedulers).invert(latents, ref.caption_embeds as tf.Tensor3D, {
          steps: T,
          numRegSteps: c.num_reg_steps,
          numAutoCorrRolls: c.num_auto_corr_rolls,
          lambdaAc: c.lambda_auto_corr,
          lambdaKl: c.lambda_kl,
          shifts,
        });
      };
      const edit = (trajectory: tf.Tensor4D[], onReferenceMaps?: (step: number, maps: ReadonlyMap<string, tf.Tensor3D>) => void) => {
        const caption = ref.caption_embeds as tf.Tensor3D;
        return new CrossAttentionGuidedSampler(ports.denoiser, schedulers).sample(trajectory[T]!, { caption, negative: caption, direction: ref.direction as tf.Tensor3D }, {
          steps: T,
          guidanceScale: c.guidance_scale,
          xaGuidance: c.xa,
          onStepEnd: directInversion(trajectory),
          onReferenceMaps,
        });
      };

      it('inversion trajectory: z_0 .. z_T within 1e-3', async function () {
        const start = tf.memory().numTensors;
        const z0 = nhwc(ref.image_latents!);
        const ours = await invert(z0);
        expect(ours).to.have.length(T + 1);
        ours.forEach((z, k) => expectClose(z, refTrajectory[k]!, 1e-3, `trajectory z_${k}`));
        tf.dispose([z0, ...ours]);
        expect(tf.memory().numTensors).to.equal(start);
      });

      it('edit on the reference trajectory: every step\'s reference maps, the reconstruction (z_0) and the edited latents within 1e-3', async function () {
        const start = tf.memory().numTensors;
        let compared = 0;
        const r = await edit(refTrajectory, (step, maps) => {
          [...maps.values()].forEach((m, j) => {
            const expected = ref[`ref_maps.step${step}.layer${j}`];
            if (expected === undefined) return;
            const half = expected.shape[0]!;
            // The fixture keeps the first CFG half; with the caption as negative prompt the halves are the same.
            for (const [k, part] of [tf.slice(m, [0, 0, 0], [half, -1, -1]), tf.slice(m, [half, 0, 0], [half, -1, -1])].entries()) {
              expectClose(part, expected, 1e-3, `DI reference map step ${step} layer ${j} half ${k}`);
              part.dispose();
            }
            compared++;
          });
        });
        if (c.maps === true) expect(compared).to.equal(T * (meta[`${name}.attention_layers`] as number));
        tf.tidy(() => {
          expectClose(r.reconstruction, nhwc(ref.reconstruction!), 1e-6, 'DI reconstruction (= z_0)');
          expectClose(r.edited, nhwc(ref.edited_latents!), 1e-3, 'DI edited latents');
          // The test can tell Direct Inversion from the plain edit: they differ by far more than the tolerance.
          expect(relativeError(nhwc(ref.plain_edited_latents!), nhwc(ref.edited_latents!)), 'plain vs Direct Inversion').to.be.above(1e-2);
        });
        tf.dispose([r.edited, r.reconstruction]);
        expect(tf.memory().numTensors).to.equal(start);
      });

      it('chained: our own trajectory, then the edit, within 1e-3 of the reference edit', async function () {
        const start = tf.memory().numTensors;
        const z0 = nhwc(ref.image_latents!);
        const ours = await invert(z0);
        const r = await edit(ours);
        tf.tidy(() => expectClose(r.edited, nhwc(ref.edited_latents!), 1e-3, 'DI edited latents (chained)'));
        tf.tidy(() => expectClose(r.reconstruction, refTrajectory[0]!, 1e-4, 'DI reconstruction (chained)'));
        tf.dispose([z0, ...ours, r.edited, r.reconstruction]);
        expect(tf.memory().numTensors).to.equal(start);
      });
    });
  }
});

describe('Direct Inversion from a file: facade, CLI and saved inversions', function () {
  const c = meta.cases.di_reg_off!;
  const image = path.join(ROOT, meta.images[String(c.size)]!);
  let files: SentenceFolder;
  let dir: string;
  let ref: Record<string, tf.Tensor>;
  before(function () {
    files = sentenceFolder('p2pz-di-', meta.source, meta.target);
    dir = files.dir;
    ref = readReference(path.join(DIR, 'di_reg_off.safetensors'));
  });
  after(function () {
    tf.dispose(Object.values(ref));
    files.remove();
  });

  it('the facade (directInversion: true) matches the reference, saves and reloads the trajectory, and frees every tensor', async function () {
    const p2p = await Pix2PixZero.load({ model: TINY_SD, backend: 'wasm', cacheDir: false });
    try {
      const start = tf.memory().numTensors;
      const d = await p2p.direction({ name: 'cat', sentences: meta.source }, { name: 'dog', sentences: meta.target });
      const r = await p2p.edit(image, d, { caption: meta.caption, size: c.size, steps: meta.steps, numRegSteps: 0, directInversion: true });
      tf.tidy(() => expectClose(r.latents, nhwc(ref.edited_latents!), 1e-3, 'DI edited latents (facade)'));
      expect(r.inversion.trajectory).to.have.length(meta.steps + 1);
      const file = path.join(dir, 'inv.safetensors');
      r.inversion.save(file);
      const back = Inversion.load(file);
      expect(back.trajectory).to.have.length(meta.steps + 1);
      back.trajectory!.forEach((z, k) => expect(relativeError(z, r.inversion.trajectory![k]!), `saved z_${k}`).to.equal(0));
      const again = await p2p.edit(back, d, { directInversion: true });
      expect(relativeError(again.latents, r.latents), 'the saved inversion edits the same').to.equal(0);
      tf.dispose([r.latents, again.latents, d.tensor]);
      r.inversion.dispose();
      back.dispose();
      expect(tf.memory().numTensors).to.equal(start);
    } finally {
      p2p.dispose();
    }
  });

  it('the CLI: edit --direct-inversion --reg-steps 0 matches the reference; old inversions (x_T only) still edit, and say why they cannot with --direct-inversion', function () {
    const lat = path.join(dir, 'cli-latents.safetensors');
    const inv = path.join(dir, 'cli-inv.safetensors');
    const base = files.options;
    const r = cli(['edit', image, '--caption', meta.caption, ...base, '--steps', String(meta.steps), '--size', String(c.size), '--reg-steps', '0', '--direct-inversion', '--out', path.join(dir, 'di.png'), '--save-latents', lat, '--save-inversion', inv]);
    expect(r.code, r.err).to.equal(0);
    const got = readSavedLatents(lat);
    expectClose(got, ref.edited_latents!, 1e-3, 'DI edited latents (CLI)');
    got.dispose();
    // The saved inversion holds the trajectory and edits to the same image.
    const again = cli(['edit', '--inversion', inv, ...base, '--direct-inversion', '--out', path.join(dir, 'di2.png')]);
    expect(again.code, again.err).to.equal(0);
    expect(fs.readFileSync(path.join(dir, 'di2.png')).equals(fs.readFileSync(path.join(dir, 'di.png')))).to.equal(true);
    // An inversion as earlier versions wrote it: x_T only.
    const g = SafetensorsFile.open(inv);
    const old = path.join(dir, 'old-inv.safetensors');
    const x = g.read('latent');
    writeSafetensors(old, { latent: { dtype: 'F32', shape: x.shape, data: x.data as Float32Array } }, { format: 'pix2pix-zero', kind: 'inversion', meta: g.metadata.meta! });
    g.close();
    const plain = cli(['edit', '--inversion', old, ...base, '--out', path.join(dir, 'old.png')]);
    expect(plain.code, plain.err).to.equal(0);
    const refused = cli(['edit', '--inversion', old, ...base, '--direct-inversion', '--out', path.join(dir, 'never.png')]);
    expect(refused.code).to.equal(1);
    expect(refused.err).to.match(/Direct Inversion needs the inversion trajectory .* has only x_T \(saved by an earlier version\): invert the image again/);
    expect(fs.existsSync(path.join(dir, 'never.png'))).to.equal(false);
  });

  it('refuses a trajectory that does not fit the inversion, naming the file', function () {
    const inv = path.join(dir, 'cli-inv.safetensors');
    expect(fs.existsSync(inv), 'made by the CLI test').to.equal(true);
    const g = SafetensorsFile.open(inv);
    const x = g.read('latent');
    const z = g.read('trajectory');
    const bad = path.join(dir, 'bad-inv.safetensors');
    const [n, ch, h, w] = z.shape as [number, number, number, number];
    writeSafetensors(bad, {
      latent: { dtype: 'F32', shape: x.shape, data: x.data as Float32Array },
      trajectory: { dtype: 'F32', shape: [n - 1, ch, h, w], data: (z.data as Float32Array).slice(0, (n - 1) * ch * h * w) },
    }, { format: 'pix2pix-zero', kind: 'inversion', meta: g.metadata.meta! });
    g.close();
    expect(() => Inversion.load(bad)).to.throw(/bad-inv\.safetensors: trajectory has shape \[5, 4, 4, 4\], expected \[6, 4, 4, 4\]/);
  });
});
