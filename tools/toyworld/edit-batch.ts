/**
 * `node dist/tools/toyworld/edit-batch.js <job.json>`: many pix2pix-zero edits in one Node process (the models
 * load once), for the toy-world quality benchmark (`npm run eval`, tools/toyworld/eval.py writes the job).
 *
 * The job (JSON):
 *
 * ```json
 * { "model": "converted_models/toyworld", "captioner": "converted_models/toyworld/captioner" | null,
 *   "captionOptions": { ... } | null, "backend": "auto", "cacheDir": "tmp/eval/cache" | false,
 *   "settings": { "steps": 20, "guidanceScale": 5, "xaGuidance": [0.1, 0], "seed": 0, "size": 64, "numRegSteps": 5,
 *                "blendThreshold": 0.3, "blendDilation": null, "blendStart": 0, "blendOverlay": true, "selfAttention": 0,
 *                "crossAttention": 0 },
 *   "tasks": { "circle2square": { "source": "circle", "target": "square",
 *              "sourceSentences": "assets/sentences/circle.txt", "targetSentences": "assets/sentences/square.txt",
 *              "direction": "d.safetensors" | null } },
 *   "items": [ { "id": "...", "task": "circle2square", "image": "in.png", "caption": "..." | null,
 *                "outputs": ["edit-xa0.1.png", "edit-xa0.png"], "reconstruction": "rec.png",
 *                "outputsDirect": ["di-xa0.1.png", "di-xa0.png"] | null, "reconstructionDirect": "di-rec.png" | null,
 *                "outputsBlend": ["di-lb-xa0.1.png", "di-lb-xa0.png"] | null } ],
 *   "results": "results.json", "captionOnly": false, "skipExisting": false, "reverse": false }
 * ```
 *
 * Each image is captioned (by the captioner when the item has no caption), inverted once, and edited once per
 * `xaGuidance` value (`outputs[i]` for `xaGuidance[i]`), and, when the item has `outputsDirect`, once more per
 * value with Direct Inversion from the same inversion, and, when it has `outputsBlend`, once more per value with
 * Direct Inversion and local blending on the task's source word, all through the public `Pix2PixZero` API. The results
 * file (captions and seconds per phase) is rewritten after every image, so a cut-short run keeps what it did.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs-core';
import { Pix2PixZero, Direction, readSentenceFile, writePng, type BackendChoice } from '../../lib/index.js';

interface TaskSpec {
  source: string;
  target: string;
  sourceSentences: string;
  targetSentences: string;
  /** A saved direction (`pix2pix-zero direction --out`) to use instead of the banks' (the banks then only name the task). */
  direction?: string | null;
}

interface ItemSpec {
  id: string;
  task: string;
  image: string;
  caption?: string | null;
  outputs: string[];
  reconstruction?: string | null;
  /** Direct Inversion edits, one per xaGuidance value (optional). */
  outputsDirect?: string[] | null;
  /** The Direct Inversion reference pass (the VAE round trip of the input). */
  reconstructionDirect?: string | null;
  /** Direct Inversion + local blending edits, one per xaGuidance value (optional). */
  outputsBlend?: string[] | null;
  /** This item's self- and cross-attention injection for its outputsBlend edits (default: the job's settings). */
  selfAttention?: number;
  crossAttention?: number;
}

interface Job {
  model: string;
  captioner?: string | null;
  captionOptions?: Record<string, unknown> | null;
  backend?: BackendChoice;
  cacheDir?: string | false;
  settings: { steps: number; guidanceScale: number; xaGuidance: number[]; seed: number; size: number; numRegSteps?: number; blendThreshold?: number; blendDilation?: number | null; blendStart?: number; blendOverlay?: boolean; selfAttention?: number; selfAttentionMaxQueries?: number | null; crossAttention?: number; directionScale?: number };
  tasks: Record<string, TaskSpec>;
  items: ItemSpec[];
  results: string;
  /** Only caption the images (no inversion, no edits): the benchmark captions first, then edits on both sides. */
  captionOnly?: boolean;
  /** Skip an item whose outputs all exist when its turn comes (a second process can then share the work). */
  skipExisting?: boolean;
  /** Work through the items from the last one (the second of two processes sharing a job). */
  reverse?: boolean;
  /** Start no new item after this time (milliseconds since the epoch). */
  stopAt?: number;
}

