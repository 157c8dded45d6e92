/**
 * `npm run bench -- pipeline [--backend tensorflow|wasm|cpu] [--steps N] [--size N] [--reg-steps N] [--threads 1,2]
 * [--full-size] [--no-reference]`
 *
 * `--full-size`: the full-size SD 1.x subject with random weights (tools/reference/full_size.py, built into
 * .fullsize/ on first use: 860 M UNet, 84 M VAE, ViT-L/14 text encoder) and the BLIP-base captioner (its `blip`
 * subject, 247 M) at 512 px and 2 steps by default, one timed run on each side without a warm-up (a step there
 * costs seconds, not microseconds), torch at 2 threads, the caption written by BLIP on both sides (a `caption`
 * phase), our side freeing BLIP and the text encoder once used as the CLI does (`releaseAfterUse`): the per-step
 * costs of a real edit, extrapolated to 50 steps in docs/benchmarks.md.
 *
 * Our `Pix2PixZero` edit of the shipped tiny-sd pipeline, end to end and per phase, against diffusers'
 * `StableDiffusionPix2PixZeroPipeline` (tools/bench/reference_pipeline.py) on the same weights, image, caption,
 * sentences (the shipped cat and dog banks) and settings: DDIM steps, noise regularisation at the authors'
 * defaults (5 rounds, 5 auto-correlation rolls, lambda 20 and 20, roll shifts drawn from seed 0 on both sides),
 * VAE posterior mean, negative prompt = caption, guidance scale 5, cross-attention guidance 0.1.
 *
 * Each side times REPS runs and reports every phase's median.
 *
 * Configurations: a 64 x 64 image (8 x 8 latents, tiny-sd's own sample size) with 50 steps, and a 256 x 256 image
 * (32 x 32 latents) with 5 steps (its per-step costs, keeping the default suite near 10 minutes on 2 cores);
 * `--size` / `--steps` pick one size and the step count. Every run is preceded
 * by a warm-up run of 2 steps (kernel set-up on our side, allocator and dispatch caches on torch's); our warm-up
 * runs under `tf.profile`, which gives the peak bytes of live tensors.
 *
 * Each side runs in its own process per configuration (so max RSS is that run's): ours with the chosen tfjs
 * backend (wasm is single-threaded in Node), diffusers with torch at 1 thread and at 2 threads (this machine's
 * cores). Both edited latents are compared (max |ours - diffusers| / max |diffusers|), so the times are of the
 * same computation. Printed as a table and written to docs/bench/pipeline.json.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import type { BackendName } from '../../lib/backend.js';
import type { ProgressEvent } from '../../lib/editing/services.js';
import { readSentenceFile } from '../../lib/editing/sentences.js';
import { type RgbImage, writePng } from '../../lib/io/image.js';
import { Pix2PixZero } from '../../lib/pix2pix-zero.js';
import { SETTINGS as PIPELINE } from '../../lib/settings.js';
import {
  OMP_WAIT_POLICY,
  REFERENCE_PYTHON,
  backendArg,
  intArg,
  ROOT,
  fmtMs,
  hasReferencePython,
  lastJsonLine,
  machineInfo,
  printTable,
  runNode,
  runReferencePython,
  writeRecord,
} from './harness.js';

const MODEL = path.join(ROOT, 'converted_models', 'tiny-sd');

/** A full-size subject's folder (`sd1` or `blip`), built by tools/reference/full_size.py when it is not there yet. */
export function fullSizeSubject(subject: 'sd1' | 'sd2' | 'blip', marker: string): string {
  if (!hasReferencePython()) throw new Error('--full-size builds its subject with the reference Python environment: run npm run fixtures once');
  console.error(`[pipeline] the full-size ${subject} subject (tools/reference/full_size.py ${subject}; about 1 minute and 1 to 4 GB the first time)...`);
  const r = spawnSync(REFERENCE_PYTHON, [path.join(ROOT, 'tools', 'reference', 'full_size.py'), subject], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const folder = r.stdout.trim().split('\n').at(-1);
  if (r.status !== 0 || folder === undefined || !fs.existsSync(path.join(folder, marker))) throw new Error(`full_size.py did not build the ${subject} subject`);
  return folder;
}
const CAPTION = 'a photo of a cat sitting on a sofa';
// The bench's own copy of the 120-sentence banks it was first measured with (the built-in banks grew to 1,000).
export const SENTENCES = { source: path.join(ROOT, 'tools', 'bench', 'sentences', 'cat.txt'), target: path.join(ROOT, 'tools', 'bench', 'sentences', 'dog.txt') };
const WARMUP_STEPS = 2;
/** Timed runs per side; each phase's median is reported (the machine is shared: single runs jump). */
const REPS = 3;

/** Each phase's median over runs. */
function medianPhases(runs: PhaseMs[]): PhaseMs {
  const med = (p: Phase): number => {
    const v = runs.map((r) => r[p]).sort((a, b) => a - b);
    return v[Math.floor(v.length / 2)]!;
  };
  return Object.fromEntries(PHASES.map((p) => [p, med(p)])) as PhaseMs;
}
/** The settings both sides use: the pipeline's defaults (lib/settings.ts; the authors' and diffusers', guidance 5 as the authors). */
export const SETTINGS = {
  guidanceScale: PIPELINE.guidanceScale.default,
  xaGuidance: PIPELINE.xaGuidance.default,
  numRegSteps: PIPELINE.numRegSteps.default,
  numAutoCorrRolls: PIPELINE.numAutoCorrRolls.default,
  lambdaAc: PIPELINE.lambdaAc.default,
  lambdaKl: PIPELINE.lambdaKl.default,
  seed: PIPELINE.seed.default,
};
/** The phases, in order; `total` is their sum (caption + direction + the whole `edit` call); caption only with a captioner. */
const PHASES = ['caption', 'direction', 'encode', 'inversion', 'edit', 'decode', 'total'] as const;
type Phase = (typeof PHASES)[number];
type PhaseMs = Record<Phase, number>;

/** What one configuration runs. */
interface Config {
  size: number;
  steps: number;
  /** The pipeline folder. */
  model: string;
  /** Steps of the warm-up run (0: none) and timed runs per side. */
  warmup: number;
  reps: number;
  /** Noise regularisation rounds of the inversion. */
  regSteps: number;
  /** A BLIP folder: the caption is then written by it on both sides (a `caption` phase). */
  captioner?: string;
  /** Ours frees the captioner and the text encoder once used (as the CLI). */
  releaseAfterUse?: boolean;
}

/** What our worker process reports. */
interface OursResult {
  backend: BackendName;
  /** Each phase's median over the timed runs. */
  phasesMs: PhaseMs;
  /** Every timed run's total. */
  runsTotalMs: number[];
  loadMs: number;
  /** Process resident set right after loading. */
  rssAfterLoadMiB: number;
  /** The caption used (BLIP's, with a captioner). */
  caption: string;
  /** Bytes of live tensors after loading (the weights). */
  weightBytes: number;
  /** Peak bytes of live tensors during the (profiled, 2-step) warm-up edit, weights included (none without one). */
  peakTensorBytes?: number;
  /** The wasm heap at the end (it only grows, so this is its peak), when on wasm. */
  wasmHeapBytes?: number;
  maxRssMiB: number;
  editedShape: number[];
  /** The edited latents, NCHW as diffusers', flattened. */
  edited: number[];
}

/** What reference_pipeline.py reports. */
interface TorchResult {
  threads: number;
  torch: string;
  ompWaitPolicy: string;
  loadMs: number;
  caption: string;
  phasesMs: PhaseMs & { invert_decode: number };
  runsTotalMs: number[];
  rssAfterLoadMiB: number;
  maxRssMiB: number;
  editedShape: number[];
  edited: number[];
}

/** One configuration's record. */
interface ConfigRecord extends Config {
  latents: string;
  ours?: OursResult;
  oursError?: string;
  torch: (Omit<TorchResult, 'edited'> & { latentsMaxRelError: number })[];
  torchError?: string;
}

/** A synthetic RGB test image (smooth stripes and a disc, as the parity fixtures' input), `size` x `size`. */
export function testImage(size: number): RgbImage {
  const data = new Uint8Array(size * size * 3);
  const k = 32 / size;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const [xx, yy] = [x * k, y * k];
      const i = (y * size + x) * 3;
      data[i] = Math.round(Math.min(255, Math.max(0, 128 + 100 * Math.sin(xx / 4))));
      data[i + 1] = Math.round(Math.min(255, Math.max(0, 128 + 90 * Math.cos(yy / 3))));
      data[i + 2] = (xx - 15) ** 2 + (yy - 17) ** 2 < 80 ? 230 : 40;
    }
  }
  return { width: size, height: size, data };
}

