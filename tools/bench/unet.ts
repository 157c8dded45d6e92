/**
 * `npm run bench -- unet [--backend wasm|cpu] [--only <case>[,<case>...]] [--threads 1,2] [--no-reference]`
 *
 * Times the UNet's forward pass and its forward + gradient pass (the pix2pix-zero cross-attention loss,
 * differentiated with respect to the input latent, as the edit pass does at every step), and their ratio:
 *
 * - the fixture UNets (tiny-sd's SD 1.x-style UNet and the SD 2.x-style one) at a 64 x 64 image (8 x 8 latents),
 *   batch 2 (classifier-free guidance), 77 context tokens (`fixture-sd1`, `fixture-sd2`), and tiny-sd at its
 *   default 512 x 512 image (64 x 64 latents, `tiny-sd-512`), and the shipped toy-world UNet at its 64 x 64 image
 *   (16 x 16 latents, `toyworld`: a model bound by per-kernel overhead);
 * - full-size Stable Diffusion 1.x blocks with random weights, batch 2, context 77 x 768: one layer of the first
 *   `CrossAttnDownBlock2D` (ResnetBlock2D + Transformer2DModel, 320 channels, 8 heads) at 64 x 64
 *   (`sd1-down64`), and the `UNetMidBlock2DCrossAttn` (1280 channels) at 8 x 8 (`sd1-mid8`);
 * - one 3 x 3 convolution of the 64 x 64 / 320-channel level, with the input gradient computed by the forward
 *   convolution (`conv2dFastGrad`, what the UNet uses) and by tfjs' built-in `Conv2DBackpropInput` (`conv`).
 *
 * Each case runs in its own process (a fresh wasm heap; a case that exhausts it is reported, not fatal).
 * The cpu backend (pure JavaScript) is about 30x slower than wasm, so it times smaller things (see BLOCK_SHAPES);
 * the whole full-size UNet is not timed: its float32 weights (3.4 GB) and activations exceed the wasm heap
 * (4 GB) and would take tens of minutes a pass on cpu; it needs the tensorflow backend (tfjs-node).
 * The full-size block cases also run in PyTorch on this machine (tools/bench/reference_unet.py, diffusers' own
 * blocks, same shapes, same loss, torch at 1 and 2 threads), giving ours/torch per case; without the reference
 * Python environment (`npm run fixtures` creates it) our side runs alone.
 * Results are printed and written to docs/bench/unet.json, merged with the rows of cases this run did not redo.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { BACKEND_NAMES, type BackendName, initBackend, installedBackends, withKernelChoices } from '../../lib/backend.js';
import { conv2dFastGrad, conv2dPadded } from '../../lib/models/layers/conv2d.js';
import { matMul } from '../../lib/models/layers/matmul.js';
import type { Module } from '../../lib/models/layers/module.js';
import { DownBlock } from '../../lib/models/unet/down-blocks.js';
import { AttentionRecorder, type CrossAttentionHook, crossAttentionPaths } from '../../lib/models/unet/hooks.js';
import { CrossAttentionLoss } from '../../lib/editing/cross-attention-loss.js';
import { UNetMidBlock2DCrossAttn } from '../../lib/models/unet/mid-block.js';
import { UNet2DConditionModel } from '../../lib/models/unet/unet-2d-condition.js';
import { parseUNetConfig } from '../../lib/models/unet/config.js';
import type { UNetBlockArgs } from '../../lib/models/unet/basic-transformer-block.js';
import {
  OMP_WAIT_POLICY,
  ROOT,
  type Timing,
  fmtMs,
  lastJsonLine,
  machineInfo,
  printTable,
  randomizeWeights,
  runNode,
  runReferencePython,
  time,
  writeRecord,
} from './harness.js';

/** One benchmark result row. */
interface Result {
  backend: BackendName;
  case: string;
  input: string;
  forwardMs?: number;
  gradMs?: number;
  /** forward + gradient time over forward time. */
  ratio?: number;
  /** For the convolution: forward + the backend's built-in input gradient (`gradMs`: the forward-conv one). */
  builtinGradMs?: number;
  /** For the attention product: forward + gradient with the plain-product split (`gradMs`: plain `tf.matMul`). */
  plainGradMs?: number;
  reps: number;
  error?: string;
  note?: string;
  /** Bytes of live tensors before timing (weights and inputs), and their peak during the forward + gradient. */
  liveBytes?: number;
  gradPeakBytes?: number;
  /** The worker process's peak resident set (the whole case, one process per case). */
  maxRssMiB?: number;
  /** PyTorch's process for the case: resident set before building the block, and its peak (all thread counts). */
  torchRssBeforeMiB?: number;
  torchMaxRssMiB?: number;
  /** The case id (CASES), and when it was measured. */
  id?: string;
  date?: string;
  /** The CPU it was measured on. */
  cpu?: string;
  /** PyTorch's timings of the same block case and shapes, per thread count (full-size block cases only). */
  torch?: (TorchTiming & { oursOverTorchForward?: number; oursOverTorchGrad?: number })[];
}