interface ItemResult {
  id: string;
  caption: string;
  captioned: boolean;
  seconds: { caption: number; invert: number; edits: number[]; editsDirect?: number[]; editsBlend?: number[] };
}

function readJob(file: string): Job {
  const job = JSON.parse(fs.readFileSync(file, 'utf8')) as Job;
  if (typeof job.model !== 'string') throw new Error(`${file}: 'model' (a Stable Diffusion folder) is missing`);
  if (!Array.isArray(job.items)) throw new Error(`${file}: 'items' must be a list`);
  if (!Array.isArray(job.settings?.xaGuidance) || job.settings.xaGuidance.length === 0) {
    throw new Error(`${file}: 'settings.xaGuidance' must be a non-empty list of numbers`);
  }
  for (const item of job.items) {
    if (job.tasks[item.task] === undefined) throw new Error(`${file}: item ${item.id} names an unknown task '${item.task}'`);
    if (job.captionOnly !== true && item.outputs.length !== job.settings.xaGuidance.length) {
      throw new Error(`${file}: item ${item.id} has ${item.outputs.length} outputs for ${job.settings.xaGuidance.length} xaGuidance values`);
    }
    for (const key of ['outputsDirect', 'outputsBlend'] as const) {
      const list = item[key];
      if (job.captionOnly !== true && Array.isArray(list) && list.length !== job.settings.xaGuidance.length) {
        throw new Error(`${file}: item ${item.id} has ${list.length} ${key} for ${job.settings.xaGuidance.length} xaGuidance values`);
      }
    }
  }
  return job;
}