/** The wasm backend's heap size in bytes (undefined on other backends). */
function wasmHeapBytes(): number | undefined {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8?.buffer.byteLength;
}

/**
 * One edit with per-phase wall times. A phase ends at its last progress event: `encode` includes reading and
 * preparing the image, `inversion` and `edit` the caption embedding each computes, `decode` the edited image only.
 */
async function timedEdit(p2p: Pix2PixZero, image: string, config: Config, sentences: { source: string[]; target: string[] }): Promise<{ ms: PhaseMs; latents: tf.Tensor4D; caption: string }> {
  const tc = performance.now();
  const caption = config.captioner !== undefined ? await p2p.caption(image) : CAPTION;
  const t0 = performance.now();
  const d = await p2p.direction({ name: 'cat', sentences: sentences.source }, { name: 'dog', sentences: sentences.target });
  const t1 = performance.now();
  const last: Partial<Record<string, number>> = {};
  const onProgress = (e: ProgressEvent): void => {
    last[e.phase] = performance.now();
  };
  try {
    const r = await p2p.edit(image, d, { caption, size: config.size, steps: config.steps, reconstruction: false, onProgress, ...SETTINGS, numRegSteps: config.regSteps });
    const t2 = performance.now();
    r.inversion.dispose();
    const at = (phase: string): number => {
      const t = last[phase];
      if (t === undefined) throw new Error(`the edit reported no '${phase}' progress`);
      return t;
    };
    const ms: PhaseMs = {
      caption: t0 - tc,
      direction: t1 - t0,
      encode: at('encode') - t1,
      inversion: at('inversion') - at('encode'),
      edit: at('edit') - at('inversion'),
      decode: t2 - at('edit'),
      total: t2 - tc,
    };
    return { ms, latents: r.latents, caption };
  } finally {
    d.dispose();
  }
}