/** PyTorch's timing of one block case (reference_unet.py). */
interface TorchTiming {
  threads: number;
  torch: string;
  ompWaitPolicy: string;
  forwardMs: number;
  gradMs: number;
  reps: number;
}

/** Something that runs a forward pass with an optional cross-attention hook. */
interface Subject {
  name: string;
  input: string;
  x: tf.Tensor4D;
  /** The reference pass's context (its maps are the loss's targets) and the edit pass's. */
  refContext: tf.Tensor3D;
  context: tf.Tensor3D;
  forward(x: tf.Tensor4D, context: tf.Tensor3D, hook?: CrossAttentionHook): tf.Tensor;
  dispose(): void;
}

const seeded = (shape: number[], seed: number): tf.Tensor => tf.randomNormal(shape, 0, 1, 'float32', seed);

/** Forward, and forward + gradient of the cross-attention loss against the maps of a reference pass. */
async function timeSubject(backend: BackendName, s: Subject, reps: number, note?: string): Promise<Result> {
  const result: Result = { backend, case: s.name, input: s.input, reps, note, liveBytes: tf.memory().numBytes };
  const recorder = new AttentionRecorder();
  try {
    tf.tidy(() => {
      s.forward(s.x, s.refContext, recorder);
    });
    const reference = recorder.take();
    try {
      const forward: Timing = await time(() => tf.tidy(() => s.forward(s.x, s.context)), reps);
      const grad: Timing = await time(
        () =>
          tf.tidy(() =>
            tf.grad((v: tf.Tensor) => {
              const hook = new CrossAttentionLoss(reference);
              tf.dispose(s.forward(v as tf.Tensor4D, s.context, hook));
              return hook.loss();
            })(s.x),
          ),
        reps,
        true,
      );
      result.gradPeakBytes = grad.peakBytes;
      result.forwardMs = forward.medianMs;
      result.gradMs = grad.medianMs;
      result.ratio = grad.medianMs / forward.medianMs;
    } finally {
      tf.dispose([...reference.values()]);
    }
  } catch (err) {
    result.error = err instanceof Error ? err.message.split('\n')[0] : String(err);
  } finally {
    recorder.dispose();
  }
  return result;
}

function fixtureSubject(name: string, dir: string, latent: number, batch: number): Subject {
  const unet = UNet2DConditionModel.fromFolder(dir);
  const d = unet.config.crossAttentionDim;
  const x = seeded([batch, latent, latent, unet.config.inChannels], 1) as tf.Tensor4D;
  return {
    name,
    input: `latents ${batch}x${latent}x${latent}x${unet.config.inChannels}, context ${batch}x77x${d}`,
    x,
    refContext: seeded([batch, 77, d], 2) as tf.Tensor3D,
    context: seeded([batch, 77, d], 3) as tf.Tensor3D,
    forward: (v, context, hook) => unet.predict(v, 500, context, { hook }),
    dispose() {
      unet.disposeAll();
      tf.dispose([this.x, this.refContext, this.context]);
    },
  };
}

/** Stable Diffusion 1.x's UNet config (CompVis/stable-diffusion-v1-4's unet/config.json), as reference_unet.py's. */
const SD1_UNET = {
  _class_name: 'UNet2DConditionModel',
  sample_size: 64,
  in_channels: 4,
  out_channels: 4,
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
  block_out_channels: [320, 640, 1280, 1280],
  layers_per_block: 2,
  attention_head_dim: 8,
  cross_attention_dim: 768,
  norm_num_groups: 32,
  act_fn: 'silu',
  center_input_sample: false,
  downsample_padding: 1,
  flip_sin_to_cos: true,
  freq_shift: 0,
  mid_block_scale_factor: 1,
  norm_eps: 1e-5,
};

