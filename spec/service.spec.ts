/**
 * Issue 21: `pix2pix-zero serve` and `pix2pix-zero worker`, as real processes. Alone, the server runs an edit to
 * the same PNG as the CLI (pixel-exact: the same backend and computation), streams its progress, reuses an
 * inversion, answers bad fields with the CLI's message, cancels a running edit and refuses work over its queue's
 * bound; its page works in headless Chromium. With a real redis-server, a server and two workers finish every job
 * although one worker is killed (SIGKILL) mid-job. Tests needing redis-server or chromium skip, saying so, when
 * they are absent (.ci/run installs both).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { decodeImage } from '../lib/io/image.js';
import { ROOT, TINY_SD } from './helpers/tensors.js';
import { cli } from './helpers/cli.js';
import { type Child, findProgram, freePort, startCli, startRedis } from './helpers/service.js';

const EXAMPLE = path.join(ROOT, 'assets', 'examples', 'example.png');
/** A small, quick edit of the example on the tiny model. */
const EDIT: Record<string, string> = { task: 'cat2dog', caption: 'a cat', steps: '8', size: '64', 'reg-steps': '1' };

interface Status {
  id: string;
  status: string;
  progress: { phase: string; step: number; total: number } | null;
  caption: string | null;
  error: string | null;
}

/** The form of an edit of `image` with `fields`. */
function form(fields: Record<string, string>, image: Buffer | null = fs.readFileSync(EXAMPLE)): FormData {
  const f = new FormData();
  if (image !== null) f.append('image', new Blob([image]), 'example.png');
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
}

async function submit(base: string, fields: Record<string, string>, image?: Buffer | null): Promise<{ code: number; body: { id?: string; status?: string; error?: string }; retryAfter: string | null }> {
  const res = await fetch(`${base}/api/edits`, { method: 'POST', body: form(fields, image) });
  return { code: res.status, body: (await res.json()) as { id?: string; error?: string }, retryAfter: res.headers.get('retry-after') };
}

async function status(base: string, id: string): Promise<Status> {
  return (await (await fetch(`${base}/api/edits/${id}`)).json()) as Status;
}