/** Our side of one configuration, in this (worker) process; prints one JSON line. */
async function runOurs(backend: BackendName, image: string, config: Config): Promise<void> {
  const sentences = { source: readSentenceFile(SENTENCES.source), target: readSentenceFile(SENTENCES.target) };
  const t = performance.now();
  const p2p = await Pix2PixZero.load({ model: config.model, backend, cacheDir: false, captioner: config.captioner ?? false, releaseAfterUse: config.releaseAfterUse });
  const loadMs = performance.now() - t;
  const rssAfterLoadMiB = process.memoryUsage().rss / 2 ** 20;
  const weightBytes = tf.memory().numBytes;
  let peakTensorBytes: number | undefined;
  if (config.warmup > 0) {
    const profile = await tf.profile(async () => {
      const warm = await timedEdit(p2p, image, { ...config, steps: config.warmup }, sentences);
      warm.latents.dispose();
      return [];
    });
    peakTensorBytes = profile.peakBytes;
  }
  const before = tf.memory().numTensors;
  const runs: PhaseMs[] = [];
  let latents: tf.Tensor4D | undefined;
  let caption = CAPTION;
  for (let i = 0; i < config.reps; i++) {
    latents?.dispose();
    const run = await timedEdit(p2p, image, config, sentences);
    runs.push(run.ms);
    latents = run.latents;
    caption = run.caption;
  }
  const last = latents;
  if (last === undefined) throw new Error('no timed run');
  const ms = medianPhases(runs);
  const nchw = tf.tidy(() => tf.transpose(last, [0, 3, 1, 2]));
  const result: OursResult = {
    backend,
    phasesMs: ms,
    runsTotalMs: runs.map((r) => r.total),
    loadMs,
    rssAfterLoadMiB,
    caption,
    weightBytes,
    peakTensorBytes,
    wasmHeapBytes: wasmHeapBytes(),
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
    editedShape: nchw.shape,
    edited: Array.from(await nchw.data()),
  };
  tf.dispose([last, nchw]);
  const leaked = tf.memory().numTensors - before;
  p2p.dispose();
  if (leaked !== 0) throw new Error(`the edit left ${leaked} tensors behind`);
  console.log(JSON.stringify(result));
}

