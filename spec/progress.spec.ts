// Progress bars and per-phase timings: the reporter on a fake clock, then the CLI as a user sees it (stderr piped,
// and on a terminal through `script` when it is installed).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { ProgressReporter, formatRate, formatSeconds } from '../lib/cli/progress.js';
import type { CliIO } from '../lib/cli/command.js';
import { cli } from './helpers/cli.js';
import { ROOT } from './helpers/tensors.js';

/** A CLI io that records stderr, and a clock the test moves by hand (ms). */
function fakeTerminal(): { io: CliIO; err: () => string; clock: { t: number }; now: () => number } {
  let err = '';
  const clock = { t: 1000 };
  const io: CliIO = { out: () => undefined, err: (s) => (err += `${s}\n`), errRaw: (s) => (err += s), isTTY: true };
  return { io, err: () => err, clock, now: () => clock.t };
}

/** The lines a terminal would show last for each redraw (carriage returns and erase-to-end removed). */
function frames(raw: string): string[] {
  return raw
    .split(/[\r\n]/)
    .map((l) => l.split('\u001b[K').join(''))
    .filter((l) => l.length > 0);
}

const EXAMPLE = path.join(ROOT, 'assets', 'examples', 'example.png');

describe('progress', function () {
  describe('formatting', function () {
    it('writes durations and rates a reader can take in at a glance', function () {
      expect(formatSeconds(0.04)).to.equal('0.0s');
      expect(formatSeconds(3.26)).to.equal('3.3s');
      expect(formatSeconds(42.4)).to.equal('42s');
      expect(formatSeconds(185)).to.equal('3m05s');
      expect(formatSeconds(3725)).to.equal('1h02m05s');
      expect(formatSeconds(Number.POSITIVE_INFINITY)).to.equal('--');
      expect(formatSeconds(Number.NaN)).to.equal('--');
      expect(formatRate(12.345)).to.equal('12.3 it/s');
      expect(formatRate(2.5)).to.equal('2.50 it/s');
      expect(formatRate(0.25)).to.equal('4.0 s/it');
      expect(formatRate(Number.NaN)).to.equal('-- it/s');
    });
  });

  describe('ProgressReporter', function () {
    it('draws steps, rate and ETA in place, and closes each phase with its duration', function () {
      const term = fakeTerminal();
      const p = new ProgressReporter(term.io, true, term.now);
      p.start('inversion');
      for (let step = 1; step <= 4; step++) {
        term.clock.t += 500;
        p.onProgress({ phase: 'inversion', step, total: 4 });
      }
      const raw = term.err();
      expect(raw.startsWith('\r')).to.equal(true);
      expect(raw.endsWith('\n')).to.equal(true);
      expect(raw.split('\n')).to.have.length(2); // one line for the phase, redrawn with \r
      const f = frames(raw);
      expect(f[0]).to.match(/^inversion +\[#{6}-{18}\] 1\/4 2\.00 it\/s ETA 1\.5s$/);
      expect(f[f.length - 1]).to.match(/^inversion +\[#{24}\] 4\/4 2\.00 it\/s in 2\.0s$/);
      p.finish();
      expect(p.timings).to.deep.equal({ inversion: 2 });
    });

    it('clocks a phase from the end of the previous one, so its first step has a true rate', function () {
      const term = fakeTerminal();
      const p = new ProgressReporter(term.io, true, term.now);
      p.onProgress({ phase: 'encode', step: 0, total: 1 });
      term.clock.t += 100;
      p.onProgress({ phase: 'encode', step: 1, total: 1 });
      // The inverter reports step 1 when it is done: 250 ms after the encoder's last step.
      term.clock.t += 250;
      p.onProgress({ phase: 'inversion', step: 1, total: 2 });
      term.clock.t += 250;
      p.onProgress({ phase: 'inversion', step: 2, total: 2 });
      term.clock.t += 1000; // after the last step: not the inversion's time
      p.finish();
      const f = frames(term.err());
      expect(f.find((l) => l.includes('1/2'))).to.match(/4\.00 it\/s ETA 0\.3s$/);
      expect(p.timings).to.deep.equal({ encode: 0.1, inversion: 0.5 });
    });

    it('with no known start, counts the rate from the first step it sees', function () {
      const term = fakeTerminal();
      const p = new ProgressReporter(term.io, true, term.now);
      p.onProgress({ phase: 'embed', step: 16, total: 48 });
      term.clock.t += 2000;
      p.onProgress({ phase: 'embed', step: 32, total: 48 });
      const f = frames(term.err());
      expect(f[0]).to.match(/16\/48 -- it\/s ETA --$/);
      expect(f[1]).to.match(/32\/48 8\.00 it\/s ETA 2\.0s$/);
      p.close();
    });

    it('shows seconds per step when steps are slow, and redraws at most every 100 ms', function () {
      const term = fakeTerminal();
      const p = new ProgressReporter(term.io, true, term.now);
      p.start('edit');
      term.clock.t += 4000;
      p.onProgress({ phase: 'edit', step: 1, total: 50 });
      expect(frames(term.err())[0]).to.match(/1\/50 4\.0 s\/it ETA 3m16s$/);
      const before = term.err().length;
      term.clock.t += 50;
      p.onProgress({ phase: 'edit', step: 2, total: 50 });
      expect(term.err().length).to.equal(before);
      term.clock.t += 50;
      p.onProgress({ phase: 'edit', step: 3, total: 50 });
      expect(term.err().length).to.be.greaterThan(before);
      p.close();
    });

    it('takes the rate over the last steps: slow first steps (a graph compiling) leave the ETA once the pace settles', function () {
      const term = fakeTerminal();
      const p = new ProgressReporter(term.io, true, term.now);
      p.start('edit');
      // Three 1 s steps, then 0.2 s steps: after 12 steps the 8 most recent ran at 5 it/s, 38 left -> 7.6 s.
      for (let step = 1; step <= 12; step++) {
        term.clock.t += step <= 3 ? 1000 : 200;
        p.onProgress({ phase: 'edit', step, total: 50 });
      }
      expect(frames(term.err()).at(-1)).to.match(/12\/50 5\.00 it\/s ETA 7\.6s$/);
      p.close();
    });

    it('ends a bar left open, so that an error prints on a line of its own', function () {
      const term = fakeTerminal();
      const p = new ProgressReporter(term.io, true, term.now);
      p.start('inversion');
      term.clock.t += 300;
      p.onProgress({ phase: 'inversion', step: 3, total: 50 });
      expect(term.err().endsWith('\n')).to.equal(false);
      p.close();
      expect(term.err().endsWith('\n')).to.equal(true);
      p.close();
      expect(term.err().match(/\n/g)).to.have.length(1);
      expect(p.timings).to.deep.equal({ inversion: 0.3 });
    });

    it('draws nothing when off, and still times every phase', function () {
      const term = fakeTerminal();
      const p = new ProgressReporter(term.io, false, term.now);
      p.start('load');
      term.clock.t += 1234.4;
      p.start('direction');
      term.clock.t += 10;
      p.onProgress({ phase: 'direction', step: 2, total: 2 });
      p.close();
      expect(term.err()).to.equal('');
      expect(p.timings).to.deep.equal({ load: 1.234, direction: 0.01 });
    });
  });

  describe('on the command line', function () {
    let dir: string;
    before(function () {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-progress-'));
    });
    after(function () {
      fs.rmSync(dir, { recursive: true, force: true });
    });
    const edit = (out: string, ...more: string[]): string[] => ['edit', EXAMPLE, '--task', 'cat2dog', '--caption', 'a cat', '--steps', '2', '--out', out, '--no-cache', ...more];

    it('is quiet when stderr is not a terminal, and --json has the timings of every phase', function () {
      const r = cli(edit(path.join(dir, 'a.png'), '--json'));
      expect(r.code, r.err).to.equal(0);
      expect(r.err).to.equal('');
      const report = JSON.parse(r.out) as { timings: Record<string, number> };
      expect(Object.keys(report.timings)).to.deep.equal(['load', 'direction', 'encode', 'inversion', 'edit', 'decode', 'total']);
      const phases = Object.entries(report.timings).filter(([k]) => k !== 'total');
      for (const [, s] of phases) expect(s).to.be.a('number').and.at.least(0);
      const sum = phases.reduce((a, [, s]) => a + s, 0);
      expect(sum).to.be.at.most(report.timings.total! + 0.01);
      const plain = cli(edit(path.join(dir, 'b.png')));
      expect(plain.code, plain.err).to.equal(0);
      expect(plain.err).to.equal('');
      expect(plain.out).to.match(/^wrote .*b\.png \(64x64; caption: "a cat"\)\n$/);
    });

    it('exits 0 on success, 1 on a bad input, 2 on a bad command line', function () {
      expect(cli(['edit', path.join(dir, 'missing.png'), '--task', 'cat2dog', '--caption', 'x', '--out', path.join(dir, 'c.png')]).code).to.equal(1);
      expect(cli(edit(path.join(dir, 'c.png'), '--steps', 'many')).code).to.equal(2);
      expect(cli(['invert', EXAMPLE]).code).to.equal(2);
      expect(cli(['direction', '--task', 'cat2dog', '--out', path.join(dir, 'd.safetensors'), '--no-cache']).code).to.equal(0);
    });

    it('on a terminal, draws one bar per phase on stderr, and none with --quiet', function () {
      const script = spawnSync('script', ['--version'], { encoding: 'utf8' });
      if (script.status !== 0 || process.platform !== 'linux') this.skip(); // util-linux `script` gives the CLI a terminal
      const run = (args: string[]): { code: number; text: string } => {
        const log = path.join(dir, 'typescript');
        const command = [process.execPath, path.join(ROOT, 'bin', 'pix2pix-zero.js'), ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
        const r = spawnSync('script', ['-qec', command, log], { encoding: 'utf8', timeout: 120_000 });
        return { code: r.status ?? -1, text: r.stdout };
      };
      const tty = run(edit(path.join(dir, 'e.png')));
      expect(tty.code, tty.text).to.equal(0);
      const last = new Map<string, string>();
      for (const line of frames(tty.text)) {
        const m = /^(\w+) +\[[#-]{24}\] (\d+)\/(\d+) /.exec(line);
        if (m !== null) last.set(m[1]!, line);
      }
      expect([...last.keys()]).to.deep.equal(['direction', 'encode', 'inversion', 'edit', 'decode']);
      for (const line of last.values()) expect(line).to.match(/\[#{24}\] (\d+)\/\1 [\d.]+ (it\/s|s\/it) in [\d.]+s$/);
      const quiet = run(edit(path.join(dir, 'f.png'), '--quiet'));
      expect(quiet.code).to.equal(0);
      expect(quiet.text).not.to.match(/\[[#-]{24}\]/);
      expect(quiet.text).to.match(/wrote .*f\.png/);
    });
  });
});
