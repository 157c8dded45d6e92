/**
 * `pix2pix-zero embed` end to end: spawned as a user runs it, output read back and compared with transformers'
 * reference embeddings; bad input gives one line on stderr and a non-zero exit code.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { SafetensorsFile } from '../lib/io/safetensors.js';
import { FIXTURES, ROOT, expectClose, readReference } from './helpers/tensors.js';

const run = promisify(execFile);
const BIN = path.join(ROOT, 'bin', 'pix2pix-zero.js');
const MODEL = path.join(FIXTURES, 'models', 'clip-gelu-sd2');
const PROMPTS = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'reference', 'clip', 'prompts.json'), 'utf8')) as string[];

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, PIX2PIX_ZERO_BACKEND: 'wasm' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function readEmbeddings(file: string): { t: tf.Tensor; metadata: Record<string, string> } {
  const f = SafetensorsFile.open(file);
  try {
    expect(f.names()).to.deep.equal(['embeddings']);
    const d = f.read('embeddings');
    return { t: tf.tensor(d.data, d.shape), metadata: { ...f.metadata } };
  } finally {
    f.close();
  }
}

describe('pix2pix-zero embed (CLI)', function () {
  let dir: string;
  let ref: Record<string, tf.Tensor>;
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embed-cli-'));
    ref = readReference(path.join('reference', 'clip', 'gelu_sd2.safetensors'));
  });
  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
    for (const t of Object.values(ref)) t.dispose();
  });

  it('writes one embedding per --text, equal to transformers', async function () {
    const out = path.join(dir, 'texts.safetensors');
    const texts = PROMPTS.slice(0, 4);
    const r = await cli(['embed', '--model', MODEL, ...texts.flatMap((t) => ['--text', t]), '--out', out, '--json', '--batch-size', '3']);
    expect(r.code, r.stderr).to.equal(0);
    const summary = JSON.parse(r.stdout) as { shape: number[]; texts: number; out: string };
    expect(summary).to.include({ texts: 4, out });
    expect(summary.shape).to.deep.equal([4, 77, 24]);
    const { t, metadata } = readEmbeddings(out);
    const expected = tf.slice(ref.last_hidden_state!, [0, 0, 0], [4, -1, -1]);
    expectClose(t, expected, 1e-4, 'embed --text');
    expect(metadata).to.include({ texts: '4', mean: 'false', clip_skip: '0' });
    tf.dispose([t, expected]);
  });

  it('writes the mean embedding of a sentence file with --mean, and honours --clip-skip', async function () {
    const file = path.join(dir, 'sentences.txt');
    expect(PROMPTS[4]).to.equal(''); // an empty line: skipped
    fs.writeFileSync(file, `# a comment\n${PROMPTS.slice(0, 6).join('\r\n')}\n\n`);
    const kept = [0, 1, 2, 3, 5];
    const out = path.join(dir, 'mean.safetensors');
    const r = await cli(['embed', '--model', MODEL, '--file', file, '--mean', '--clip-skip', '1', '--out', out]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/wrote .*mean\.safetensors: embeddings \[1, 77, 24\] from 5 texts \(mean\)/);
    const { t } = readEmbeddings(out);
    const expected = tf.tidy(() => tf.mean(tf.gather(ref.clip_skip_1!, kept), 0, true));
    expectClose(t, expected, 1e-4, 'embed --file --mean --clip-skip 1');
    tf.dispose([t, expected]);
  });

  it('fails with one line and a non-zero exit code on bad input', async function () {
    const empty = path.join(dir, 'empty.txt');
    fs.writeFileSync(empty, '\n  \n# only a comment\n');
    const out = path.join(dir, 'x.safetensors');
    const cases: [string[], number, RegExp][] = [
      [['embed', '--model', MODEL, '--file', empty, '--out', out], 1, /has no sentences/],
      [['embed', '--model', MODEL, '--file', path.join(dir, 'missing.txt'), '--out', out], 1, /cannot read .*missing\.txt: no such file/],
      [['embed', '--model', path.join(dir, 'no-model'), '--text', 'a', '--out', out], 1, /model folder not found/],
      [['embed', '--model', FIXTURES, '--text', 'a', '--out', out], 1, /not a Stable Diffusion pipeline folder/],
      [['embed', '--model', MODEL, '--text', 'a'], 2, /--out <file\.safetensors> is required/],
      [['embed', '--model', MODEL, '--out', out], 2, /nothing to embed/],
      [['embed', '--model', MODEL, '--text', 'a', '--file', empty, '--out', out], 2, /either --text or --file/],
      [['embed', '--model', MODEL, '--text', 'a', '--batch-size', '0', '--out', out], 2, /--batch-size must be an integer/],
      [['embed', '--model', MODEL, '--text', 'a', '--clip-skip', '4', '--out', out], 2, /--clip-skip 4 is more than the text encoder's 3 layers/],
      [['embed', '--model', MODEL, '--text', 'a', '--out', dir], 1, /is a folder/],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(args)));
    const wrong: string[] = [];
    cases.forEach(([args, code, message], i) => {
      const r = results[i]!;
      const first = r.stderr.split('\n')[0] ?? '';
      if (r.code !== code || !message.test(first) || r.stdout !== '') wrong.push(`${args.slice(1).join(' ')} -> ${r.code}: ${r.stderr}`);
    });
    expect(wrong, wrong.join('\n')).to.deep.equal([]);
    expect(fs.existsSync(out)).to.equal(false);
  });

  it('lists embed in the help', async function () {
    const r = await cli(['--help']);
    expect(r.stdout).to.match(/embed\s+encode prompts/);
    const usage = await cli(['embed', '--help']);
    expect(usage.code).to.equal(0);
    expect(usage.stdout).to.match(/--mean/);
  });
});
