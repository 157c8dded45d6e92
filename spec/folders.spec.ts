/**
 * Kind 1 of issue 18, no hang on a bad path: every folder the library creates goes through `ensureDir`, which
 * fails with one line naming the path where Node 20's recursive mkdirSync spins forever (under /proc); and a
 * device or a pipe given as an input file (sentences, safetensors) is refused instead of read forever.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { ensureDir } from '../lib/io/folders.js';
import { ROOT, TINY_SD } from './helpers/tensors.js';
import { cli } from './helpers/cli.js';

/** Runs a module snippet against dist/lib in a child with a timeout, so that a hang fails instead of blocking. */
function runSnippet(code: string): { status: number | null; err: string } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8', timeout: 15_000 });
  return { status: r.status, err: r.stderr };
}

describe('folder creation cannot hang (issue 18, kind 1)', function () {
  let dir: string;
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-folders-'));
  });
  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates missing parents, and refuses a file in the way naming it', function () {
    const deep = path.join(dir, 'a', 'b', 'c');
    ensureDir(deep);
    expect(fs.statSync(deep).isDirectory()).to.equal(true);
    ensureDir(deep); // already there
    fs.writeFileSync(path.join(dir, 'file'), 'x');
    expect(() => ensureDir(path.join(dir, 'file', 'sub'), '--out')).to.throw(/cannot create --out .*file[/\\]sub: .*file is not a folder/);
  });

  it('fails at once under /proc, naming the path, for every writer', function () {
    if (process.platform !== 'linux') this.skip();
    expect(() => ensureDir('/proc/nope/deeper', 'the cache folder')).to.throw(/cannot create the cache folder \/proc\/nope\/deeper: \/proc\/nope/);
    for (const call of [
      "const m = await import('./dist/lib/io/safetensors.js'); m.writeSafetensors('/proc/nope/x.safetensors', {});",
      "const m = await import('./dist/lib/io/image.js'); await m.writePng('/proc/nope/x.png', { width: 1, height: 1, data: new Uint8Array(3) });",
      "const m = await import('./dist/lib/cli/convert.js'); m.convertModelFolder('converted_models/tiny-sd/vae', '/proc/nope/vae');",
    ]) {
      const r = runSnippet(call);
      expect(r.status, `${call}: it hung`).to.not.equal(null);
      expect(r.status).to.not.equal(0);
      expect(r.err).to.match(/\/proc\/nope/);
    }
  });

  it('a device or a pipe given as an input file is refused at once, naming it', function () {
    if (process.platform !== 'linux' || !fs.existsSync(TINY_SD)) this.skip();
    const fifo = path.join(dir, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).to.equal(0);
    const out = path.join(dir, 'never.safetensors');
    for (const args of [
      ['direction', '--model', TINY_SD, '--source-sentences', '/dev/zero', '--target', 'dog', '--out', out, '--no-cache'],
      ['embed', '--model', TINY_SD, '--file', fifo, '--out', out],
      ['edit', '--inversion', fifo, '--model', TINY_SD, '--task', 'cat2dog', '--out', path.join(dir, 'never.png'), '--no-cache'],
      ['inspect', fifo],
      ['edit', '--inversion', '/dev/zero', '--model', TINY_SD, '--task', 'cat2dog', '--out', path.join(dir, 'never.png'), '--no-cache'],
    ]) {
      const r = cli(args);
      expect(r.code, `${args.join(' ')}: ${r.err}`).to.equal(1);
      expect(r.err, args.join(' ')).to.match(/(\/dev\/zero|fifo):? (it )?is not a regular file( or a folder)? \(a device, pipe or socket\)/);
    }
    expect(fs.existsSync(out)).to.equal(false);
  });
});