export function maxRelError(a: number[], b: number[]): number {
  if (a.length !== b.length) return Number.NaN;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

interface Args {
  backend: BackendName;
  configs: Config[];
  threads: number[];
  reference: boolean;
  worker?: { image: string; config: Config };
  /** Settings written to the record. */
  settings: { model: string; regSteps: number; captioner?: string };
  /** The record's name under docs/bench/ (`pipeline` for wasm, as before; others by backend). */
  record: string;
}

function parseArgs(argv: string[]): Args {
  let backend: BackendName = 'wasm';
  let fullSize = false;
  let size: number | undefined;
  let steps: number | undefined;
  let regSteps = SETTINGS.numRegSteps;
  let threads = [1, 2];
  let reference = true;
  let worker: Args['worker'];
  const int = intArg;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--backend') {
      backend = backendArg(argv[++i]);
    } else if (a === '--full-size') {
      fullSize = true;
    } else if (a === '--size') {
      size = int('--size', argv[++i], 8, 1024);
      if (size % 8 !== 0) throw new Error(`--size must be a multiple of 8, got ${size}`);
    } else if (a === '--steps') {
      steps = int('--steps', argv[++i], 1, 1000);
    } else if (a === '--reg-steps') {
      regSteps = int('--reg-steps', argv[++i], 0, 100);
    } else if (a === '--threads') {
      threads = (argv[++i] ?? '').split(',').map((v) => int('--threads', v, 1, 64));
    } else if (a === '--no-reference') {
      reference = false;
    } else if (a === '--worker') {
      // Internal: the parent's image file and configuration (JSON).
      worker = { image: argv[++i] ?? '', config: JSON.parse(argv[++i] ?? '{}') as Config };
    } else {
      throw new Error(`pipeline bench: unknown argument ${a}`);
    }
  }
  if (fullSize) {
    if (worker !== undefined) throw new Error('--full-size is not a worker option');
    const model = fullSizeSubject('sd1', 'model_index.json');
    const captioner = fullSizeSubject('blip', 'config.json');
    const config: Config = { size: size ?? 512, steps: steps ?? 2, model, warmup: 0, reps: 1, regSteps, captioner, releaseAfterUse: true };
    const settings = { model: path.relative(ROOT, model), regSteps, captioner: path.relative(ROOT, captioner) };
    return { backend, configs: [config], threads: threads.length === 2 ? [2] : threads, reference, worker, record: `pipeline-${backend}-full-size`, settings };
  }
  // The cpu backend (pure JavaScript) is several times slower than wasm: the small configuration only, by default.
  const tiny = { model: MODEL, warmup: WARMUP_STEPS, reps: REPS, regSteps };
  const defaults: Config[] = backend === 'cpu' ? [{ size: 64, steps: 20, ...tiny }] : [{ size: 64, steps: 50, ...tiny }, { size: 256, steps: 5, ...tiny }];
  const configs = size !== undefined ? [{ size, steps: steps ?? (size <= 64 ? 50 : 5), ...tiny }] : defaults.map((c) => ({ ...c, steps: steps ?? c.steps }));
  return { backend, configs, threads, reference, worker, record: backend === 'wasm' ? 'pipeline' : `pipeline-${backend}`, settings: { model: path.relative(ROOT, MODEL), regSteps } };
}

