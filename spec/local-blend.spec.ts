/**
 * Local blending (Prompt-to-Prompt's LocalBlend as a step hook) against its reference on diffusers' components
 * (tools/reference/direct_inversion.py's LocalBlend, fixtures by local_blend_outputs.py): the token positions, every
 * step's mask and the edited latents, with and without Direct Inversion, with and without CFG, on SD 1.x and the
 * v-prediction SD 2.x-style pipeline, for an attribute word (the mask of the thing after it), and the overlay of the
 * decoded edit on the input image outside the last mask; then through the facade and the CLI, and the hook chain's
 * bookkeeping.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { readStableDiffusionFolder } from '../lib/io/model-folder.js';
import { type ModelPorts, loadModelPorts } from '../lib/editing/adapters.js';
import { directInversion } from '../lib/editing/direct-inversion.js';
import { CrossAttentionGuidedSampler } from '../lib/editing/guided-sampler.js';
import { localBlend, wordTokenPositions } from '../lib/editing/local-blend.js';
import { chainStepEndHooks } from '../lib/editing/step-end-hooks.js';
import { saveInversion } from '../lib/editing/artefacts.js';
import { overlayOutsideMask } from '../lib/editing/overlay.js';
import { type RgbImage, readImage, tensorToImage } from '../lib/io/image.js';
import type { StepEndHook, StepEndState } from '../lib/editing/services.js';
import { ClipTokenizer } from '../lib/tokenizers/clip-tokenizer.js';
import { ConfigSchedulerFactory } from '../lib/schedulers/factory.js';
import { Inversion, Pix2PixZero } from '../lib/pix2pix-zero.js';
import { FIXTURES, ROOT, TINY_SD, expectClose, forEachBackend, readReference, relativeError } from './helpers/tensors.js';
import { cli } from './helpers/cli.js';
import { type SentenceFolder, readSavedLatents, sentenceFolder } from './helpers/edit-files.js';

const DIR = path.join(FIXTURES, 'reference', 'local_blend');
interface Case {
  guidance_scale: number;
  xa: number;
  size: number;
  direct: boolean;
  words: string[];
  threshold: number;
  tokens: number[];
  dilation?: number;
  self_attention?: number;
  cross_attention?: number;
  /** Prompt-to-Prompt's start_blend: the fraction of the first steps left unblended. */
  blend_start?: number;
  model?: string;
  /** The case's own caption (default meta.caption). */
  caption?: string;
  /** Words among `words` that are attributes: their mask is the next word's. */
  attributes?: string[];
  /** The fixture also has the decoded edit overlaid on the input image outside the last mask. */
  overlay?: boolean;
}
const meta = JSON.parse(fs.readFileSync(path.join(DIR, 'cases.json'), 'utf8')) as {
  caption: string;
  source: string[];
  target: string[];
  steps: number;
  images: Record<string, string>;
  cases: Record<string, Case>;
};
const nhwc = (t: tf.Tensor): tf.Tensor4D => tf.transpose(t, [0, 2, 3, 1]) as tf.Tensor4D;
const latentsOf = (t: tf.Tensor): tf.Tensor4D[] => tf.tidy(() => tf.split(nhwc(t), t.shape[0]!, 0) as tf.Tensor4D[]);
/** A [1, 3, H, W] image in [-1, 1] as 0..255 RGB (as the facade writes it). */
const imageOf = (t: tf.Tensor): RgbImage => {
  const x = nhwc(t);
  try {
    return tensorToImage(x);
  } finally {
    x.dispose();
  }
};
const modelOf = (c: Case): string => (c.model !== undefined ? path.join(ROOT, c.model) : TINY_SD);

