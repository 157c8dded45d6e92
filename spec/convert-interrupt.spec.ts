/**
 * Kind 6 of issue 18 (convert), nothing left behind: an interrupted `convert` removes its hidden staging folder on
 * SIGINT and SIGTERM; after kill -9 the next conversion to the same place removes it (by the PID and age in its
 * name), and leaves the folders of conversions still running alone.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { writeSafetensors } from '../lib/io/safetensors.js';
import { removeStaleStaging, STALE_AFTER_MS } from '../lib/io/convert-staging.js';
import { ROOT } from './helpers/tensors.js';
import { cli } from './helpers/cli.js';

const BIN = path.join(ROOT, 'bin', 'pix2pix-zero.js');
const staging = (dir: string): string[] => fs.readdirSync(dir).filter((n) => n.includes('.converting-'));

/** Starts a conversion, waits for its staging folder to appear, sends `signal`; resolves to the exit code. */
async function interrupt(src: string, out: string, signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; err: string }> {
  const child = spawn(process.execPath, [BIN, 'convert', src, out, '--dtype', 'float16', '--shard-mb', '1', '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, sig) => resolve({ code, signal: sig })));
  const deadline = Date.now() + 60_000;
  while (staging(path.dirname(out)).length === 0) {
    if (Date.now() > deadline) throw new Error('the conversion never started');
    await new Promise((r) => setTimeout(r, 5));
  }
  child.kill(signal);
  return { ...(await exited), err };
}

describe('an interrupted convert leaves nothing behind (issue 18, kind 6)', function () {
  let dir: string;
  let src: string;
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-interrupt-'));
    src = path.join(dir, 'src');
    fs.mkdirSync(src);
    // 64 MiB of weights: a conversion that takes long enough to be interrupted.
    const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    for (let i = 0; i < 64; i++) tensors[`w${i}`] = { dtype: 'F32', shape: [256, 1024], data: new Float32Array(256 * 1024) };
    writeSafetensors(path.join(src, 'model.safetensors'), tensors);
    fs.writeFileSync(path.join(src, 'config.json'), '{}');
  });
  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    it(`${signal}: the staging folder is removed, exit ${code}, one line`, async function () {
      const parent = path.join(dir, signal);
      fs.mkdirSync(parent);
      const r = await interrupt(src, path.join(parent, 'out'), signal);
      expect(r.code, r.err).to.equal(code);
      expect(r.err).to.match(new RegExp(`interrupted by ${signal}; nothing was written`));
      expect(fs.readdirSync(parent)).to.deep.equal([]);
    });
  }

  it('kill -9: the next convert to the same place removes the stale folder, not a running one', async function () {
    const parent = path.join(dir, 'killed');
    fs.mkdirSync(parent);
    const out = path.join(parent, 'out');
    const r = await interrupt(src, out, 'SIGKILL');
    expect(r.signal).to.equal('SIGKILL');
    const left = staging(parent);
    expect(left).to.have.length(1);
    // A conversion of a live process (this one), started a minute ago: not stale.
    const live = path.join(parent, `.out.converting-${process.pid}-${Date.now() - 60_000}`);
    fs.mkdirSync(live);
    const again = cli(['convert', src, out, '--json']);
    expect(again.code, again.err).to.equal(0);
    expect((JSON.parse(again.out) as { removedStale: string[] }).removedStale).to.deep.equal([path.join(parent, left[0]!)]);
    expect(fs.readdirSync(parent).sort()).to.deep.equal([path.basename(live), 'out']);
  });

  it('by age: a staging folder older than a day is stale even if its PID runs again', function () {
    const parent = path.join(dir, 'old');
    fs.mkdirSync(parent);
    const dest = path.join(parent, 'out');
    const old = path.join(parent, `.out.converting-1-${Date.now() - STALE_AFTER_MS - 1000}`);
    const other = path.join(parent, '.another.converting-1-1');
    fs.mkdirSync(old);
    fs.mkdirSync(other);
    expect(removeStaleStaging(dest)).to.deep.equal([old]);
    expect(fs.readdirSync(parent)).to.deep.equal(['.another.converting-1-1']);
  });
});