const ratio = (ours: number | undefined, theirs: number | undefined): string =>
  ours !== undefined && theirs !== undefined ? `${(ours / theirs).toFixed(1)}x` : '-';
const mib = (bytes: number | undefined): string => (bytes !== undefined ? `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MiB` : '-');

function printConfig(r: ConfigRecord, backend: BackendName): void {
  console.log(`\n${r.size} x ${r.size} image (${r.latents} latents), ${r.steps} steps: ours (${backend}) vs diffusers (torch ${r.torch[0]?.torch ?? ''} CPU, OMP_WAIT_POLICY=${OMP_WAIT_POLICY}), ms\n`);
  const header = ['phase', `ours ${backend}`];
  for (const t of r.torch) header.push(`torch ${t.threads} thr`, 'ours/torch');
  const rows = PHASES.filter((p) => p !== 'caption' || r.captioner !== undefined).map((p) => {
    const row = [p, r.ours !== undefined ? fmtMs(r.ours.phasesMs[p]) : '-'];
    for (const t of r.torch) row.push(fmtMs(t.phasesMs[p]), ratio(r.ours?.phasesMs[p], t.phasesMs[p]));
    return row;
  });
  const mem = ['max RSS', r.ours !== undefined ? `${r.ours.maxRssMiB.toFixed(0)} MiB` : '-'];
  for (const t of r.torch) mem.push(`${t.maxRssMiB.toFixed(0)} MiB`, ratio(r.ours?.maxRssMiB, t.maxRssMiB));
  rows.push(mem);
  printTable(header, rows);
  if (r.ours !== undefined) {
    console.log(
      `\nours: tensors peak ${mib(r.ours.peakTensorBytes)} (weights ${mib(r.ours.weightBytes)}), wasm heap ${mib(r.ours.wasmHeapBytes)}, load ${fmtMs(r.ours.loadMs)} ms, RSS after load ${r.ours.rssAfterLoadMiB.toFixed(0)} MiB; caption "${r.ours.caption.slice(0, 60)}"`,
    );
  }
  for (const t of r.torch) {
    console.log(
      `torch ${t.threads} thread(s): RSS after load ${t.rssAfterLoadMiB.toFixed(0)} MiB, load ${fmtMs(t.loadMs)} ms, invert()'s own decode of x_T ${fmtMs(t.phasesMs.invert_decode)} ms (left out of its inversion); ` +
        `edited latents max relative error vs ours ${t.latentsMaxRelError.toExponential(2)}; caption ${t.caption === r.ours?.caption ? 'the same as ours' : `"${t.caption.slice(0, 60)}" (differs from ours)`}`,
    );
  }
  if (r.oursError !== undefined) console.log(`ours FAILED: ${r.oursError}`);
  if (r.torchError !== undefined) console.log(`diffusers: ${r.torchError}`);
}