describe('wordTokenPositions', function () {
  const caption = ['a</w>', 'red</w>', 'ball</w>', 'and</w>', 'a</w>', 'red</w>', 'car</w>'];
  it('finds every occurrence, 1-based after the start token', function () {
    expect(wordTokenPositions(caption, ['red</w>'])).to.deep.equal([2, 6]);
    expect(wordTokenPositions(caption, ['a</w>', 'red</w>'])).to.deep.equal([1, 2, 5, 6]);
    expect(wordTokenPositions(caption, ['cat</w>'])).to.deep.equal([]);
    expect(wordTokenPositions(caption, [])).to.deep.equal([]);
  });
  it('adds the next token for an attribute, and never one past the caption or the positions limit', function () {
    expect(wordTokenPositions(caption, ['red</w>'], { withNext: true })).to.deep.equal([2, 3, 6, 7]);
    expect(wordTokenPositions(caption, ['car</w>'], { withNext: true })).to.deep.equal([7]);
    expect(wordTokenPositions(caption, ['red</w>'], { withNext: true, maxPositions: 7 })).to.deep.equal([2, 3, 6]);
  });
  it('takes the next token instead of the word with nextOnly (the thing an attribute is said of), the word itself where it ends the caption', function () {
    expect(wordTokenPositions(caption, ['red</w>'], { nextOnly: true })).to.deep.equal([3, 7]);
    expect(wordTokenPositions(caption, ['a</w>', 'red</w>'], { nextOnly: true })).to.deep.equal([3, 7]);
    expect(wordTokenPositions(caption, ['car</w>'], { nextOnly: true })).to.deep.equal([7]);
    expect(wordTokenPositions(caption, ['red</w>'], { nextOnly: true, maxPositions: 7 })).to.deep.equal([3]);
  });
  it('agrees with the reference on the fixtures\' captions (our CLIP tokenizer against transformers\')', function () {
    for (const [name, c] of Object.entries(meta.cases)) {
      const tok = ClipTokenizer.fromFolder(readStableDiffusionFolder(modelOf(c)).tokenizer);
      const found = new Set<number>();
      const caption = tok.tokenize(c.caption ?? meta.caption);
      for (const w of c.words) for (const p of wordTokenPositions(caption, tok.tokenize(w), { nextOnly: c.attributes?.includes(w), maxPositions: 77 })) found.add(p);
      expect([...found].sort((a, b) => a - b), name).to.deep.equal(c.tokens);
    }
  });
});