/** Polls a job until `until` holds (or `ms` pass). */
async function waitStatus(base: string, id: string, until: (s: Status) => boolean, ms = 120_000): Promise<Status> {
  const end = Date.now() + ms;
  for (;;) {
    const s = await status(base, id);
    if (until(s)) return s;
    if (Date.now() > end) throw new Error(`job ${id} is still ${JSON.stringify(s)} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const ended = (s: Status): boolean => ['done', 'failed', 'cancelled'].includes(s.status);

/** The CLI's edit of the example with the same fields: its PNG's pixels. */
function cliPixels(dir: string, fields: Record<string, string>): Promise<Uint8Array> {
  const out = path.join(dir, `cli-${Object.entries(fields).flat().join('-').replace(/\W+/g, '_')}.png`);
  if (!fs.existsSync(out)) {
    const flags = Object.entries(fields).flatMap(([k, v]) => [`--${k}`, v]);
    const r = cli(['edit', EXAMPLE, '--model', TINY_SD, '--no-cache', ...flags, '--out', out]);
    if (r.code !== 0) throw new Error(`the CLI failed: ${r.err}`);
  }
  return decodeImage(fs.readFileSync(out), out).then((img) => img.data);
}

/** A job's edited PNG, checked to be a PNG, as pixels. */
async function jobPixels(base: string, id: string, which = 'image'): Promise<Uint8Array> {
  const res = await fetch(`${base}/api/edits/${id}/${which}`);
  expect(res.status).to.equal(200);
  expect(res.headers.get('content-type')).to.equal('image/png');
  const png = Buffer.from(await res.arrayBuffer());
  expect(png.subarray(0, 8).toString('hex')).to.equal('89504e470d0a1a0a');
  const img = await decodeImage(png, `${which} of ${id}`);
  expect([img.width, img.height]).to.deep.equal([64, 64]);
  return img.data;
}

/** Reads a server-sent event stream to its end: the statuses it carried. */
async function events(base: string, id: string): Promise<Status[]> {
  const text = await (await fetch(`${base}/api/edits/${id}/events`)).text();
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('data: '))
    .map((block) => JSON.parse(block.slice(6)) as Status);
}

describe('service: serve and worker (issue 21)', function () {
  let dir: string;
  before(function () {
    if (!fs.existsSync(TINY_SD)) this.skip();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-service-'));
  });
  after(function () {
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('the command line', function () {
    it('refuses bad options with exit 2 and an unreachable Redis with exit 1, naming the URL', async function () {
      const noQueue = cli(['worker']);
      expect(noQueue.code).to.equal(2);
      expect(noQueue.err).to.match(/--queue redis:\/\/host:port is required/);
      expect(cli(['serve', '--queue', 'http://x']).err).to.match(/--queue must be a redis:\/\/host:port URL, got 'http:\/\/x'/);
      expect(cli(['serve', '--queue', 'redis://127.0.0.1:1', '--model', TINY_SD]).err).to.match(/--model is an option of the workers with --queue/);
      expect(cli(['serve', '--port', '70000']).err).to.match(/--port must be an integer in \[0, 65535\]/);
      const url = `redis://127.0.0.1:${await freePort()}`;
      for (const args of [['serve', '--queue', url], ['worker', '--queue', url, '--model', TINY_SD]]) {
        const r = cli(args);
        expect(r.code, r.err).to.equal(1);
        expect(r.err).to.include(`--queue ${url}: cannot reach Redis (connect ECONNREFUSED`);
      }
    });
  });

  describe('serve alone', function () {
    let server: Child;
    let base: string;
    before(async function () {
      server = startCli(['serve', '--port', '0', '--model', TINY_SD, '--no-cache', '--max-queued', '1']);
      base = (await server.waitFor(/listening on (http:\/\/\S+)/))[1]!;
    });
    after(async function () {
      const code = await server?.stop('SIGTERM');
      expect(code, server?.lines.join('\n')).to.equal(0);
    });

    it('runs an edit to the CLI PNG, streams its progress, then reuses the inversion for a second edit', async function () {
      const first = await submit(base, EDIT);
      expect(first.code, JSON.stringify(first.body)).to.equal(202);
      expect(first.body.status).to.equal('queued');
      const seen = await events(base, first.body.id!);
      const last = seen[seen.length - 1]!;
      expect(last.status, JSON.stringify(last)).to.equal('done');
      expect(last.caption).to.equal('a cat');
      expect(seen.some((s) => s.status === 'running' && s.progress !== null)).to.equal(true);
      expect(await jobPixels(base, first.body.id!)).to.deep.equal(await cliPixels(dir, EDIT));
      await jobPixels(base, first.body.id!, 'reconstruction');
      // The same image and inversion settings, another guidance: no inversion phase, and still the CLI's result.
      const again = { ...EDIT, 'guidance-scale': '3' };
      const second = await submit(base, again);
      const phases = new Set<string>();
      const done = await waitStatus(base, second.body.id!, (s) => {
        if (s.progress !== null) phases.add(s.progress.phase);
        return ended(s);
      });
      expect(done.status).to.equal('done');
      expect([...phases]).to.not.include('inversion');
      expect(await jobPixels(base, second.body.id!)).to.deep.equal(await cliPixels(dir, again));
    });

    it("answers a bad field with 400 and the CLI's message", async function () {
      const cases: [Record<string, string>, string[]][] = [
        [{ ...EDIT, steps: '0' }, ['--steps', '0']],
        [{ ...EDIT, size: '60' }, ['--size', '60']],
        [{ ...EDIT, 'guidance-scale': 'lots' }, ['--guidance-scale', 'lots']],
        [{ task: 'catdog', caption: 'a cat' }, ['--task', 'catdog']],
        [{ task: 'cat2dog', source: 'cat', caption: 'a cat' }, ['--task', 'cat2dog', '--source', 'cat']],
        [{ caption: 'a cat' }, []],
      ];
      for (const [fields, flags] of cases) {
        const r = await submit(base, fields);
        expect(r.code, `${JSON.stringify(fields)}: ${JSON.stringify(r.body)}`).to.equal(400);
        const c = cli(['edit', EXAMPLE, '--caption', 'a cat', '--out', path.join(dir, 'never.png'), ...flags]);
        expect(c.code).to.equal(2);
        expect(c.err, `CLI: ${c.err}`).to.include(`pix2pix-zero edit: ${r.body.error!}\n`);
      }
      const unknown = await submit(base, { ...EDIT, out: 'x.png' });
      expect(unknown.code).to.equal(400);
      expect(unknown.body.error).to.match(/unknown field 'out': the fields are image, task, source/);
      const noImage = await submit(base, EDIT, null);
      expect(noImage.code).to.equal(400);
      expect(noImage.body.error).to.match(/the image is missing/);
      const notImage = await submit(base, EDIT, Buffer.from('not a picture at all'));
      expect(notImage.code).to.equal(400);
      expect(notImage.body.error).to.match(/not a PNG, JPEG, GIF or BMP/);
      expect((await fetch(`${base}/api/edits/nope`)).status).to.equal(404);
    });

    it('cancels a running edit within a step, and refuses new edits with 503 + Retry-After while its queue is full', async function () {
      const long = await submit(base, { ...EDIT, steps: '400', seed: '7' });
      expect(long.code).to.equal(202);
      const id = long.body.id!;
      await waitStatus(base, id, (s) => s.progress?.phase === 'inversion' && s.progress.step >= 2);
      expect((await fetch(`${base}/api/edits/${id}/image`)).status).to.equal(409);
      const queued = await submit(base, EDIT);
      expect(queued.code).to.equal(202);
      const full = await submit(base, EDIT);
      expect(full.code).to.equal(503);
      expect(Number(full.retryAfter)).to.be.greaterThan(0);
      expect(full.body.error).to.match(/the queue is full/);
      const t0 = Date.now();
      const asked = (await (await fetch(`${base}/api/edits/${id}`, { method: 'DELETE' })).json()) as Status;
      const stepAtCancel = asked.progress!.step;
      const cancelled = await waitStatus(base, id, ended, 10_000);
      expect(cancelled.status).to.equal('cancelled');
      expect(cancelled.error).to.equal('cancelled');
      // Stopped within a step or two of the cancel (the last event may be one step on), far from the end.
      expect(cancelled.progress!.phase).to.equal('inversion');
      expect(cancelled.progress!.step - stepAtCancel).to.be.at.most(2);
      expect(Date.now() - t0).to.be.below(5000);
      const queuedCancel = (await (await fetch(`${base}/api/edits/${queued.body.id!}`, { method: 'DELETE' })).json()) as Status;
      expect(['cancelled', 'running']).to.include(queuedCancel.status);
      await waitStatus(base, queued.body.id!, ended);
      const after = await submit(base, EDIT);
      expect(after.code).to.equal(202);
      expect((await waitStatus(base, after.body.id!, ended)).status).to.equal('done');
    });

    it('serves a page that runs the example in headless Chromium (screenshot kept)', async function () {
      const chromium = process.env.PIX2PIX_ZERO_CHROMIUM ?? findProgram('chromium') ?? findProgram('chromium-browser');
      if (chromium === undefined) {
        console.log('      (skipped: no chromium on PATH; .ci/run installs the Debian package)');
        this.skip();
      }
      const { default: puppeteer } = await import('puppeteer-core');
      const browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
      try {
        const page = await browser.newPage();
        await page.setViewport({ width: 1100, height: 1200 });
        await page.goto(`${base}/`);
        await page.waitForSelector('body[data-ready="true"]');
        expect(await page.evaluate("document.getElementById('caption').required")).to.equal(true);
        // A seed of its own, so this edit inverts (every phase on the page) rather than reusing an inversion.
        const fields: Record<string, string> = { ...EDIT, seed: '3' };
        for (const id of ['steps', 'size', 'reg-steps', 'seed']) await page.type(`#${id}`, fields[id]!);
        await page.click('#submit');
        await page.waitForSelector('#results:not([hidden])', { timeout: 120_000 });
        await page.waitForFunction("['edited-image', 'reconstruction-image', 'input-image'].every((id) => document.getElementById(id).naturalWidth > 0)");
        expect(await page.evaluate("document.getElementById('status').textContent")).to.match(/^Done \(caption: "a cat"\)/);
        expect(await page.evaluate("[...document.querySelectorAll('#phases li')].map((r) => r.dataset.phase)")).to.include.members(['inversion', 'edit']);
        const shot = path.join(os.tmpdir(), `pix2pix-zero-service-page-${process.pid}.png`);
        await page.screenshot({ path: shot, fullPage: true });
        console.log(`      screenshot of the page: ${shot}`);
        const edited = String(await page.evaluate("document.getElementById('edited-link').href"));
        const id = /api\/edits\/([^/]+)\/image/.exec(edited)![1]!;
        expect(await jobPixels(base, id)).to.deep.equal(await cliPixels(dir, fields));
      } finally {
        await browser.close();
      }
    });
  });

  describe('serve --queue with two workers on a real redis-server', function () {
    const redisServer = findProgram('redis-server');
    let redis: Child;
    let server: Child;
    let workers: Child[] = [];
    let base: string;
    let url: string;
    before(async function () {
      if (redisServer === undefined) {
        console.log('      (skipped: no redis-server on PATH; .ci/run installs the Debian package)');
        this.skip();
      }
      const port = await freePort();
      redis = startRedis(redisServer, port, dir);
      await redis.waitFor(/Ready to accept connections/, 20_000);
      url = `redis://127.0.0.1:${port}`;
      server = startCli(['serve', '--port', '0', '--queue', url]);
      workers = [0, 1].map(() => startCli(['worker', '--queue', url, '--model', TINY_SD, '--no-cache', '--lock-duration', '2000']));
      base = (await server.waitFor(/listening on (http:\/\/\S+)/))[1]!;
      await Promise.all(workers.map((w) => w.waitFor(/ready on redis/)));
    });
    after(async function () {
      await Promise.all([server, ...workers].map((c) => c?.stop('SIGTERM')));
      await redis?.stop('SIGTERM');
    });

    it('finishes every job with the CLI PNG although a worker is killed (SIGKILL) mid-job; keeps errors, cancels, stops on SIGTERM', async function () {
      const fields = [1, 2, 3, 4].map((seed) => ({ ...EDIT, steps: '10', seed: String(seed) }));
      const ids: string[] = [];
      for (const f of fields) {
        const r = await submit(base, f);
        expect(r.code, JSON.stringify(r.body)).to.equal(202);
        ids.push(r.body.id!);
      }
      const started = await Promise.race(workers.map((w, i) => w.waitFor(/job (\S+) started/).then((m) => ({ i, id: m[1]! }))));
      await waitStatus(base, started.id, (s) => s.status === 'running' && s.progress !== null);
      const victim = workers[started.i]!;
      expect(await victim.stop('SIGKILL')).to.equal(null);
      const survivor = workers[1 - started.i]!;
      for (const id of ids) {
        const s = await waitStatus(base, id, ended, 120_000);
        expect(s.status, `${id}: ${JSON.stringify(s)}\n${survivor.lines.join('\n')}`).to.equal('done');
      }
      // The killed worker's job was taken again (BullMQ's stalled-job check) and finished on the other worker.
      expect(survivor.lines.some((l) => l.includes(`job ${started.id} started (attempt 2)`)), survivor.lines.join('\n')).to.equal(true);
      expect(survivor.lines.some((l) => l.includes(`job ${started.id} done`))).to.equal(true);
      for (const [i, id] of ids.entries()) expect(await jobPixels(base, id), `job ${i + 1}`).to.deep.equal(await cliPixels(dir, fields[i]!));
      const page = await fetch(`${base}/`);
      expect(page.status).to.equal(200);
      expect(await page.text()).to.match(/<title>pix2pix-zero<\/title>/);
      // A failed edit keeps its error; a cancel reaches the worker running the job (over Redis) within a step.
      const bad = await submit(base, { ...EDIT, size: '8' });
      const failed = await waitStatus(base, bad.body.id!, ended);
      expect(failed.status).to.equal('failed');
      expect(failed.error).to.match(/too small|latent/i);
      const long = await submit(base, { ...EDIT, steps: '400', seed: '8' });
      await waitStatus(base, long.body.id!, (s) => s.progress?.phase === 'inversion' && s.progress.step >= 2);
      const t0 = Date.now();
      await fetch(`${base}/api/edits/${long.body.id!}`, { method: 'DELETE' });
      const cancelled = await waitStatus(base, long.body.id!, ended, 10_000);
      expect(cancelled.status).to.equal('cancelled');
      expect(Date.now() - t0).to.be.below(5000);
      expect(cancelled.progress!.step).to.be.below(20);
      // A worker stopped with SIGTERM finishes its job first, then exits 0.
      const last = await submit(base, { ...EDIT, seed: '9' });
      await survivor.waitFor(new RegExp(`job ${last.body.id!} started`));
      const code = survivor.stop('SIGTERM');
      expect(await code).to.equal(0);
      expect((await status(base, last.body.id!)).status).to.equal('done');
    });
  });
});
