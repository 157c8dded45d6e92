/**
 * Issue 20, item 1: each default in one place (lib/settings.ts). The help of `edit` and `invert`, the web page and
 * docs/usage.md say the values the code uses: the numbers are read out of the printed text and compared with what
 * the option parser gives for no options and with what the services and the facade do when given nothing. The
 * ranges the help names are the ones the parser enforces, at both ends, with the option named.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { DDIMInverter } from '../lib/editing/ddim-inverter.js';
import { CrossAttentionGuidedSampler, validateEditOptions } from '../lib/editing/guided-sampler.js';
import { regularizeNoise } from '../lib/editing/noise-regularization.js';
import type { ProgressEvent } from '../lib/editing/services.js';
import { directionScale, guidanceOptions, invertOptions } from '../lib/options/edit-options.js';
import { UsageError } from '../lib/options/values.js';
import { Pix2PixZero } from '../lib/pix2pix-zero.js';
import { TorchGenerator } from '../lib/random/torch-generator.js';
import { ConfigSchedulerFactory } from '../lib/schedulers/factory.js';
import { SETTINGS, type NumberSetting, inRange, isStepCount } from '../lib/settings.js';
import { FakeDenoiser } from './helpers/fake-denoiser.js';
import { ROOT, TINY_SD } from './helpers/tensors.js';
import { cli } from './helpers/cli.js';

const SCHEDULER = { beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', clip_sample: false, set_alpha_to_one: false, steps_offset: 1 };
const EXAMPLE = path.join(ROOT, 'assets', 'examples', 'example.png');

/** `--flag value` pairs of a help text whose value is a number (`--steps 50`, `--xa-guidance 0.1`), by flag. */
function numbersIn(help: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of help.matchAll(/--([a-z][a-z-]*) (-?\d+(?:\.\d+)?)(?![\d|])/g)) {
    expect(out.has(m[1]!), `--${m[1]} appears twice with a number`).to.equal(false);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** `--flag a|b` choices of a help text, by flag (the first is the default). */
function choicesIn(help: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of help.matchAll(/--([a-z][a-z-]*) ([a-z_0-9]+(?:\|[a-z_0-9]+)+)/g)) out.set(m[1]!, m[2]!.split('|'));
  return out;
}

/** The help of a command, as a user sees it. */
function help(command: string): string {
  const r = cli([command, '--help']);
  expect(r.code, r.err).to.equal(0);
  return r.out;
}

/** Two tensors hold the same values. */
function same(a: tf.Tensor, b: tf.Tensor): boolean {
  return tf.tidy(() => tf.all(tf.equal(a, b)).dataSync()[0] === 1);
}