/** The whole full-size SD 1.x UNet with random weights, at `latent` x `latent`. */
function fullSubject(latent: number, batch: number): Subject {
  const unet = new UNet2DConditionModel(parseUNetConfig(SD1_UNET));
  randomizeWeights(unet, 7);
  return {
    name: 'SD1 UNet2DConditionModel (whole, 860M parameters)',
    input: `latents ${batch}x${latent}x${latent}x4, context ${batch}x77x768`,
    x: seeded([batch, latent, latent, 4], 1) as tf.Tensor4D,
    refContext: seeded([batch, 77, 768], 2) as tf.Tensor3D,
    context: seeded([batch, 77, 768], 3) as tf.Tensor3D,
    forward: (v, context, hook) => unet.predict(v, 500, context, { hook }),
    dispose() {
      unet.disposeAll();
      tf.dispose([this.x, this.refContext, this.context]);
    },
  };
}

/** A full-size SD 1.x block with random weights, called as the UNet calls it. */
function blockSubject(
  name: string,
  block: Module & { forward(x: tf.Tensor, args: UNetBlockArgs): tf.Tensor },
  size: number,
  channels: number,
  batch: number,
): Subject {
  randomizeWeights(block, 7);
  const temb = seeded([batch, 1280], 4);
  // The block's own module tree names its layers for the hook (the recorder's and the loss's names agree).
  const layerPaths = crossAttentionPaths(block);
  return {
    name,
    input: `${batch}x${size}x${size}x${channels}, temb ${batch}x1280, context ${batch}x77x768`,
    x: seeded([batch, size, size, channels], 1) as tf.Tensor4D,
    refContext: seeded([batch, 77, 768], 2) as tf.Tensor3D,
    context: seeded([batch, 77, 768], 3) as tf.Tensor3D,
    forward: (v, context, hook) => block.forward(v, { temb, context, hook, layerPaths }),
    dispose() {
      block.disposeAll();
      tf.dispose([this.x, this.refContext, this.context, temb]);
    },
  };
}

/** SD 1.x's first down level: one CrossAttnDownBlock2D layer (resnet + transformer), 320 channels, 8 heads. */
const down64 = (): DownBlock =>
  new DownBlock({
    inChannels: 320,
    outChannels: 320,
    tembChannels: 1280,
    numLayers: 1,
    addDownsample: false,
    groups: 32,
    eps: 1e-5,
    downsamplePadding: 1,
    attention: { heads: 8, crossAttentionDim: 768, useLinearProjection: false },
  });

/** SD 1.x's mid block: resnet, transformer, resnet at 1280 channels, 8 heads. */
const mid8 = (): UNetMidBlock2DCrossAttn =>
  new UNetMidBlock2DCrossAttn(1280, 1280, 32, 1e-5, { heads: 8, crossAttentionDim: 768, useLinearProjection: false });

/** The input gradient of one 3x3 convolution: by a forward convolution (ours) and by tfjs' built-in kernel. */
async function timeConv(backend: BackendName, size: number, channels: number, batch: number, reps: number): Promise<Result> {
  const result: Result = { backend, case: `conv 3x3 ${channels}->${channels}`, input: `${batch}x${size}x${size}x${channels}`, reps };
  const x = seeded([batch, size, size, channels], 1) as tf.Tensor4D;
  const w = tf.mul(seeded([3, 3, channels, channels], 2), 1 / Math.sqrt(9 * channels)) as tf.Tensor4D;
  const pad: [number, number, number, number] = [1, 1, 1, 1];
  result.liveBytes = tf.memory().numBytes;
  try {
    const fwd = await time(() => tf.tidy(() => conv2dFastGrad(x, w, 1, pad)), reps);
    const fast = await time(() => tf.tidy(() => tf.grad((v: tf.Tensor) => tf.sum(conv2dFastGrad(v as tf.Tensor4D, w, 1, pad)))(x)), reps, true);
    result.gradPeakBytes = fast.peakBytes;
    const builtin = await time(() => tf.tidy(() => tf.grad((v: tf.Tensor) => tf.sum(conv2dPadded(v as tf.Tensor4D, w, 1, pad)))(x)), reps);
    result.forwardMs = fwd.medianMs;
    result.gradMs = fast.medianMs;
    result.ratio = fast.medianMs / fwd.medianMs;
    result.builtinGradMs = builtin.medianMs;
  } catch (err) {
    result.error = err instanceof Error ? err.message.split('\n')[0] : String(err);
  } finally {
    tf.dispose([x, w]);
  }
  return result;
}