forEachBackend('local blending vs its reference on diffusers', function () {
  for (const [name, c] of Object.entries(meta.cases)) {
    const model = modelOf(c);
    describe(`${name} (${path.basename(model)}, ${c.size} px, guidance ${c.guidance_scale}, ${c.direct ? 'with' : 'without'} Direct Inversion, ${c.tokens.length > 0 ? `blend threshold ${c.threshold}` : 'no blend'}${c.dilation !== undefined ? `, dilation ${c.dilation}` : ''}${c.self_attention !== undefined ? `, self-attention ${c.self_attention}` : ''}${c.cross_attention !== undefined ? `, cross-attention ${c.cross_attention}` : ''}${c.blend_start !== undefined ? `, blend from ${c.blend_start} of the steps` : ''})`, function () {
      let ref: Record<string, tf.Tensor>;
      let ports: ModelPorts;
      let trajectory: tf.Tensor4D[];
      const schedulers = new ConfigSchedulerFactory(readStableDiffusionFolder(model).schedulerConfig);
      const T = meta.steps;
      before(async function () {
        ref = readReference(path.join(DIR, `${name}.safetensors`));
        trajectory = latentsOf(ref.trajectory!);
        ports = await loadModelPorts(readStableDiffusionFolder(model));
      });
      after(function () {
        tf.dispose([...Object.values(ref), ...trajectory]);
        ports.dispose();
      });
      const edit = (hook: StepEndHook | undefined) => {
        const caption = ref.caption_embeds as tf.Tensor3D;
        const hooks = [...(c.direct ? [directInversion(trajectory)] : []), ...(hook !== undefined ? [hook] : [])];
        return new CrossAttentionGuidedSampler(ports.denoiser, schedulers).sample(trajectory[T]!, { caption, negative: caption, direction: ref.direction as tf.Tensor3D }, {
          steps: T,
          guidanceScale: c.guidance_scale,
          xaGuidance: c.xa,
          onStepEnd: hooks.length > 0 ? chainStepEndHooks(...hooks) : undefined,
          selfAttentionInjection: c.self_attention,
          crossAttentionInjection: c.cross_attention,
        });
      };

      it('every step\'s mask equal, the edited latents within 1e-3, nothing leaked', async function () {
        const start = tf.memory().numTensors;
        let masks = 0;
        const r = await edit(
          c.tokens.length === 0 ? undefined : localBlend({
            tokens: c.tokens,
            threshold: c.threshold,
            dilation: c.dilation,
            start: c.blend_start,
            onMask: (step, mask) => {
              const expected = ref[`mask.step${step}`]!;
              expect(Array.from(mask.dataSync()), `mask of step ${step}`).to.deep.equal(Array.from(expected.dataSync()));
              masks++;
            },
          }),
        );
        // a mask for each blended step: from floor(start * T) on (the reference's int(start * T))
        expect(masks).to.equal(c.tokens.length === 0 ? 0 : T - Math.floor((c.blend_start ?? 0) * T));
        tf.tidy(() => {
          expectClose(r.edited, nhwc(ref.edited_latents!), 1e-3, `${name} blended edit`);
          // The test can tell the blend from the plain edit: they differ by far more than the tolerance.
          expect(relativeError(nhwc(ref.unblended_latents!), nhwc(ref.edited_latents!)), 'unblended vs blended').to.be.above(1e-2);
        });
        tf.dispose([r.edited, r.reconstruction]);
        expect(tf.memory().numTensors).to.equal(start);
      });

      if (c.overlay === true) {
        it('the overlay of the reference\'s decoded edit on the input image within 1e-5; it differs from both', function () {
          const start = tf.memory().numTensors;
          tf.tidy(() => {
            const decoded = nhwc(ref.decoded_image!);
            const input = nhwc(ref.input_image!);
            const got = overlayOutsideMask(decoded, input, nhwc(ref[`mask.step${T - 1}`]!));
            expectClose(got, nhwc(ref.overlaid_image!), 1e-5, 'overlay');
            expect(relativeError(got, decoded), 'overlay vs the decoded edit').to.be.above(1e-2);
            expect(relativeError(got, input), 'overlay vs the input').to.be.above(1e-2);
          });
          expect(tf.memory().numTensors).to.equal(start);
        });
      }
    });
  }
});

/** The largest difference of two images' 0..255 values, and how many values differ at all. */
function pixelDiff(a: RgbImage, b: RgbImage): { max: number; count: number } {
  expect([a.width, a.height]).to.deep.equal([b.width, b.height]);
  let max = 0;
  let count = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i]! - b.data[i]!);
    if (d > 0) count++;
    max = Math.max(max, d);
  }
  return { max, count };
}

