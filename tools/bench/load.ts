/**
 * `npm run bench -- load [--backend tensorflow|wasm|cpu] [--component unet|vae|text_encoder]`
 *
 * Loading one component of the full-size SD 1.x subject (tools/reference/full_size.py `sd1`, built into .fullsize/
 * on first use; the UNet by default: 3.4 GB of float32) in a fresh process: load time, the weights' bytes, the
 * resident set before and after, and the process peak while loading (`process.resourceUsage().maxRSS`), as a ratio
 * to the weights. Written to docs/bench/load-<backend>.json.
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
}

const GiB = 2 ** 30;
const MiB = 2 ** 20;

/** Loads one component in this (worker) process and prints one JSON line. */
async function worker(backend: BackendName, component: Component, model: string): Promise<void> {
  await initBackend({ backend });
  const folder = readStableDiffusionFolder(model);
  const rssBefore = process.memoryUsage().rss;
  const t = performance.now();
  const dispose =
    component === 'unet'
      ? ((u) => () => u.disposeAll())(UNet2DConditionModel.fromFolder(folder.unet))
      : component === 'vae'
        ? ((v) => () => v.dispose())(AutoencoderKL.fromFolder(folder.vae))
        : ((e) => () => e.dispose())(ClipTextEncoder.load({ dir: folder.dir, textEncoder: folder.textEncoder, tokenizer: folder.tokenizer }));
  const result: LoadResult = {
    backend,
    component,
    loadS: (performance.now() - t) / 1000,
    weightBytes: tf.memory().numBytes,
    rssBeforeMiB: rssBefore / MiB,
    rssAfterMiB: process.memoryUsage().rss / MiB,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
  };
  dispose();
  console.log(JSON.stringify(result));
}

/** Runs the load benchmark (the `load` sub-command). */
export async function benchLoad(argv: string[]): Promise<void> {
  let backend: BackendName = 'tensorflow';
  let component: Component = 'unet';
  let workerModel: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1] ?? '';
    if (a === '--backend' && (BACKEND_NAMES as readonly string[]).includes(v)) backend = v as BackendName;
    else if (a === '--component' && (COMPONENTS as readonly string[]).includes(v)) component = v as Component;
    else if (a === '--worker') workerModel = v;
    else throw new Error(`load bench: bad argument ${a} ${v} (--backend ${BACKEND_NAMES.join('|')}, --component ${COMPONENTS.join('|')})`);
    i++;
  }
  if (workerModel !== undefined) return worker(backend, component, workerModel);
  const model = fullSizeSubject('sd1', 'model_index.json');
  const child = runNode(['load', '--backend', backend, '--component', component, '--worker', model]);
  const r = child.status === 0 ? lastJsonLine<LoadResult>(child.stdout) : undefined;
  if (r === undefined) throw new Error(`the load failed: ${child.error ?? ''}`);
  const weightsMiB = r.weightBytes / MiB;
  console.log(`\nloading the full-size SD 1.x ${component} (${(r.weightBytes / GiB).toFixed(2)} GiB of weights) on ${backend}\n`);
  printTable(
    ['load time', 'RSS before', 'RSS after', 'peak RSS', 'peak / weights', '(peak - before) / weights'],
    [[`${r.loadS.toFixed(1)} s`, `${r.rssBeforeMiB.toFixed(0)} MiB`, `${r.rssAfterMiB.toFixed(0)} MiB`, `${r.maxRssMiB.toFixed(0)} MiB`, `${(r.maxRssMiB / weightsMiB).toFixed(2)}x`, `${((r.maxRssMiB - r.rssBeforeMiB) / weightsMiB).toFixed(2)}x`]],
  );
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