function writeAtomic(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

async function main(jobFile: string): Promise<void> {
  const job = readJob(jobFile);
  const s = job.settings;
  const t0 = performance.now();
  const p2p = await Pix2PixZero.load({
    model: job.model,
    ...(job.captioner ? { captioner: job.captioner } : {}),
    ...(job.captionOptions ? { captionOptions: job.captionOptions } : {}),
    ...(job.backend !== undefined ? { backend: job.backend } : {}),
    cacheDir: job.cacheDir ?? false,
  });
  const loadSeconds = (performance.now() - t0) / 1000;
  const directions = new Map<string, Direction>();
  const results: ItemResult[] = [];
  const save = (done: boolean): void =>
    writeAtomic(job.results, JSON.stringify({ backend: p2p.backend.name, loadSeconds, done, items: results }, null, 1) + '\n');
  try {
    for (const [name, t] of Object.entries(job.tasks)) {
      if (job.captionOnly === true || !job.items.some((i) => i.task === name)) continue;
      const found = t.direction != null
        ? Direction.load(t.direction, p2p.embeddingShape)
        : await p2p.direction({ name: t.source, sentences: readSentenceFile(t.sourceSentences) }, { name: t.target, sentences: readSentenceFile(t.targetSentences) });
      const k = job.settings.directionScale ?? 1;
      directions.set(name, k === 1 ? found : found.scaled(k));
      if (k !== 1) found.dispose();
    }
    const order = job.reverse === true ? [...job.items].reverse() : job.items;
    for (const [k, item] of order.entries()) {
      const files = [
        ...item.outputs,
        ...(typeof item.reconstruction === 'string' ? [item.reconstruction] : []),
        ...(item.outputsDirect ?? []),
        ...(typeof item.reconstructionDirect === 'string' ? [item.reconstructionDirect] : []),
        ...(item.outputsBlend ?? []),
      ];
      if (job.skipExisting === true && job.captionOnly !== true && files.every((f) => fs.existsSync(f))) continue;
      if (job.stopAt !== undefined && Date.now() > job.stopAt) {
        process.stderr.write(`stopping at the deadline with ${order.length - k} items left\n`);
        break;
      }
      const direction = directions.get(item.task)!;
      let ts = performance.now();
      const captioned = item.caption === undefined || item.caption === null;
      const caption = captioned ? await p2p.caption(item.image) : (item.caption as string);
      const captionSeconds = (performance.now() - ts) / 1000;
      if (job.captionOnly === true) {
        results.push({ id: item.id, caption, captioned, seconds: { caption: captionSeconds, invert: 0, edits: [] } });
        continue;
      }
      ts = performance.now();
      const inversion = await p2p.invert(item.image, { caption, steps: s.steps, seed: s.seed, size: s.size, vaeEncode: 'mean', numRegSteps: s.numRegSteps });
      const invertSeconds = (performance.now() - ts) / 1000;
      const edits: number[] = [];
      const editsDirect: number[] = [];
      const editsBlend: number[] = [];
      try {
        for (const [i, xa] of s.xaGuidance.entries()) {
          ts = performance.now();
          const wantRec = i === 0 && typeof item.reconstruction === 'string';
          const r = await p2p.edit(inversion, direction, { steps: s.steps, guidanceScale: s.guidanceScale, xaGuidance: xa, reconstruction: wantRec });
          r.latents.dispose();
          await writePng(item.outputs[i]!, r.image);
          if (wantRec && r.reconstruction) await writePng(item.reconstruction as string, r.reconstruction);
          edits.push((performance.now() - ts) / 1000);
        }
        for (const [i, xa] of (item.outputsDirect ? s.xaGuidance : []).entries()) {
          ts = performance.now();
          const wantRec = i === 0 && typeof item.reconstructionDirect === 'string';
          const r = await p2p.edit(inversion, direction, { steps: s.steps, guidanceScale: s.guidanceScale, xaGuidance: xa, reconstruction: wantRec, directInversion: true });
          r.latents.dispose();
          await writePng(item.outputsDirect![i]!, r.image);
          if (wantRec && r.reconstruction) await writePng(item.reconstructionDirect as string, r.reconstruction);
          editsDirect.push((performance.now() - ts) / 1000);
        }
        for (const [i, xa] of (item.outputsBlend ? s.xaGuidance : []).entries()) {
          ts = performance.now();
          const r = await p2p.edit(inversion, direction, { steps: s.steps, guidanceScale: s.guidanceScale, xaGuidance: xa, reconstruction: false, directInversion: true, localBlend: { threshold: s.blendThreshold ?? undefined, dilation: s.blendDilation ?? undefined, start: s.blendStart ?? undefined, overlay: s.blendOverlay === true },
            selfAttentionInjection: item.selfAttention ?? s.selfAttention ?? 0,
            selfAttentionMaxQueries: s.selfAttentionMaxQueries ?? undefined,
            crossAttentionInjection: item.crossAttention ?? s.crossAttention ?? 0,
          });
          r.latents.dispose();
          await writePng(item.outputsBlend![i]!, r.image);
          editsBlend.push((performance.now() - ts) / 1000);
        }
      } finally {
        inversion.dispose();
      }
      results.push({ id: item.id, caption, captioned, seconds: { caption: captionSeconds, invert: invertSeconds, edits, ...(editsDirect.length > 0 ? { editsDirect } : {}), ...(editsBlend.length > 0 ? { editsBlend } : {}) } });
      save(false);
      process.stderr.write(`[${k + 1}/${job.items.length}] ${item.id} '${caption}' invert ${invertSeconds.toFixed(1)} s, edits ${[...edits, ...editsDirect, ...editsBlend].map((e) => e.toFixed(1)).join(' / ')} s, tensors ${tf.memory().numTensors}\n`);
    }
    save(true);
  } finally {
    for (const d of directions.values()) d.dispose();
    p2p.dispose();
  }
}

const jobFile = process.argv[2];
if (jobFile === undefined) {
  console.error('usage: node dist/tools/toyworld/edit-batch.js <job.json>');
  process.exitCode = 2;
} else {
  main(jobFile).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}