/**
 * The attention score product of the 64 x 64 level (`q k^T` for batch 2 x 8 heads, 4096 x 40 by 40 x 4096) and its
 * gradient with respect to both operands, with plain `tf.matMul` (`gradMs`) and with the plain-product split that
 * `KernelChoices.plainProducts` selects (`plainGradMs`): the measurement behind that table entry.
 */
async function timeMatmul(backend: BackendName, batch: number, tokens: number, dim: number, reps: number): Promise<Result> {
  const result: Result = { backend, case: `attention q k^T`, input: `${batch}x${tokens}x${dim} by ${batch}x${dim}x${tokens}`, reps };
  const q = seeded([batch, tokens, dim], 1);
  const kt = seeded([batch, dim, tokens], 2);
  result.liveBytes = tf.memory().numBytes;
  const grads = (plainProducts: boolean) => () =>
    withKernelChoices({ plainProducts }, () => tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(matMul(a, b)))([q, kt])));
  try {
    result.forwardMs = (await time(() => withKernelChoices({ plainProducts: false }, () => matMul(q, kt)), reps)).medianMs;
    const plain = await time(grads(false), reps, true);
    result.gradMs = plain.medianMs;
    result.gradPeakBytes = plain.peakBytes;
    result.ratio = plain.medianMs / result.forwardMs;
    result.plainGradMs = (await time(grads(true), reps)).medianMs;
  } catch (err) {
    result.error = err instanceof Error ? err.message.split('\n')[0] : String(err);
  } finally {
    tf.dispose([q, kt]);
  }
  return result;
}

/** A benchmark case: how to run it on one backend (`undefined`: not timed there). */
interface Case {
  id: string;
  run(backend: BackendName): Promise<Result> | undefined;
}

const FIXTURES: Record<string, [string, string]> = {
  sd1: ['tiny-sd UNet (SD 1.x style)', path.join(ROOT, 'converted_models', 'tiny-sd', 'unet')],
  sd2: ['unet-sd2 fixture (SD 2.x style)', path.join(ROOT, 'spec', 'fixtures', 'models', 'unet-sd2')],
  toyworld: ['toy-world UNet (the shipped default model)', path.join(ROOT, 'converted_models', 'toyworld', 'unet')],
};

async function withSubject(backend: BackendName, s: Subject, reps: number, note?: string): Promise<Result> {
  try {
    return await timeSubject(backend, s, reps, note);
  } finally {
    s.dispose();
  }
}

/** The input of a full-size block case: its kind, batch, side, channels and timed runs (one warm-up before). */
interface BlockShape {
  kind: 'down' | 'mid' | 'full' | 'conv' | 'matmul';
  /** The backends that time it (default: all; the whole UNet: not wasm). */
  backends?: BackendName[];
  batch: number;
  size: number;
  channels: number;
  reps: number;
  note?: string;
}

/**
 * The full-size SD 1.x block cases' inputs per backend, shared by our run and PyTorch's (reference_unet.py).
 * The cpu backend (pure JavaScript, ~30x slower than wasm) times smaller inputs: the 64x64 level at 16x16, the
 * mid block at batch 1 and 4x4, the convolution at 16x16.
 */
