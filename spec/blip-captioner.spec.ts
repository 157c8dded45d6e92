/**
 * The BLIP captioner service, the `caption` command and the pipeline facade's `caption()`, on the tiny fixture
 * BLIP: captions equal to transformers' (generate.json from tools/reference/blip_outputs.py), no tensor left
 * behind, and errors that name the input.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { BlipCaptioner, captionText } from '../lib/editing/captioner.js';
import { readImage } from '../lib/io/image.js';
import { Pix2PixZero } from '../lib/pix2pix-zero.js';
import { cli } from './helpers/cli.js';
import { FIXTURES, TINY_SD, forEachBackend } from './helpers/tensors.js';

const TINY_BLIP = path.join(FIXTURES, 'models', 'tiny-blip');
const GEN = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'reference', 'blip', 'generate.json'), 'utf8')) as {
  prompt: string;
  results: Record<string, Record<string, { ids: number[]; caption: string }>>;
};
const image = (name: string): string => path.join(FIXTURES, 'images', `${name}.png`);

async function rgbTensor(name: string): Promise<tf.Tensor3D> {
  const img = await readImage(image(name));
  return tf.tensor3d(Float32Array.from(img.data), [img.height, img.width, 3]);
}

forEachBackend('BLIP captioner', () => {
  let captioner: BlipCaptioner;
  before(function () {
    captioner = BlipCaptioner.load(TINY_BLIP);
  });
  after(function () {
    captioner?.dispose();
  });

  it('captions [H, W, 3] 0..255 tensors as transformers (greedy, beam, prompt), leaving no tensor behind', async function () {
    for (const name of ['rgb', 'grey', 'palette']) {
      const t = await rgbTensor(name);
      const before = tf.memory().numTensors;
      const ref = GEN.results[name]!;
      // generate()'s default, max_length 20, runs on past the reference's 12 new tokens along the same greedy path.
      const long = await captioner.caption(t);
      expect(long.startsWith(ref['greedy']!.caption.trim()), long).to.equal(true);
      expect(long.length).to.be.greaterThan(ref['greedy']!.caption.trim().length);
      expect(await captioner.caption(t, { maxNewTokens: 12 })).to.equal(ref['greedy']!.caption.trim());
      expect(await captioner.caption(t, { numBeams: 3, maxNewTokens: 12, prompt: GEN.prompt })).to.equal(ref['beam3.prompt']!.caption.trim());
      expect(await captioner.caption(t, { numBeams: 3, maxNewTokens: 12, repetitionPenalty: 1.3 })).to.equal(ref['beam3_rep']!.caption.trim());
      expect(tf.memory().numTensors, 'tensors after four captions').to.equal(before);
      t.dispose();
    }
  });

  it("strips the prompt from the whole decoded text, as transformers + the authors' code do (a first '##' piece joins the prompt)", function () {
    const tok = captioner.tokenizer;
    const bos = captioner.model.config.text.bosTokenId;
    const prompt = [bos, ...tok.encode('a picture of').slice(1, -1)];
    const piece = tok.tokenId('##s')!;
    const word = tok.encode('a', false)[0]!;
    expect(captionText(tok, [...prompt, piece, word], prompt.length, true)).to.equal(tok.decode([...prompt, piece, word]).slice('a picture of'.length).trim());
    expect(captionText(tok, [...prompt, piece, word], prompt.length, true)).to.match(/^s a$/);
    expect(captionText(tok, [...prompt, word, piece], prompt.length, true)).to.equal('as');
    expect(captionText(tok, [...prompt, word], prompt.length, false)).to.equal('a picture of a');
    expect(captionText(tok, [bos, word, word], 1, true)).to.equal('a a');
  });

  it('rejects bad inputs by name, and aborts', async function () {
    const bad = tf.zeros([4, 4]) as unknown as tf.Tensor3D;
    await captioner.caption(bad).then(
      () => expect.fail('no error'),
      (err: Error) => expect(err.message).to.match(/caption image: expected a \[height, width, 3\] RGB tensor/),
    );
    bad.dispose();
    const t = await rgbTensor('rgb');
    await captioner.caption(t, { numBeams: 0 }).then(
      () => expect.fail('no error'),
      (err: Error) => expect(err.message).to.match(/numBeams must be an integer >= 1/),
    );
    const ac = new AbortController();
    ac.abort(new Error('stop now'));
    await captioner.caption(t, { signal: ac.signal }).then(
      () => expect.fail('no error'),
      (err: Error) => expect(err.message).to.equal('stop now'),
    );
    t.dispose();
  });
});

describe('pix2pix-zero caption', function () {
  it('prints the caption, and JSON with the ids', function () {
    const plain = cli(['caption', image('rgb'), '--captioner', TINY_BLIP, '--max-new-tokens', '12', '--backend', 'cpu']);
    expect(plain.code, plain.err).to.equal(0);
    expect(plain.out.trim()).to.equal(GEN.results.rgb!['greedy']!.caption.trim());
    const json = cli(['caption', image('rgb'), '--captioner', TINY_BLIP, '--beams', '3', '--max-new-tokens', '12', '--prompt', GEN.prompt, '--json']);
    expect(json.code, json.err).to.equal(0);
    const r = JSON.parse(json.out) as { caption: string; ids: number[] };
    expect(r.ids).to.deep.equal(GEN.results.rgb!['beam3.prompt']!.ids);
    expect(r.caption).to.equal(GEN.results.rgb!['beam3.prompt']!.caption.trim());
  });

  it('explains a missing --captioner, a bad option and a missing image', function () {
    expect(cli(['caption', image('rgb')]).code).to.equal(2);
    const beams = cli(['caption', image('rgb'), '--captioner', TINY_BLIP, '--beams', '0']);
    expect(beams.code).to.equal(2);
    expect(beams.err).to.match(/beams/);
    const missing = cli(['caption', 'no-such.png', '--captioner', TINY_BLIP]);
    expect(missing.code).to.equal(1);
    expect(missing.err).to.match(/no-such\.png/);
  });
});

describe('Pix2PixZero.caption with a BLIP folder', function () {
  it('captions through the facade', async function () {
    if (!fs.existsSync(TINY_SD)) this.skip();
    const ref = GEN.results.rgb!['beam3.prompt']!.caption.trim();
    expect(ref.startsWith(`${GEN.prompt} `)).to.equal(true);
    const p = await Pix2PixZero.load({
      model: TINY_SD,
      captioner: TINY_BLIP,
      backend: 'cpu',
      captionOptions: { prompt: GEN.prompt, stripPrompt: true, numBeams: 3, maxNewTokens: 12 },
    });
    try {
      // The authors' way: the prefix is stripped from the caption.
      expect(await p.caption(image('rgb'))).to.equal(ref.slice(GEN.prompt.length + 1));
    } finally {
      p.dispose();
    }
  });
});

describe("a pipeline folder's own captioner/", function () {
  let dir: string;
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sd-with-captioner-'));
    fs.cpSync(TINY_SD, dir, { recursive: true });
    fs.cpSync(TINY_BLIP, path.join(dir, 'captioner'), { recursive: true });
  });
  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is used by default, loaded only at the first caption; captioner: false turns it off', async function () {
    const plain = await Pix2PixZero.load({ model: TINY_SD, backend: 'cpu' });
    const withoutBlip = tf.memory().numTensors;
    plain.dispose();
    const before = tf.memory().numTensors;
    const p = await Pix2PixZero.load({ model: dir, backend: 'cpu', captionOptions: { maxNewTokens: 12 } });
    try {
      expect(tf.memory().numTensors - before, 'BLIP weights loaded before any caption').to.equal(withoutBlip - before);
      expect(await p.caption(image('rgb'))).to.equal(GEN.results.rgb!['greedy']!.caption.trim());
      expect(tf.memory().numTensors).to.be.greaterThan(withoutBlip);
    } finally {
      p.dispose();
    }
    expect(tf.memory().numTensors, 'tensors after dispose').to.equal(before);
    const off = await Pix2PixZero.load({ model: dir, backend: 'cpu', captioner: false });
    try {
      await off.caption(image('rgb')).then(
        () => expect.fail('no error'),
        (err: Error) => expect(err.message).to.match(/no captioner loaded/),
      );
    } finally {
      off.dispose();
    }
  });

  it('releaseAfterUse frees the captioner after each caption and the text encoder before the UNet work, with the same results', async function () {
    const before = tf.memory();
    const sentences = { source: ['a photo of a cat', 'a cat on a sofa'], target: ['a photo of a dog', 'a dog on a sofa'] };
    const source = { name: 'cat', sentences: sentences.source };
    const target = { name: 'dog', sentences: sentences.target };
    const settings = { size: 32, steps: 2, numRegSteps: 0, reconstruction: false };
    // `check` gets the bytes of the models alone (the direction's own tensor left out).
    const run = async (p: Pix2PixZero, check: (stage: string, models: number) => void): Promise<{ caption: string; direction: number[]; edited: number[] }> => {
      const caption = await p.caption(image('rgb'));
      check('caption', tf.memory().numBytes);
      const d = await p.direction(source, target);
      const own = d.tensor.size * 4;
      check('direction', tf.memory().numBytes - own);
      const r = await p.edit(image('rgb'), d, settings);
      const results = new Set([r.latents, r.inversion.latent, ...(r.inversion.trajectory ?? []), ...(r.inversion.image !== undefined ? [r.inversion.image] : [])]);
      check('edit', tf.memory().numBytes - own - [...results].reduce((a, t) => a + t.size * 4, 0));
      const out = { caption, direction: [...d.tensor.dataSync()], edited: [...r.latents.dataSync()] };
      tf.dispose([d.tensor, r.latents]);
      r.inversion.dispose();
      return out;
    };
    const keep = await Pix2PixZero.load({ model: dir, backend: 'cpu', captionOptions: { maxNewTokens: 12 }, cacheDir: false });
    let kept: Awaited<ReturnType<typeof run>>;
    try {
      kept = await run(keep, () => undefined);
    } finally {
      keep.dispose();
    }
    const lean = await Pix2PixZero.load({ model: dir, backend: 'cpu', captionOptions: { maxNewTokens: 12 }, cacheDir: false, releaseAfterUse: true });
    try {
      // Loaded: the UNet, the VAE and the text encoder (kept from the load's checks until it is released).
      const loaded = tf.memory().numBytes;
      const bytes: Record<string, number> = {};
      for (let i = 0; i < 2; i++) {
        const got = await run(lean, (stage, models) => {
          bytes[`${stage} ${i + 1}`] = models;
        });
        expect(got, `run ${i + 1} against the models kept loaded`).to.deep.equal(kept);
      }
      // BLIP never outlives a caption; the encoder lives through the direction, and the edit frees it.
      expect(bytes['caption 1'], 'after the first caption').to.equal(loaded);
      expect(bytes['direction 1'], 'after the first direction').to.equal(loaded);
      expect(bytes['edit 1'], 'after the first edit').to.be.lessThan(loaded);
      expect(bytes['caption 2'], 'after the second caption').to.equal(bytes['edit 1']);
      expect(bytes['direction 2'], 'after the second direction (the encoder read again)').to.equal(loaded);
      expect(bytes['edit 2'], 'after the second edit').to.equal(bytes['edit 1']);
    } finally {
      lean.dispose();
    }
    expect(tf.memory().numTensors, 'tensors after dispose').to.equal(before.numTensors);
  });

  it('captions through the CLI when no caption is given, and --no-captioner turns it off', function () {
    const out = path.join(dir, 'edited.png');
    const r = cli(['invert', image('rgb'), '--model', dir, '--size', '32', '--steps', '2', '--reg-steps', '0', '--out', path.join(dir, 'inv.safetensors'), '--json', '--backend', 'cpu']);
    expect(r.code, r.err).to.equal(0);
    expect((JSON.parse(r.out) as { caption: string }).caption.length).to.be.greaterThan(0);
    const off = cli(['edit', image('rgb'), '--model', dir, '--no-captioner', '--task', 'cat2dog', '--size', '32', '--reg-steps', '0', '--steps', '2', '--out', out, '--no-cache']);
    expect(off.code).to.equal(1);
    expect(off.err).to.match(/no captioner loaded/);
    expect(fs.existsSync(out)).to.equal(false);
  });
});