/** Runs the pipeline benchmark (the `pipeline` sub-command). */
export async function benchPipeline(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  if (args.worker !== undefined) return runOurs(args.backend, args.worker.image, args.worker.config);
  const started = Date.now();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-bench-'));
  const sentences = { source: readSentenceFile(SENTENCES.source), target: readSentenceFile(SENTENCES.target) };
  const records: ConfigRecord[] = [];
  try {
    for (const config of args.configs) {
      const image = path.join(tmp, `input${config.size}.png`);
      await writePng(image, testImage(config.size));
      const record: ConfigRecord = { ...config, latents: `1x4x${config.size / 8}x${config.size / 8}`, torch: [] };
      console.error(`[pipeline] ${config.size} px, ${config.steps} steps: ours (${args.backend})...`);
      const child = runNode(['pipeline', '--backend', args.backend, '--worker', image, JSON.stringify(config)]);
      const ours = child.status === 0 ? lastJsonLine<OursResult>(child.stdout) : undefined;
      if (ours === undefined) record.oursError = child.error;
      else record.ours = ours;
      if (args.reference) {
        for (const threads of args.threads) {
          console.error(`[pipeline] ${config.size} px, ${config.steps} steps: diffusers, torch ${threads} thread(s)...`);
          const spec = {
            model: config.model, image, caption: CAPTION, source: sentences.source, target: sentences.target,
            steps: config.steps, warmup_steps: config.warmup, reps: config.reps, seed: SETTINGS.seed, threads,
            captioner: config.captioner,
            guidance_scale: SETTINGS.guidanceScale, xa_guidance: SETTINGS.xaGuidance, num_reg_steps: config.regSteps,
            num_auto_corr_rolls: SETTINGS.numAutoCorrRolls, lambda_auto_corr: SETTINGS.lambdaAc, lambda_kl: SETTINGS.lambdaKl,
          };
          const py = runReferencePython('reference_pipeline.py', [JSON.stringify(spec)]);
          const t = py.status === 0 ? lastJsonLine<TorchResult>(py.stdout) : undefined;
          if (t === undefined) {
            record.torchError = py.error;
            break;
          }
          const { edited, ...rest } = t;
          record.torch.push({ ...rest, latentsMaxRelError: ours !== undefined ? maxRelError(ours.edited, edited) : Number.NaN });
        }
      }
      printConfig(record, args.backend);
      records.push(record);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const file = writeRecord(args.record, {
    benchmark: 'pipeline',
    date: new Date().toISOString(),
    machine: machineInfo(),
    seconds: Math.round((Date.now() - started) / 1000),
    settings: {
      caption: args.settings.captioner !== undefined ? `written by BLIP (${args.settings.captioner}) on each side` : CAPTION,
      sentences: `tools/bench/sentences/cat.txt -> dog.txt (${sentences.source.length} and ${sentences.target.length})`,
      warmupSteps: args.configs[0]?.warmup,
      reps: args.configs[0]?.reps,
      ...SETTINGS,
      ...args.settings,
      numRegSteps: args.settings.regSteps,
      vaeEncode: 'mean',
      negativePrompt: 'the caption',
    },
    notes: [
      'phasesMs: per phase, the median wall time of `reps` runs after a 2-step warm-up run, in a fresh process per side and configuration (runsTotalMs: each run\'s total). direction: the two mean sentence embeddings; encode: image preprocessing + VAE encode (posterior mean); inversion: DDIM inversion with noise regularisation (its caption embedding included; diffusers\' invert() also decodes x_T, timed apart as invert_decode and left out); edit: reference + cross-attention guided edit passes (the caption/negative embedding included); decode: VAE decode of the edited latents; total: the sum.',
      'ours: the Pix2PixZero facade (load, direction, edit with reconstruction off) on the named tfjs backend, single-threaded; torch: diffusers StableDiffusionPix2PixZeroPipeline on CPU with torch.set_num_threads(threads) and OMP_WAIT_POLICY=PASSIVE unless set otherwise (ompWaitPolicy): with the default busy-wait, 2 threads ran 30 to 100x slower than 1 on this shared 2-core machine.',
      'Memory: maxRssMiB is the process peak resident set (Node: process.resourceUsage().maxRSS; Python: ru_maxrss), including each runtime (V8 + wasm heap; CPython + torch libraries). peakTensorBytes: the largest live tfjs tensor bytes during the profiled warm-up edit (weights included); wasmHeapBytes: the wasm heap, which only grows.',
      'latentsMaxRelError: max |ours - diffusers| / max |diffusers| over the edited latents (same caption, sentences, roll-shift seed).',
      'The machine has 2 cores shared with other work: expect +-20%.',
    ],
    configs: records,
  });
  console.log(`\nwritten to ${path.relative(ROOT, file)}`);
}