const BLOCK_SHAPES: Record<string, (b: BackendName) => BlockShape> = {
  'sd1-down64': (b) =>
    b === 'cpu'
      ? { kind: 'down', batch: 2, size: 16, channels: 320, reps: 1, note: 'cpu: 16x16 instead of 64x64' }
      : { kind: 'down', batch: 2, size: 64, channels: 320, reps: 1 },
  'sd1-mid8': (b) =>
    b === 'cpu'
      ? { kind: 'mid', batch: 1, size: 4, channels: 1280, reps: 1, note: 'cpu: batch 1, 4x4 instead of 8x8' }
      : { kind: 'mid', batch: 2, size: 8, channels: 1280, reps: 3 },
  // The whole UNet does not fit the wasm backend (3.2 GiB of weights, and XNNPACK packs a copy of each layer's
  // weights), so it runs on tensorflow and cpu, at 8x8 latents (a 64-pixel image).
  'sd1-full8': () => ({ kind: 'full', backends: ['tensorflow', 'cpu'], batch: 2, size: 8, channels: 4, reps: 1, note: 'the whole UNet; tensorflow and cpu hold it, wasm does not' }),
  // The whole UNet at a 512-pixel image's 64x64 latents: what each step of a real edit costs (tensorflow only).
  'sd1-full64': () => ({ kind: 'full', backends: ['tensorflow'], batch: 2, size: 64, channels: 4, reps: 1, note: 'the whole UNet at 512 px' }),
  conv: (b) => (b === 'cpu' ? { kind: 'conv', batch: 2, size: 16, channels: 320, reps: 2 } : { kind: 'conv', batch: 2, size: 64, channels: 320, reps: 1 }),
  matmul: (b) =>
    b === 'cpu' ? { kind: 'matmul', batch: 16, size: 1024, channels: 40, reps: 1, note: 'cpu: 1024 tokens' } : { kind: 'matmul', batch: 16, size: 4096, channels: 40, reps: 1 },
};

function blockCase(id: string): Case {
  return {
    id,
    run: (b) => {
      const s = BLOCK_SHAPES[id]!(b);
      if (s.backends !== undefined && !s.backends.includes(b)) return undefined;
      if (s.kind === 'conv') return timeConv(b, s.size, s.channels, s.batch, s.reps);
      if (s.kind === 'matmul') return timeMatmul(b, s.batch, s.size, s.channels, s.reps);
      if (s.kind === 'full') return withSubject(b, fullSubject(s.size, s.batch), s.reps, s.note);
      const subject =
        s.kind === 'down'
          ? blockSubject('SD1 down level (CrossAttnDownBlock2D layer)', down64(), s.size, s.channels, s.batch)
          : blockSubject('SD1 mid block (UNetMidBlock2DCrossAttn)', mid8(), s.size, s.channels, s.batch);
      return withSubject(b, subject, s.reps, s.note);
    },
  };
}

/** Every case, in order. The cpu backend does not time the 512-pixel UNet. */
const CASES: Case[] = [
  { id: 'fixture-sd1', run: (b) => withSubject(b, fixtureSubject(...FIXTURES.sd1!, 8, 2), b === 'cpu' ? 3 : 5, '64 px image') },
  { id: 'fixture-sd2', run: (b) => withSubject(b, fixtureSubject(...FIXTURES.sd2!, 8, 2), b === 'cpu' ? 3 : 5, '64 px image') },
  // The default model at its own size: per-kernel overhead, not arithmetic (docs/benchmarks.md, the toy world).
  { id: 'toyworld', run: (b) => withSubject(b, fixtureSubject(...FIXTURES.toyworld!, 16, 2), b === 'cpu' ? 3 : 10, '64 px image, 16 x 16 latents') },
  {
    id: 'tiny-sd-512',
    run: (b) => (b === 'cpu' ? undefined : withSubject(b, fixtureSubject(FIXTURES.sd1![0], FIXTURES.sd1![1], 64, 2), 1, '512 px image, the shipped model at its default size')),
  },
  ...Object.keys(BLOCK_SHAPES).map(blockCase),
];

/** The cases of the default suite (`npm run bench`, on wasm): all but the 512-pixel tiny-sd UNet. */
export const QUICK_CASES = ['fixture-sd1', 'fixture-sd2', 'sd1-down64', 'sd1-mid8', 'conv', 'matmul'];

interface Args {
  backends: BackendName[];
  only?: string[];
  threads: number[];
  reference: boolean;
  worker?: [BackendName, string];
}