describe('local blending through the facade and the CLI', function () {
  const c = meta.cases.lb_di!;
  const image = path.join(ROOT, meta.images[String(c.size)]!);
  let files: SentenceFolder;
  let dir: string;
  let ref: Record<string, tf.Tensor>;
  before(function () {
    files = sentenceFolder('p2pz-lb-', meta.source, meta.target);
    dir = files.dir;
    ref = readReference(path.join(DIR, 'lb_di.safetensors'));
  });
  after(function () {
    tf.dispose(Object.values(ref));
    files.remove();
  });

  it('the facade (localBlend on the direction\'s source word, with Direct Inversion) matches the reference; a caption without the word edits unblended and says so', async function () {
    const notices: string[] = [];
    const p2p = await Pix2PixZero.load({ model: TINY_SD, backend: 'wasm', cacheDir: false, onNotice: (m) => notices.push(m) });
    try {
      const start = tf.memory().numTensors;
      const d = await p2p.direction({ name: 'cat', sentences: meta.source }, { name: 'dog', sentences: meta.target });
      const opts = { caption: meta.caption, size: c.size, steps: meta.steps, numRegSteps: 0, directInversion: true } as const;
      const r = await p2p.edit(image, d, { ...opts, localBlend: { threshold: c.threshold } });
      tf.tidy(() => expectClose(r.latents, nhwc(ref.edited_latents!), 1e-3, 'blended edit (facade)'));
      expect(notices).to.deep.equal([]);
      // The same inversion, another word that the caption lacks: no blend, and a notice.
      const other = await p2p.edit(r.inversion, d, { directInversion: true, localBlend: { words: ['zebra'] } });
      const unblended = await p2p.edit(r.inversion, d, { directInversion: true });
      expect(relativeError(other.latents, unblended.latents), 'no word found: the unblended edit').to.equal(0);
      expect(notices).to.have.length(1);
      expect(notices[0]).to.match(/local blending: the caption 'a photo of a cat sitting on a sofa' names none of 'zebra': edited without it \(name the object with localBlend\.words, --blend-words\)/);
      // A caller's onStepEnd runs after the blend and sees its result.
      const seen: number[] = [];
      const chained = await p2p.edit(r.inversion, d, { directInversion: true, localBlend: { threshold: c.threshold }, onStepEnd: (s: StepEndState) => void seen.push(s.step) });
      expect(seen).to.deep.equal([0, 1, 2, 3, 4]);
      expect(relativeError(chained.latents, r.latents), 'onStepEnd after the blend changes nothing').to.equal(0);
      await expectRejects(p2p.edit(r.inversion, d, { localBlend: { threshold: 1.5 } }), /local blend threshold must be a number in \[0, 0\.99\], got 1\.5/);
      await expectRejects(p2p.edit(r.inversion, d, { localBlend: { words: [] } }), /localBlend\.words must be non-empty words/);
      await expectRejects(p2p.edit(r.inversion, d, { localBlend: { dilation: 1.5 } }), /local blend dilation must be an integer in \[0, 64\] latent pixels, got 1\.5/);
      await expectRejects(p2p.edit(r.inversion, d, { localBlend: { start: -0.1 } }), /local blend start must be a number in \[0, 1\] \(a fraction of the steps\), got -0\.1/);
      // The blend from a later step (lb_di_start: the same inputs) through the facade.
      const late = await p2p.edit(r.inversion, d, { directInversion: true, localBlend: { threshold: c.threshold, start: meta.cases.lb_di_start!.blend_start } });
      const lateRef = readReference(path.join(DIR, 'lb_di_start.safetensors'));
      tf.tidy(() => expectClose(late.latents, nhwc(lateRef.edited_latents!), 1e-3, 'late blend (facade)'));
      expect(relativeError(late.latents, r.latents), 'a late blend is another edit').to.be.above(1e-3);
      tf.dispose([late.latents, ...Object.values(lateRef)]);
      tf.dispose([r.latents, other.latents, unblended.latents, chained.latents, d.tensor]);
      r.inversion.dispose();
      expect(tf.memory().numTensors).to.equal(start);
    } finally {
      p2p.dispose();
    }
  });

  it('the facade blends an attribute word on the thing after it, undilated (a colour edit keeps the outline), as the reference', async function () {
    const a = meta.cases.lb_attribute!;
    const p2p = await Pix2PixZero.load({ model: TINY_SD, backend: 'wasm', cacheDir: false });
    try {
      const start = tf.memory().numTensors;
      const attributeRef = readReference(path.join(DIR, 'lb_attribute.safetensors'));
      // The direction's source word is "red", an attribute: its mask is that of "cat", the word after it, not dilated.
      const d = await p2p.direction({ name: 'red', sentences: meta.source }, { name: 'blue', sentences: meta.target });
      const opts = { directInversion: true, numRegSteps: 0 } as const;
      const attribute = await p2p.edit(image, d, { ...opts, caption: a.caption, size: a.size, steps: meta.steps, localBlend: { threshold: a.threshold } });
      tf.tidy(() => expectClose(attribute.latents, nhwc(attributeRef.edited_latents!), 1e-3, 'attribute blend (facade)'));
      const thing = await p2p.edit(attribute.inversion, d, { ...opts, localBlend: { words: ['cat'], threshold: a.threshold, dilation: 0 } });
      expect(relativeError(attribute.latents, thing.latents), 'red = cat, undilated').to.equal(0);
      // A thing word gets the default dilation, another edit: the test can tell them apart.
      const dilated = await p2p.edit(attribute.inversion, d, { ...opts, localBlend: { words: ['cat'], threshold: a.threshold } });
      expect(relativeError(attribute.latents, dilated.latents), 'cat, dilated').to.be.above(1e-3);
      tf.dispose([attribute.latents, thing.latents, dilated.latents, d.tensor, ...Object.values(attributeRef)]);
      attribute.inversion.dispose();
      expect(tf.memory().numTensors).to.equal(start);
    } finally {
      p2p.dispose();
    }
  });

  it('the facade\'s overlay (localBlend.overlay) is the reference\'s image within one level, the input\'s own pixels outside the mask, from a saved inversion too; refused for one saved without its image', async function () {
    const o = meta.cases.lb_di_overlay!;
    const p2p = await Pix2PixZero.load({ model: TINY_SD, backend: 'wasm', cacheDir: false });
    try {
      const start = tf.memory().numTensors;
      const want = readReference(path.join(DIR, 'lb_di_overlay.safetensors'));
      const d = await p2p.direction({ name: 'cat', sentences: meta.source }, { name: 'dog', sentences: meta.target });
      const r = await p2p.edit(image, d, { directInversion: true, numRegSteps: 0, caption: meta.caption, size: o.size, steps: meta.steps, localBlend: { threshold: o.threshold, overlay: true } });
      tf.tidy(() => expectClose(r.latents, nhwc(want.edited_latents!), 1e-3, 'blended edit (facade, overlay)'));
      const expected = imageOf(want.overlaid_image!);
      const diff = pixelDiff(r.image, expected);
      expect(diff.max, 'overlaid image vs the reference (0..255)').to.be.at.most(1);
      // Where the resized mask is 0 the pixels are the input's own, exactly; the plain blend's are its VAE round trip.
      const input = await readImage(image);
      const m = tf.tidy(() => tf.image.resizeBilinear(nhwc(want[`mask.step${meta.steps - 1}`]!) as tf.Tensor4D, [o.size, o.size], false, true).dataSync());
      const plain = await p2p.edit(r.inversion, d, { directInversion: true, localBlend: { threshold: o.threshold } });
      let outside = 0;
      let plainChanged = 0;
      for (let p = 0; p < m.length; p++) {
        if (m[p] !== 0) continue;
        outside++;
        for (let k = 0; k < 3; k++) {
          expect(r.image.data[3 * p + k], `pixel ${p} outside the mask`).to.equal(input.data[3 * p + k]);
          if (plain.image.data[3 * p + k] !== input.data[3 * p + k]) plainChanged++;
        }
      }
      expect(outside, 'pixels outside the mask').to.be.above(0);
      expect(outside, 'pixels outside the mask').to.be.below(m.length);
      expect(plainChanged, 'values the plain blend changes outside the mask').to.be.above(0);
      // An inversion keeps the image, in memory and in its file: the same edit from either; a file of an earlier
      // version (no image) is refused.
      const again = await p2p.edit(r.inversion, d, { directInversion: true, localBlend: { threshold: o.threshold, overlay: true } });
      expect(pixelDiff(again.image, r.image).count, 'the overlay from the inversion').to.equal(0);
      const file = path.join(dir, 'overlay-inversion.safetensors');
      r.inversion.save(file);
      const loaded = Inversion.load(file);
      const fromFile = await p2p.edit(loaded, d, { directInversion: true, localBlend: { threshold: o.threshold, overlay: true } });
      expect(pixelDiff(fromFile.image, r.image).count, 'the overlay from the saved inversion').to.equal(0);
      const oldFile = path.join(dir, 'overlay-inversion-old.safetensors');
      saveInversion(oldFile, r.inversion.latent, r.inversion.meta, r.inversion.trajectory);
      const old = Inversion.load(oldFile);
      expect(old.image).to.equal(undefined);
      await expectRejects(p2p.edit(old, d, { localBlend: { overlay: true } }), /localBlend\.overlay .* this inversion does not have them \(saved by an earlier version\)/);
      tf.dispose([again.latents, fromFile.latents]);
      loaded.dispose();
      old.dispose();
      await expectRejects(p2p.edit(r.inversion, d, { localBlend: { overlay: 'yes' as unknown as boolean } }), /localBlend\.overlay must be true or false, got "yes"/);
      tf.dispose([r.latents, plain.latents, d.tensor, ...Object.values(want)]);
      r.inversion.dispose();
      expect(tf.memory().numTensors).to.equal(start);
    } finally {
      p2p.dispose();
    }
  });

  it('the CLI: edit --direct-inversion --local-blend --blend-threshold (and --blend-overlay) matches the reference; misused options are refused', async function () {
    const lat = path.join(dir, 'cli-latents.safetensors');
    const base = files.options;
    const args = ['edit', image, '--caption', meta.caption, ...base, '--steps', String(meta.steps), '--size', String(c.size), '--reg-steps', '0', '--direct-inversion'];
    const r = cli([...args, '--local-blend', '--blend-words', 'cat', '--blend-threshold', String(c.threshold), '--out', path.join(dir, 'lb.png'), '--save-latents', lat]);
    expect(r.code, r.err).to.equal(0);
    const got = readSavedLatents(lat);
    expectClose(got, ref.edited_latents!, 1e-3, 'blended edit (CLI)');
    got.dispose();
    // With self- and cross-attention injection in the first 3 of the 5 steps, and with the blend from the third step
    // on (the si_di_lb, ci_di_lb and lb_di_start cases: the same inputs).
    const variant = (name: string, flag: string, value: number | undefined, what: string): void => {
      expect(value, `${name}'s ${flag}`).to.be.a('number');
      const want = readReference(path.join(DIR, `${name}.safetensors`));
      const run = cli([...args, '--local-blend', '--blend-threshold', String(c.threshold), flag, String(value), '--out', path.join(dir, `${name}.png`), '--save-latents', lat]);
      expect(run.code, run.err).to.equal(0);
      const edited = readSavedLatents(lat);
      expectClose(edited, want.edited_latents!, 1e-3, `${what} edit (CLI)`);
      tf.dispose([edited, ...Object.values(want)]);
    };
    variant('si_di_lb', '--self-attention', meta.cases.si_di_lb!.self_attention, 'self-attention injection');
    variant('ci_di_lb', '--cross-attention', meta.cases.ci_di_lb!.cross_attention, 'cross-attention injection');
    variant('lb_di_start', '--blend-start', meta.cases.lb_di_start!.blend_start, 'late blend');
    const badCross = cli([...args, '--cross-attention', '1.5', '--out', path.join(dir, 'never.png')]);
    expect(badCross.code).to.equal(2);
    expect(badCross.err).to.match(/--cross-attention/);
    const lone = cli([...args, '--blend-threshold', '0.5', '--out', path.join(dir, 'never.png')]);
    expect(lone.code).to.equal(2);
    expect(lone.err).to.match(/--blend-words, --blend-threshold, --blend-dilation, --blend-start and --blend-overlay need --local-blend/);
    const loneOverlay = cli([...args, '--blend-overlay', '--out', path.join(dir, 'never.png')]);
    expect(loneOverlay.code).to.equal(2);
    expect(loneOverlay.err).to.match(/need --local-blend/);
    // The overlay: the reference's image within one level; refused with a saved inversion.
    const inv = path.join(dir, 'cli-inversion.safetensors');
    const ov = cli([...args, '--local-blend', '--blend-threshold', String(c.threshold), '--blend-overlay', '--out', path.join(dir, 'overlay.png'), '--save-inversion', inv]);
    expect(ov.code, ov.err).to.equal(0);
    const overlayRef = readReference(path.join(DIR, 'lb_di_overlay.safetensors'));
    const expected = imageOf(overlayRef.overlaid_image!);
    tf.dispose(Object.values(overlayRef));
    const png = await readImage(path.join(dir, 'overlay.png'));
    expect(pixelDiff(png, expected).max, 'overlaid image (CLI) vs the reference').to.be.at.most(1);
    // The saved inversion keeps the image: the same overlay from it.
    const again = cli(['edit', '--inversion', inv, ...base, '--direct-inversion', '--local-blend', '--blend-threshold', String(c.threshold), '--blend-overlay', '--out', path.join(dir, 'overlay2.png')]);
    expect(again.code, again.err).to.equal(0);
    expect(pixelDiff(await readImage(path.join(dir, 'overlay2.png')), png).count, 'the overlay from --inversion').to.equal(0);
    const loneStart = cli([...args, '--blend-start', '0.2', '--out', path.join(dir, 'never.png')]);
    expect(loneStart.code).to.equal(2);
    expect(loneStart.err).to.match(/need --local-blend/);
    const badStart = cli([...args, '--local-blend', '--blend-start', '1.5', '--out', path.join(dir, 'never.png')]);
    expect(badStart.code).to.equal(2);
    expect(badStart.err).to.match(/--blend-start/);
    const badDilation = cli([...args, '--local-blend', '--blend-dilation', '-1', '--out', path.join(dir, 'never.png')]);
    expect(badDilation.code).to.equal(2);
    expect(badDilation.err).to.match(/--blend-dilation/);
    const bad = cli([...args, '--local-blend', '--blend-threshold', '2', '--out', path.join(dir, 'never.png')]);
    expect(bad.code).to.equal(2);
    expect(bad.err).to.match(/--blend-threshold/);
    expect(fs.existsSync(path.join(dir, 'never.png'))).to.equal(false);
  });
});

