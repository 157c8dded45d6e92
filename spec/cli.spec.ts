import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { writeSafetensors } from '../lib/io/safetensors.js';
import { DEFAULT_MODEL } from '../lib/paths.js';
import { ROOT, TINY_SD } from './helpers/tensors.js';
import { cli } from './helpers/cli.js';

describe('CLI', function () {
  let dir: string;
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-cli-'));
  });
  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('prints help and exits 2 without a command; 0 with --help', function () {
    const none = cli([]);
    expect(none.code).to.equal(2);
    expect(none.out).to.match(/Commands:[\s\S]*inspect/);
    expect(cli(['--help']).code).to.equal(0);
    expect(cli(['--version']).out.trim()).to.match(/^\d+\.\d+\.\d+$/);
  });
  it('rejects an unknown command and an unknown flag with exit 2', function () {
    const r = cli(['frobnicate']);
    expect(r.code).to.equal(2);
    expect(r.err).to.match(/unknown command 'frobnicate'/);
    const f = cli(['inspect', '--frob', 'x']);
    expect(f.code).to.equal(2);
    expect(f.err).to.match(/Unknown option '--frob'[\s\S]*pix2pix-zero inspect --help/);
  });

  describe('inspect', function () {
    it('lists the tensors of a safetensors file, as text and as JSON', function () {
      const file = path.join(dir, 'w.safetensors');
      writeSafetensors(file, {
        'a.weight': { dtype: 'F16', shape: [2, 3], data: new Float32Array(6) },
        'b.bias': { dtype: 'F32', shape: [4], data: new Float32Array(4) },
      });
      const text = cli(['inspect', file]);
      expect(text.code).to.equal(0);
      expect(text.out).to.match(/2 tensors, 10 parameters/);
      expect(text.out).to.match(/a\.weight\s+F16\s+\[2, 3\]/);
      const json = cli(['inspect', file, '--json']);
      expect(json.code).to.equal(0);
      const report = JSON.parse(json.out) as { kind: string; tensors: { name: string; dtype: string; shape: number[] }[] };
      expect(report.kind).to.equal('safetensors');
      expect(report.tensors).to.deep.equal([
        { name: 'a.weight', dtype: 'F16', shape: [2, 3] },
        { name: 'b.bias', dtype: 'F32', shape: [4] },
      ]);
    });

    it('reports each component of a Stable Diffusion folder', function () {
      if (!fs.existsSync(TINY_SD)) this.skip();
      const r = cli(['inspect', TINY_SD, '--json']);
      expect(r.code, r.err).to.equal(0);
      const report = JSON.parse(r.out) as { kind: string; components: { name: string; class?: string; parameters?: number }[] };
      expect(report.kind).to.equal('stable-diffusion');
      expect(report.components.map((c) => c.name)).to.deep.equal(['unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler']);
      expect(report.components[0]!.class).to.equal('UNet2DConditionModel');
      expect(report.components[0]!.parameters).to.be.greaterThan(1000);
    });

    const malformed: [string, () => Buffer, RegExp][] = [
      ['header larger than the file', () => lenThen(1000n, '{}'), /header length 1000 is larger than the file/],
      ['an 8-byte length claiming a terabyte', () => lenThen(2n ** 40n, '{}'), /larger than the file/],
      ['offsets out of range', () => lenThen(undefined, '{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', 8), /tensor 'w'.*run past the end/],
      ['overlapping tensors', () => lenThen(undefined, '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', 12), /overlap/],
      ['unknown dtype', () => lenThen(undefined, '{"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}', 1), /unknown or unsupported dtype "Q4"/],
      ['truncated data', () => lenThen(undefined, '{"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}', 5), /truncated/],
      ['not JSON', () => lenThen(undefined, '{"w": nope}'), /not valid JSON/],
      ['random bytes', () => Buffer.from('GIF89a this is not a weights file at all'), /larger than the file/],
    ];
    for (const [what, make, pattern] of malformed) {
      it(`refuses ${what} with a one-line error and exit 1`, function () {
        const file = path.join(dir, `${what.replace(/\W+/g, '-')}.safetensors`);
        fs.writeFileSync(file, make());
        const r = cli(['inspect', file]);
        expect(r.code).to.equal(1);
        expect(r.out).to.equal('');
        expect(r.err.trim().split('\n')).to.have.length(1);
        expect(r.err).to.include(file);
        expect(r.err).to.match(pattern);
        expect(r.err).not.to.match(/\n\s+at /);
      });
    }
    it('shows the stack with --debug', function () {
      const file = path.join(dir, 'debug.safetensors');
      fs.writeFileSync(file, lenThen(99n, '{}'));
      const r = cli(['inspect', file, '--debug']);
      expect(r.code).to.equal(1);
      expect(r.err).to.match(/\n\s+at /);
    });
    it('refuses a missing path and a folder that is not a model', function () {
      expect(cli(['inspect', path.join(dir, 'nothing')]).err).to.match(/not found: .*nothing/);
      const empty = path.join(dir, 'empty-folder');
      fs.mkdirSync(empty);
      const r = cli(['inspect', empty]);
      expect(r.code).to.equal(1);
      expect(r.err).to.match(/model weights not found in .*empty-folder/);
    });
  });

  describe('info', function () {
    it('reports the version, the backend and the shipped model', function () {
      if (!fs.existsSync(TINY_SD)) this.skip();
      const r = cli(['info', '--json'], { PIX2PIX_ZERO_BACKEND: 'cpu' });
      expect(r.code, r.err).to.equal(0);
      const info = JSON.parse(r.out) as { backend: { name: string }; model: { kind: string; components: unknown[] } };
      expect(info.backend.name).to.equal('cpu');
      expect(info.model.kind).to.equal('stable-diffusion');
      expect(info.model.components).to.have.length(5);
      const text = cli(['info', '--backend', 'wasm']);
      expect(text.code, text.err).to.equal(0);
      expect(text.out).to.match(/backend: wasm/);
    });
    it('takes the default model from $PIX2PIX_ZERO_MODEL, else the shipped one', function () {
      const sd2 = path.join(ROOT, 'spec', 'fixtures', 'models', 'tiny-sd2');
      const r = cli(['info', '--json'], { PIX2PIX_ZERO_MODEL: sd2, PIX2PIX_ZERO_BACKEND: 'cpu' });
      expect(r.code, r.err).to.equal(0);
      expect((JSON.parse(r.out) as { model: { path: string } }).model.path).to.equal(sd2);
      const shipped = cli(['info', '--json'], { PIX2PIX_ZERO_MODEL: '', PIX2PIX_ZERO_BACKEND: 'cpu' });
      expect((JSON.parse(shipped.out) as { model: { path: string } }).model.path).to.equal(DEFAULT_MODEL);
    });
    it('rejects a bad --backend with exit 2', function () {
      const r = cli(['info', '--backend', 'gpu']);
      expect(r.code).to.equal(2);
      expect(r.err).to.match(/--backend: unknown backend 'gpu'/);
    });
    it('rejects a malformed $PIX2PIX_ZERO_KERNEL_CHOICES at start, naming the choice', function () {
      const r = cli(['info', '--backend', 'cpu'], { PIX2PIX_ZERO_KERNEL_CHOICES: '{"graphMaxElement": 0}' });
      expect(r.code).to.not.equal(0);
      expect(r.err).to.match(/PIX2PIX_ZERO_KERNEL_CHOICES: unknown kernel choice 'graphMaxElement'/);
      expect(r.err.trim().split('\n')).to.have.length(1);
    });
  });
});

/** An 8-byte length (the header's own, or a lie) + header + `dataBytes` zero bytes. */
function lenThen(claim: bigint | undefined, header: string, dataBytes = 0): Buffer {
  const h = Buffer.from(header);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(claim ?? BigInt(h.length));
  return Buffer.concat([len, h, Buffer.alloc(dataBytes)]);
}