function parseArgs(argv: string[]): Args {
  let backends: BackendName[] = installedBackends();
  let only: string[] | undefined;
  let threads = [1, 2];
  let reference = true;
  let worker: [BackendName, string] | undefined;
  const backendOf = (v: string | undefined): BackendName => {
    if (!(BACKEND_NAMES as readonly string[]).includes(v ?? '')) throw new Error(`expected a backend (${BACKEND_NAMES.join(', ')}), got ${v}`);
    return v as BackendName;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--backend') {
      backends = [backendOf(argv[++i])];
    } else if (a === '--only') {
      only = (argv[++i] ?? '').split(',');
      const unknown = only.filter((id) => !CASES.some((c) => c.id === id));
      if (unknown.length > 0) throw new Error(`--only: unknown case ${unknown.join(', ')} (cases: ${CASES.map((c) => c.id).join(', ')})`);
    } else if (a === '--threads') {
      threads = (argv[++i] ?? '').split(',').map((v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error(`--threads takes integers from 1 to 64, got ${v}`);
        return n;
      });
    } else if (a === '--no-reference') {
      reference = false;
    } else if (a === '--worker') {
      worker = [backendOf(argv[++i]), argv[++i] ?? ''];
    } else {
      throw new Error(`unet bench: unknown argument ${a}`);
    }
  }
  return { backends, only, threads, reference, worker };
}

/** Runs one case in this process and prints its result as one JSON line on stdout. */
async function runWorker(backend: BackendName, id: string): Promise<void> {
  const c = CASES.find((x) => x.id === id);
  if (c === undefined) throw new Error(`unknown case ${id}`);
  await initBackend({ backend });
  const r = await c.run(backend);
  if (r !== undefined) console.log(JSON.stringify({ ...r, id, maxRssMiB: process.resourceUsage().maxRSS / 1024 }));
}

/**
 * Runs one case in a child process: a fresh wasm heap for each, and a case that exhausts it (wasm aborts the
 * process) is reported as failed instead of ending the benchmark.
 */
function runIsolated(backend: BackendName, id: string): Result | undefined {
  const child = runNode(['unet', '--worker', backend, id]);
  if (child.status === 0) return lastJsonLine<Result>(child.stdout);
  return { id, backend, case: id, input: '', reps: 0, error: child.error };
}

/** PyTorch's side of one block case. */
interface TorchCase {
  timings: TorchTiming[];
  rssBeforeMiB: number;
  maxRssMiB: number;
}

/**
 * PyTorch's timings of the block cases `ids` with `backend`'s shapes: one process per case (its own peak RSS),
 * timing each thread count in turn.
 */
function runTorch(backend: BackendName, ids: string[], threads: number[]): { byId: Map<string, TorchCase>; error?: string } {
  const byId = new Map<string, TorchCase>();
  for (const id of ids) {
    const { note: _note, backends: _backends, ...shape } = BLOCK_SHAPES[id]!(backend);
    console.error(`[torch] ${id} with the ${backend} shapes, ${threads.join(' and ')} thread(s)...`);
    const py = runReferencePython('reference_unet.py', [JSON.stringify({ threads, case: { id, ...shape } })]);
    type Out = { torch: string; ompWaitPolicy: string; rssBeforeMiB: number; maxRssMiB: number; timings: Omit<TorchTiming, 'torch' | 'ompWaitPolicy'>[] };
    const out = py.status === 0 ? lastJsonLine<Out>(py.stdout) : undefined;
    if (out === undefined) return { byId, error: py.error ?? 'no output' };
    byId.set(id, {
      timings: out.timings.map((t) => ({ ...t, torch: out.torch, ompWaitPolicy: out.ompWaitPolicy })),
      rssBeforeMiB: out.rssBeforeMiB,
      maxRssMiB: out.maxRssMiB,
    });
  }
  return { byId };
}

const key = (r: Result): string => `${r.backend}|${r.case}|${r.input}`;

/**
 * The rows of the previous record that this run did not redo and that were measured on this machine's CPU (each
 * keeping its date), then this run's.
 */