describe('chainStepEndHooks', function () {
  it('runs the hooks in order on the corrected latents and disposes what a later hook replaced', function () {
    const start = tf.memory().numTensors;
    const reference = tf.zeros([1, 2, 2, 1]) as tf.Tensor4D;
    const edit = tf.ones([1, 2, 2, 1]) as tf.Tensor4D;
    const maps = new Map<string, tf.Tensor3D>();
    const state: StepEndState = { step: 0, steps: 1, timestep: 1, reference, edit, referenceMaps: maps, guidanceBatch: 1 };
    const order: string[] = [];
    const hook = chainStepEndHooks(
      (s) => {
        order.push(`a:${s.edit.dataSync()[0]}`);
        return { edit: tf.add(s.edit, 1) as tf.Tensor4D };
      },
      () => {
        order.push('b');
      },
      (s) => {
        order.push(`c:${s.edit.dataSync()[0]}`);
        return { edit: tf.mul(s.edit, 10) as tf.Tensor4D, reference: tf.add(s.reference, 5) as tf.Tensor4D };
      },
    );
    const fix = hook(state) as { edit: tf.Tensor4D; reference: tf.Tensor4D };
    expect(order).to.deep.equal(['a:1', 'b', 'c:2']);
    expect(Array.from(fix.edit.dataSync())).to.deep.equal([20, 20, 20, 20]);
    expect(Array.from(fix.reference.dataSync())).to.deep.equal([5, 5, 5, 5]);
    // the intermediate (edit + 1) is gone: what is left is the inputs and the two results
    expect(tf.memory().numTensors).to.equal(start + 4);
    tf.dispose([reference, edit, fix.edit, fix.reference]);
    // a hook that throws frees what the earlier ones made
    const failing = chainStepEndHooks((s) => ({ edit: tf.add(s.edit, 1) as tf.Tensor4D }), () => {
      throw new Error('boom');
    });
    const r2 = tf.zeros([1, 2, 2, 1]) as tf.Tensor4D;
    const e2 = tf.zeros([1, 2, 2, 1]) as tf.Tensor4D;
    expect(() => failing({ ...state, reference: r2, edit: e2 })).to.throw('boom');
    tf.dispose([r2, e2]);
    expect(tf.memory().numTensors).to.equal(start);
  });
});

async function expectRejects(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect((err as Error).message).to.match(pattern);
    return;
  }
  expect.fail(`expected a rejection matching ${pattern}`);
}
