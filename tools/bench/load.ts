/**
 * `npm run bench -- load [--backend tensorflow|wasm|cpu] [--component unet|vae|text_encoder] [--forward N]`
 *
 * Loading one component of the full-size SD 1.x subject (tools/reference/full_size.py `sd1`, built into .fullsize/
 * on first use; the UNet by default: 3.4 GB of float32) in a fresh process: load time, the weights' bytes, the
 * resident set before and after, and the process peak while loading (`process.resourceUsage().maxRSS`), as a ratio
 * to the weights. With `--forward N` (the UNet), then one plain forward pass at N x N latents, batch 2 (CFG's), and the
 * process peak after it: what a denoising step holds above the weights. Written to docs/bench/load-<backend>.json.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { BACKEND_NAMES, type BackendName, initBackend } from '../../lib/backend.js';
import { readStableDiffusionFolder } from '../../lib/io/model-folder.js';
import { ClipTextEncoder } from '../../lib/models/clip-text/text-encoder.js';
import { UNet2DConditionModel } from '../../lib/models/unet/index.js';
import { AutoencoderKL } from '../../lib/models/vae/autoencoder-kl.js';
import { ROOT, lastJsonLine, machineInfo, printTable, runNode, writeRecord } from './harness.js';
import { fullSizeSubject } from './pipeline.js';

const COMPONENTS = ['unet', 'vae', 'text_encoder'] as const;
type Component = (typeof COMPONENTS)[number];

interface LoadResult {
  backend: BackendName;
  component: Component;
  loadS: number;
  weightBytes: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  maxRssMiB: number;
  /** With --forward: the latents' side, the forward's time and the process peak after it. */
  forward?: { size: number; seconds: number; maxRssMiB: number };
}

const GiB = 2 ** 30;
const MiB = 2 ** 20;

/** Loads one component in this (worker) process and prints one JSON line. */
async function worker(backend: BackendName, component: Component, model: string, forward: number | undefined): Promise<void> {
  await initBackend({ backend });
  const folder = readStableDiffusionFolder(model);
  const rssBefore = process.memoryUsage().rss;
  const t = performance.now();
  const unet = component === 'unet' ? UNet2DConditionModel.fromFolder(folder.unet) : undefined;
  const dispose =
    unet !== undefined
      ? () => unet.disposeAll()
      : component === 'vae'
        ? ((v) => () => v.dispose())(AutoencoderKL.fromFolder(folder.vae))
        : ((e) => () => e.dispose())(ClipTextEncoder.fromFolder({ dir: folder.dir, textEncoder: folder.textEncoder, tokenizer: folder.tokenizer }));
  const result: LoadResult = {
    backend,
    component,
    loadS: (performance.now() - t) / 1000,
    weightBytes: tf.memory().numBytes,
    rssBeforeMiB: rssBefore / MiB,
    rssAfterMiB: process.memoryUsage().rss / MiB,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
  };
  if (forward !== undefined && unet !== undefined) {
    const c = unet.config;
    const [x, context] = tf.tidy(() => [tf.randomNormal([2, forward, forward, c.inChannels]) as tf.Tensor4D, tf.randomNormal([2, 77, c.crossAttentionDim]) as tf.Tensor3D]);
    const t0 = performance.now();
    const out = unet.predict(x, 500, context);
    await out.data();
    result.forward = { size: forward, seconds: (performance.now() - t0) / 1000, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
    tf.dispose([x, context, out]);
  }
  dispose();
  console.log(JSON.stringify(result));
}

/** Runs the load benchmark (the `load` sub-command). */
export async function benchLoad(argv: string[]): Promise<void> {
  let backend: BackendName = 'tensorflow';
  let component: Component = 'unet';
  let workerModel: string | undefined;
  let forward: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1] ?? '';
    if (a === '--backend' && (BACKEND_NAMES as readonly string[]).includes(v)) backend = v as BackendName;
    else if (a === '--component' && (COMPONENTS as readonly string[]).includes(v)) component = v as Component;
    else if (a === '--worker') workerModel = v;
    else if (a === '--forward' && Number.isInteger(Number(v)) && Number(v) >= 8 && Number(v) % 8 === 0) forward = Number(v);
    else throw new Error(`load bench: bad argument ${a} ${v} (--backend ${BACKEND_NAMES.join('|')}, --component ${COMPONENTS.join('|')}, --forward <latent side, a multiple of 8>)`);
    i++;
  }
  if (forward !== undefined && component !== 'unet') throw new Error('--forward runs the UNet: leave --component at unet');
  if (workerModel !== undefined) return worker(backend, component, workerModel, forward);
  const model = fullSizeSubject('sd1', 'model_index.json');
  const child = runNode(['load', '--backend', backend, '--component', component, ...(forward !== undefined ? ['--forward', String(forward)] : []), '--worker', model]);
  const r = child.status === 0 ? lastJsonLine<LoadResult>(child.stdout) : undefined;
  if (r === undefined) throw new Error(`the load failed: ${child.error ?? ''}`);
  const weightsMiB = r.weightBytes / MiB;
  console.log(`\nloading the full-size SD 1.x ${component} (${(r.weightBytes / GiB).toFixed(2)} GiB of weights) on ${backend}\n`);
  printTable(
    ['load time', 'RSS before', 'RSS after', 'peak RSS', 'peak / weights', '(peak - before) / weights'],
    [[`${r.loadS.toFixed(1)} s`, `${r.rssBeforeMiB.toFixed(0)} MiB`, `${r.rssAfterMiB.toFixed(0)} MiB`, `${r.maxRssMiB.toFixed(0)} MiB`, `${(r.maxRssMiB / weightsMiB).toFixed(2)}x`, `${((r.maxRssMiB - r.rssBeforeMiB) / weightsMiB).toFixed(2)}x`]],
  );
  if (r.forward !== undefined) {
    const above = (r.forward.maxRssMiB - weightsMiB) / 1024;
    console.log(`\nthen one forward at ${r.forward.size} x ${r.forward.size} latents, batch 2: ${r.forward.seconds.toFixed(1)} s, peak RSS ${r.forward.maxRssMiB.toFixed(0)} MiB = the weights + ${above.toFixed(2)} GiB (runtime included)`);
  }
  const file = writeRecord(`load-${backend}`, {
    benchmark: 'load',
    date: new Date().toISOString(),
    machine: machineInfo(),
    model: path.relative(ROOT, model),
    notes: ['One fresh process: the backend started, then the component read tensor by tensor from its safetensors file. RSS before: the runtime (Node, the backend library) before reading; peak: process.resourceUsage().maxRSS.'],
    result: r,
  });
  console.log(`\nwritten to ${path.relative(ROOT, file)}`);
}