function mergeWithRecord(results: Result[], cpu: string): Result[] {
  const file = path.join(ROOT, 'docs', 'bench', 'unet.json');
  if (!fs.existsSync(file)) return results;
  const old = JSON.parse(fs.readFileSync(file, 'utf8')) as { date?: string; machine?: { cpu?: string }; results?: Result[] };
  const redone = new Set(results.map(key));
  const previous = (old.results ?? []).map((r) => ({ ...r, date: r.date ?? old.date, cpu: r.cpu ?? old.machine?.cpu }));
  const elsewhere = previous.filter((r) => r.cpu !== cpu).length;
  if (elsewhere > 0) console.error(`dropping ${elsewhere} rows of the previous record measured on another CPU`);
  const kept = previous.filter((r) => r.cpu === cpu && !redone.has(key(r)));
  const order = (r: Result): number => {
    const i = CASES.findIndex((c) => c.id === r.id);
    return BACKEND_NAMES.indexOf(r.backend) * 100 + (i < 0 ? 99 : i);
  };
  return [...kept, ...results].sort((a, b) => order(a) - order(b));
}

const times = (ours: number | undefined, theirs: number | undefined): string =>
  ours !== undefined && theirs !== undefined ? `${(ours / theirs).toFixed(1)}x` : '-';