describe('settings: each default in one place, and the help says it (issue 20, item 1)', function () {
  let editHelp: string;
  let editNumbers: Map<string, number>;
  before(function () {
    editHelp = help('edit');
    editNumbers = numbersIn(editHelp);
  });

  /** The number the edit help prints after `--flag`. */
  const shown = (flag: string): number => {
    const n = editNumbers.get(flag);
    expect(n, `edit --help shows no number after --${flag}`).to.be.a('number');
    return n!;
  };

  it('the edit help shows, for each numeric option, what the parser gives when it is not given', function () {
    const parsed = { ...invertOptions({}), ...guidanceOptions({}) };
    const cases: [string, number | undefined][] = [
      ['reg-steps', parsed.numRegSteps],
      ['ac-rolls', parsed.numAutoCorrRolls],
      ['lambda-ac', parsed.lambdaAc],
      ['lambda-kl', parsed.lambdaKl],
      ['seed', parsed.seed],
      ['guidance-scale', parsed.guidanceScale],
      ['xa-guidance', parsed.xaGuidance],
    ];
    for (const [flag, value] of cases) expect(value, `--${flag}`).to.equal(shown(flag));
    // --steps is left to the facade when not given (an inversion keeps its own); --min-shift shows its choices.
    expect(invertOptions({}).steps).to.equal(undefined);
    expect(invertOptions({}).minShift).to.equal(Number(/--min-shift (\d)\|\d/.exec(editHelp)?.[1]));
    expect(/--direction-scale k \(default (-?[\d.]+)\)/.exec(editHelp)?.[1]).to.equal(String(SETTINGS.directionScale.default));
    // The one number of each setting, not a second copy.
    for (const [key, flag] of [['steps', 'steps'], ['guidanceScale', 'guidance-scale'], ['xaGuidance', 'xa-guidance']] as const) {
      expect(SETTINGS[key].default, key).to.equal(shown(flag));
    }
  });

  it('the edit help lists each choice option with the parser default first, and the parser takes only those', function () {
    const choices = choicesIn(editHelp);
    const parsed = invertOptions({});
    for (const [flag, value] of [['vae-encode', parsed.vaeEncode], ['fit', parsed.fit]] as const) {
      const listed = choices.get(flag);
      expect(listed?.[0], `--${flag}`).to.equal(value);
      for (const c of listed!) expect(invertOptions({ [flag]: c })).to.be.an('object');
      expect(() => invertOptions({ [flag]: 'other' })).to.throw(UsageError, new RegExp(`^--${flag} must be ${listed!.map((c) => `'${c}'`).join(' or ')}, got 'other'$`));
    }
  });

  it('the invert help shows the same defaults as the edit help', function () {
    const invertNumbers = numbersIn(help('invert'));
    for (const flag of ['steps', 'reg-steps', 'ac-rolls', 'lambda-ac', 'lambda-kl', 'seed']) expect(invertNumbers.get(flag), `--${flag}`).to.equal(shown(flag));
    expect(invertNumbers.has('guidance-scale')).to.equal(false);
  });

  it('the step range the help names is the one the parser, the sampler and a saved inversion check', function () {
    const m = /--steps \d+ \((\d+) to (\d+),/.exec(editHelp);
    expect(m, 'edit --help names the step range').to.not.equal(null);
    const [lo, hi] = [Number(m![1]), Number(m![2])];
    expect(invertOptions({ steps: String(lo) }).steps).to.equal(lo);
    expect(invertOptions({ steps: String(hi) }).steps).to.equal(hi);
    for (const bad of [lo - 1, hi + 1]) {
      expect(() => invertOptions({ steps: String(bad) })).to.throw(UsageError, new RegExp(`^--steps must be an integer in \\[${lo}, ${hi}\\], got '${bad}'$`));
      expect(() => validateEditOptions({ steps: bad })).to.throw(new RegExp(`^steps must be an integer in \\[${lo}, ${hi}\\], got ${bad}$`));
      expect(isStepCount(bad)).to.equal(false);
    }
    validateEditOptions({ steps: hi });
    // The attention injections' fractions, as the API gives them.
    for (const option of ['selfAttentionInjection', 'crossAttentionInjection'] as const) {
      validateEditOptions({ [option]: 1 });
      for (const bad of [-0.1, 1.5, Number.NaN]) expect(() => validateEditOptions({ [option]: bad }), `${option} ${bad}`).to.throw(new RegExp(`^${option} must be a number in \\[0, 1\\], got ${bad}$`));
    }
    expect(isStepCount(2.5)).to.equal(false);
    expect(isStepCount(hi, 999)).to.equal(hi <= 999);
  });

  it('the size range the help names is the one the parser checks', function () {
    const m = /(\d+) to (\d+), a multiple of (\d+)/.exec(editHelp);
    expect(m, 'edit --help names the size range').to.not.equal(null);
    const [lo, hi, k] = [Number(m![1]), Number(m![2]), Number(m![3])];
    expect(invertOptions({ size: String(lo) }).size).to.equal(lo);
    expect(invertOptions({ size: String(hi) }).size).to.equal(hi);
    expect(() => invertOptions({ size: String(hi + k) })).to.throw(UsageError, /^--size must be an integer in/);
    expect(() => invertOptions({ size: String(lo + k / 2) })).to.throw(UsageError, new RegExp(`^--size must be a multiple of ${k}, got ${lo + k / 2}$`));
    expect(inRange(SETTINGS.size, hi + k)).to.equal(false);
  });

  it('every numeric setting with a flag is refused outside its range, naming the option', function () {
    const blendOptions = (v: Record<string, string>): unknown => guidanceOptions({ ...v, 'local-blend': true });
    const parsers: [NumberSetting, (v: Record<string, string>) => unknown][] = [
      [SETTINGS.steps, invertOptions],
      [SETTINGS.numRegSteps, invertOptions],
      [SETTINGS.numAutoCorrRolls, invertOptions],
      [SETTINGS.lambdaAc, invertOptions],
      [SETTINGS.lambdaKl, invertOptions],
      [SETTINGS.minShift, invertOptions],
      [SETTINGS.seed, invertOptions],
      [SETTINGS.guidanceScale, guidanceOptions],
      [SETTINGS.xaGuidance, guidanceOptions],
      [SETTINGS.selfAttentionInjection, guidanceOptions],
      [SETTINGS.crossAttentionInjection, guidanceOptions],
      [SETTINGS.blendThreshold, blendOptions],
      [SETTINGS.blendStart, blendOptions],
      [SETTINGS.directionScale, directionScale],
    ];
    for (const [s, parse] of parsers) {
      const kind = s.integer ? 'an integer' : 'a number';
      for (const v of [s.min, s.max]) expect(() => parse({ [s.flag]: String(v) }), `--${s.flag} ${v}`).to.not.throw();
      for (const bad of [s.min - 1, s.max + 1]) {
        expect(() => parse({ [s.flag]: String(bad) }), `--${s.flag} ${bad}`).to.throw(UsageError, `--${s.flag} must be ${kind} in [${s.min}, ${s.max}], got '${bad}'`);
      }
    }
  });

  it('the regulariser, given nothing, does what the help says', function () {
    const x = tf.randomNormal([1, 8, 8, 4], 0, 1, 'float32', 7) as tf.Tensor4D;
    const helped = { numRegSteps: shown('reg-steps'), numAutoCorrRolls: shown('ac-rolls'), lambdaAc: shown('lambda-ac'), lambdaKl: shown('lambda-kl'), minShift: 0 as const };
    const a = regularizeNoise(x, new TorchGenerator(0));
    const b = regularizeNoise(x, new TorchGenerator(0), helped);
    const other = regularizeNoise(x, new TorchGenerator(0), { ...helped, lambdaKl: helped.lambdaKl + 1 });
    try {
      expect(same(a, b)).to.equal(true);
      expect(same(a, other), 'the comparison sees a different lambda').to.equal(false);
    } finally {
      tf.dispose([x, a, b, other]);
    }
  });

  it('the inverter and the guided sampler, given nothing, take the steps, seed and guidance the help says', async function () {
    const unet = new FakeDenoiser(6);
    const schedulers = new ConfigSchedulerFactory(SCHEDULER);
    const x0 = tf.randomNormal([1, 8, 8, 4], 0, 1, 'float32', 1) as tf.Tensor4D;
    const caption = tf.randomNormal([1, 7, 6], 0, 1, 'float32', 2) as tf.Tensor3D;
    const negative = tf.randomNormal([1, 7, 6], 0, 1, 'float32', 3) as tf.Tensor3D;
    const direction = tf.randomNormal([1, 7, 6], 0, 0.3, 'float32', 4) as tf.Tensor3D;
    const held: tf.Tensor[] = [x0, caption, negative, direction];
    try {
      const inverter = new DDIMInverter(unet, schedulers);
      const totals: number[] = [];
      const onProgress = (e: ProgressEvent): number => totals.push(e.total);
      const walk = await inverter.invert(x0, caption, { numRegSteps: 0, onProgress });
      held.push(...walk);
      expect(walk.length - 1).to.equal(shown('steps'));
      expect(new Set(totals)).to.deep.equal(new Set([shown('steps')]));
      // The default seed draws the same roll shifts as the one the help shows.
      const seeded = (seed?: number): Promise<tf.Tensor4D[]> => inverter.invert(x0, caption, { steps: 2, numRegSteps: 1, seed });
      const [bare, shownSeed, otherSeed] = [await seeded(), await seeded(shown('seed')), await seeded(shown('seed') + 1)];
      held.push(...bare, ...shownSeed, ...otherSeed);
      expect(same(bare[2]!, shownSeed[2]!)).to.equal(true);
      expect(same(bare[2]!, otherSeed[2]!)).to.equal(false);

      const sampler = new CrossAttentionGuidedSampler(unet, schedulers);
      const c = { caption, negative, direction };
      const steps: number[] = [];
      const none = await sampler.sample(x0, c, { onProgress: (e) => steps.push(e.total) });
      const helped = await sampler.sample(x0, c, { steps: shown('steps'), guidanceScale: shown('guidance-scale'), xaGuidance: shown('xa-guidance') });
      const otherXa = await sampler.sample(x0, c, { steps: shown('steps'), guidanceScale: shown('guidance-scale'), xaGuidance: 2 * shown('xa-guidance') });
      held.push(none.edited, none.reconstruction, helped.edited, helped.reconstruction, otherXa.edited, otherXa.reconstruction);
      expect(new Set(steps)).to.deep.equal(new Set([shown('steps')]));
      expect(same(none.edited, helped.edited)).to.equal(true);
      expect(same(none.reconstruction, helped.reconstruction)).to.equal(true);
      expect(same(none.edited, otherXa.edited), 'the comparison sees another guidance').to.equal(false);
    } finally {
      tf.dispose(held);
      unet.dispose();
    }
  });

  it('the facade records the defaults the help shows in an inversion made without options', async function () {
    if (!fs.existsSync(TINY_SD)) this.skip();
    this.timeout(600_000);
    const p2p = await Pix2PixZero.load({ model: TINY_SD, cacheDir: false, captioner: false });
    try {
      const inv = await p2p.invert(EXAMPLE, { caption: 'a cat' });
      try {
        expect(inv.meta.steps).to.equal(shown('steps'));
        expect(inv.meta.settings).to.deep.equal({
          vaeEncode: choicesIn(editHelp).get('vae-encode')![0],
          seed: shown('seed'),
          numRegSteps: shown('reg-steps'),
          numAutoCorrRolls: shown('ac-rolls'),
          lambdaAc: shown('lambda-ac'),
          lambdaKl: shown('lambda-kl'),
          minShift: invertOptions({}).minShift,
        });
      } finally {
        inv.dispose();
      }
    } finally {
      p2p.dispose();
    }
  });

  it('the web page and docs/usage.md show the same defaults and ranges', function () {
    const page = fs.readFileSync(path.join(ROOT, 'assets', 'web', 'index.html'), 'utf8');
    const input = (name: string): Record<string, string> => {
      const tag = new RegExp(`<input id="${name}"[^>]*>`).exec(page)?.[0];
      expect(tag, `the page's ${name} field`).to.be.a('string');
      return Object.fromEntries([...tag!.matchAll(/([a-z]+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    };
    for (const s of [SETTINGS.steps, SETTINGS.guidanceScale, SETTINGS.xaGuidance, SETTINGS.numRegSteps]) {
      const attrs = input(s.flag);
      expect([Number(attrs.min), Number(attrs.max), Number(attrs.placeholder)], s.flag).to.deep.equal([s.min, s.max, shown(s.flag)]);
    }
    expect(Number(input('seed').placeholder)).to.equal(shown('seed'));
    const size = input('size');
    expect([Number(size.min), Number(size.max), Number(size.step)]).to.deep.equal([SETTINGS.size.min, SETTINGS.size.max, SETTINGS.size.multipleOf]);

    const usage = fs.readFileSync(path.join(ROOT, 'docs', 'usage.md'), 'utf8');
    const documented = new Map<string, string>();
    for (const m of usage.matchAll(/^\| `--([a-z-]+)[^`]*` \| ([^|]*?) \|/gm)) documented.set(m[1]!, m[2]!.trim());
    for (const flag of ['steps', 'reg-steps', 'ac-rolls', 'lambda-ac', 'lambda-kl', 'seed', 'guidance-scale', 'xa-guidance']) {
      expect(Number(documented.get(flag)), `docs/usage.md --${flag}`).to.equal(shown(flag));
    }
    expect(Number(documented.get('direction-scale'))).to.equal(SETTINGS.directionScale.default);
  });
});
