/**
 * Kind 5 of issue 18, outputs checked before the work: an output that cannot be written (a folder, a place under
 * /proc, an empty name), two outputs on one path, or an extension the command does not write fail at once, before
 * any model is loaded (the model given here does not exist, so reaching the load would say so instead).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { ROOT } from './helpers/tensors.js';
import { cli } from './helpers/cli.js';

const EXAMPLE = path.join(ROOT, 'assets', 'examples', 'example.png');

describe('outputs are checked before any model loads (issue 18, kind 5)', function () {
  let dir: string;
  let noModel: string;
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-preflight-'));
    noModel = path.join(dir, 'no-such-model');
  });
  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('edit, invert, direction, embed and convert refuse bad outputs in the first second, naming the option', function () {
    const edit = (...more: string[]): string[] => ['edit', EXAMPLE, '--model', noModel, '--caption', 'a cat', '--task', 'cat2dog', ...more];
    const cases: [string[], number, RegExp][] = [
      [edit('--out', dir), 1, /--out .* is a folder; give a file name/],
      [edit('--out', '/proc/nope/x.png'), 1, /--out \/proc\/nope\/x\.png cannot be written: no file can be created in \/proc/],
      [edit('--out', ''), 2, /--out is empty/],
      [edit('--out', path.join(dir, 's.png'), '--save-inversion', path.join(dir, 's.png')), 2, /--out and --save-inversion name the same file/],
      [edit('--out', path.join(dir, 'x.png'), '--reconstruction', path.join(dir, '.', 'x.png')), 2, /--out and --reconstruction name the same file/],
      [edit('--out', `${path.join(dir, 'x.png')}/`), 2, /--out .*x\.png\/ ends in a separator, so it names a folder/],
      [edit('--out', path.join(dir, 'x.jpg')), 2, /--out .*x\.jpg: this command writes PNG images; give a name ending in \.png/],
      [edit('--out', path.join(dir, 'x.png'), '--save-latents', path.join(dir, 'l.png')), 2, /--save-latents .*: this command writes safetensors files/],
      [['invert', EXAMPLE, '--model', noModel, '--caption', 'x', '--out', '/proc/nope/i.safetensors'], 1, /--out \/proc\/nope\/i\.safetensors cannot be written/],
      [['invert', EXAMPLE, '--model', noModel, '--caption', 'x', '--out', path.join(dir, 'i.png')], 2, /writes safetensors files/],
      [['direction', '--model', noModel, '--task', 'cat2dog', '--out', dir], 1, /is a folder/],
      [['direction', '--model', noModel, '--task', 'cat2dog', '--out', path.join(dir, 'd.safetensors'), '--cache-dir', '/proc/nope'], 1, /--cache-dir \/proc\/nope cannot be written/],
      [['embed', '--model', noModel, '--text', 'a', '--out', ''], 2, /--out is empty/],
      [['embed', '--model', noModel, '--text', 'a', '--out', '/proc/nope/e.safetensors'], 1, /cannot be written/],
      [['convert', noModel, '/proc/nope/out'], 1, /the output folder \/proc\/nope\/out cannot be written/],
    ];
    for (const [args, code, message] of cases) {
      const t0 = Date.now();
      const r = cli(args);
      expect(r.code, `${args.join(' ')}: ${r.err}`).to.equal(code);
      expect(r.err, args.join(' ')).to.match(message);
      expect(r.err).to.not.match(/model folder not found|\n\s+at /);
      expect(Date.now() - t0, args.join(' ')).to.be.below(5000);
    }
    expect(fs.readdirSync(dir)).to.deep.equal([]);
  });

  it('the same checks for $PIX2PIX_ZERO_CACHE', function () {
    const r = cli(['direction', '--model', noModel, '--task', 'cat2dog', '--out', path.join(dir, 'd.safetensors')], { PIX2PIX_ZERO_CACHE: '/proc/nope' });
    expect(r.code).to.equal(1);
    expect(r.err).to.match(/\$PIX2PIX_ZERO_CACHE \/proc\/nope cannot be written/);
  });
});