/** Runs the UNet benchmark (the `unet` sub-command). */
export async function benchUnet(argv: string[]): Promise<void> {
  const { backends, only, threads, reference, worker } = parseArgs(argv);
  if (worker !== undefined) return runWorker(...worker);
  const results: Result[] = [];
  const started = Date.now();
  const date = new Date().toISOString();
  const machine = machineInfo();
  let torchError: string | undefined;
  for (const backend of backends) {
    const ran: Result[] = [];
    for (const c of CASES) {
      if (only !== undefined && !only.includes(c.id)) continue;
      const r = runIsolated(backend, c.id);
      if (r === undefined) continue;
      ran.push({ ...r, date, cpu: machine.cpu as string });
      const what =
        r.error !== undefined ? `failed: ${r.error}` : `forward ${fmtMs(r.forwardMs!)} ms, +grad ${fmtMs(r.gradMs!)} ms, ratio ${r.ratio!.toFixed(2)}`;
      console.error(`[${r.backend}] ${r.case} (${r.input}): ${what}`);
    }
    const blockIds = ran.map((r) => r.id).filter((id): id is string => id !== undefined && id in BLOCK_SHAPES);
    if (reference && blockIds.length > 0) {
      const torch = runTorch(backend, blockIds, threads);
      torchError ??= torch.error;
      for (const r of ran) {
        const c = r.id !== undefined ? torch.byId.get(r.id) : undefined;
        if (c !== undefined) {
          r.torchRssBeforeMiB = c.rssBeforeMiB;
          r.torchMaxRssMiB = c.maxRssMiB;
          r.torch = c.timings.map((x) => ({
            ...x,
            oursOverTorchForward: r.forwardMs !== undefined ? r.forwardMs / x.forwardMs : undefined,
            oursOverTorchGrad: r.gradMs !== undefined ? r.gradMs / x.gradMs : undefined,
          }));
        }
      }
    }
    results.push(...ran);
  }

  console.log('\nUNet forward vs forward + gradient of the cross-attention loss w.r.t. the input (median ms)\n');
  printTable(
    ['backend', 'case', 'input', 'forward', '+grad', 'ratio', 'note'],
    results.map((r) => [
      r.backend,
      r.case,
      r.input,
      r.forwardMs !== undefined ? fmtMs(r.forwardMs) : '-',
      r.gradMs !== undefined ? fmtMs(r.gradMs) : '-',
      r.ratio !== undefined ? r.ratio.toFixed(2) : '-',
      r.error !== undefined
        ? `FAILED: ${r.error}`
        : r.builtinGradMs !== undefined
          ? `+grad by forward conv; built-in input gradient ${fmtMs(r.builtinGradMs)} ms (${(r.builtinGradMs / r.gradMs!).toFixed(2)}x)`
          : r.plainGradMs !== undefined
            ? `+grad by tf.matMul; split into plain products ${fmtMs(r.plainGradMs)} ms (${(r.plainGradMs / r.gradMs!).toFixed(2)}x)`
            : (r.note ?? ''),
    ]),
  );
  const withTorch = results.filter((r) => r.torch !== undefined && r.torch.length > 0);
  if (withTorch.length > 0) {
    console.log(`\nThe full-size SD 1.x blocks in PyTorch (diffusers blocks, CPU, OMP_WAIT_POLICY=${OMP_WAIT_POLICY}), same shapes; ours/torch per column (median ms)\n`);
    const header = ['backend', 'case', 'ours fwd', 'ours +grad'];
    for (const n of threads) header.push(`torch ${n}thr fwd`, `torch ${n}thr +grad`, `ours/torch${n} fwd`, `ours/torch${n} +grad`);
    printTable(
      header,
      withTorch.map((r) => {
        const row = [r.backend, `${r.id} (${r.input.split(',')[0]})`, fmtMs(r.forwardMs ?? Number.NaN), fmtMs(r.gradMs ?? Number.NaN)];
        for (const n of threads) {
          const t = r.torch!.find((x) => x.threads === n);
          row.push(t ? fmtMs(t.forwardMs) : '-', t ? fmtMs(t.gradMs) : '-', times(r.forwardMs, t?.forwardMs), times(r.gradMs, t?.gradMs));
        }
        return row;
      }),
    );
    const mib = (v: number | undefined): string => (v !== undefined ? `${v.toFixed(0)} MiB` : '-');
    console.log('\nPeak memory of the same cases: ours (live tfjs tensors, weights included; worker process RSS) and PyTorch (process RSS)\n');
    printTable(
      ['backend', 'case', 'ours tensors before', 'ours tensors peak', 'ours max RSS', 'torch RSS before', 'torch max RSS'],
      withTorch.map((r) => [
        r.backend,
        r.id ?? r.case,
        mib(r.liveBytes !== undefined ? r.liveBytes / 2 ** 20 : undefined),
        mib(r.gradPeakBytes !== undefined ? r.gradPeakBytes / 2 ** 20 : undefined),
        mib(r.maxRssMiB),
        mib(r.torchRssBeforeMiB),
        mib(r.torchMaxRssMiB),
      ]),
    );
  }
  if (torchError !== undefined) console.log(`\nPyTorch side: ${torchError}`);
  const file = writeRecord('unet', {
    benchmark: 'unet',
    date,
    machine,
    seconds: Math.round((Date.now() - started) / 1000),
    notes: [
      'forwardMs: forward without hooks; gradMs: forward with the CrossAttentionLoss hook plus tf.grad of the loss w.r.t. the input latent (the edit pass step); ratio = gradMs / forwardMs. Medians of `reps` runs after one warm-up run; each case in its own process.',
      'Full-size SD 1.x blocks have random weights, batch 2 (classifier-free guidance), context 77 x 768.',
      'conv rows: gradMs = forward + input gradient by conv2dFastGrad (a forward convolution), builtinGradMs = forward + input gradient by tfjs Conv2DBackpropInput.',
      'cpu (pure JavaScript, ~30x slower than wasm) times smaller inputs (see each row), and not the 512-pixel UNet.',
      'torch: the same block cases with the same shapes in PyTorch (tools/bench/reference_unet.py: diffusers CrossAttnDownBlock2D / UNetMidBlock2DCrossAttn, F.conv2d), CPU, torch.set_num_threads(threads), OMP_WAIT_POLICY=PASSIVE unless set otherwise (ompWaitPolicy; the default busy-wait makes 2 threads far slower on this shared machine); forward under no_grad with diffusers\' default attention processor; forward + gradient with the cross-attention layers computing explicit probabilities and the same L2 loss, backward to the input. oursOverTorch* = our ms / torch ms (above 1: we are slower). Each block case runs in its own Python process, the thread counts in turn.',
      'Memory: liveBytes = our live tensor bytes before timing (weights, inputs), gradPeakBytes = their peak during the (profiled) warm-up forward + gradient, maxRssMiB = our worker process peak RSS (V8 + wasm heap; the wasm heap never shrinks); torchRssBeforeMiB / torchMaxRssMiB = the PyTorch process RSS after imports and its peak (ru_maxrss).',
      'Rows carry the date and CPU they were measured on: a run that redoes only some cases keeps the other rows of the previous record made on the same CPU.',
      'The whole full-size SD 1.x UNet is not timed: 3.4 GB of float32 weights plus activations exceed the wasm heap (4 GB); it needs the tensorflow backend (tfjs-node).',
      'Timings on a 2-core machine shared with other work: expect +-20%.',
    ],
    results: mergeWithRecord(results, machine.cpu as string),
  });
  console.log(`\nwritten to ${path.relative(ROOT, file)}`);
}
