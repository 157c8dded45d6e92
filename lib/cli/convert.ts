/**
 * `pix2pix-zero convert <folder | checkpoint.safetensors> <out>`: a single-file Stable Diffusion 1.x/2.x checkpoint
 * in the original layout to a diffusers pipeline folder (safetensors, every tensor as in the file; see
 * models/checkpoint/), or a diffusers Stable Diffusion pipeline, a transformers BLIP folder or a
 * single component folder to the TensorFlow.js weights format. Every component with weights becomes a
 * `model.json` (its config and a tfjs weights manifest) with shards of at most `--shard-mb`; every other file
 * (model index, scheduler, tokenizer, preprocessor and generation configs) is copied. The conversion itself is
 * models/convert-folder.ts; the command runs it in a worker thread, so that an interrupt (SIGINT, SIGTERM) can
 * stop it and remove the folder it was building.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { removeOwnStaging } from '../io/convert-staging.js';
import { DEFAULT_SHARD_BYTES } from '../io/tfjs-weights/writer.js';
import { type ConvertOptions, type ConvertReport } from '../models/convert-folder.js';
import type { ProgressEvent } from '../progress.js';
import { COMMON_OPTIONS, type Command, EXIT, UsageError, numberOption } from './command.js';
import { preflightOutputs } from './outputs.js';
import { defineCommand } from './run-command.js';

export { convertModelFolder, type ConvertOptions, type ConvertReport, type ConvertedComponent } from '../models/convert-folder.js';

/** A conversion stopped by a signal. */
class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
  }
}

/** What the worker thread converts (the options without the callback, which cannot cross threads). */
export interface ConvertJob {
  readonly source: string;
  readonly out: string;
  readonly options: Omit<ConvertOptions, 'onProgress' | 'onNotice'>;
}

/** A message from the worker thread. */
export type ConvertWorkerMessage =
  | { readonly kind: 'progress'; readonly event: ProgressEvent }
  | { readonly kind: 'notice'; readonly message: string }
  | { readonly kind: 'done'; readonly report: ConvertReport }
  | { readonly kind: 'error'; readonly message: string; readonly stack?: string };

/**
 * Runs {@link convertModelFolder} in a worker thread, so that this thread stays free to answer SIGINT and
 * SIGTERM: then the worker is stopped, its staging folder removed (a replaced output put back) and the promise
 * rejects with {@link Interrupted}.
 */
function convertInWorker(job: ConvertJob, onProgress: (event: ProgressEvent) => void, onNotice: (message: string) => void): Promise<ConvertReport> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./convert-worker.js', import.meta.url), { workerData: job });
    const dest = path.resolve(job.out);
    let interrupted: NodeJS.Signals | undefined;
    const onSignal = (signal: NodeJS.Signals): void => {
      interrupted = signal;
      void worker.terminate();
    };
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
    for (const s of signals) process.once(s, onSignal);
    const settle = (fn: () => void): void => {
      for (const s of signals) process.off(s, onSignal);
      fn();
    };
    worker.on('message', (m: ConvertWorkerMessage) => {
      if (m.kind === 'progress') onProgress(m.event);
      else if (m.kind === 'notice') onNotice(m.message);
      else if (m.kind === 'done') settle(() => resolve(m.report));
      else settle(() => reject(Object.assign(new Error(m.message), { stack: m.stack })));
    });
    worker.on('error', (err) => settle(() => reject(err)));
    worker.on('exit', () => {
      if (interrupted === undefined) return;
      const signal = interrupted;
      settle(() => {
        removeOwnStaging(dest);
        reject(new Interrupted(signal));
      });
    });
  });
}

const MiB = 1024 * 1024;
const fmtBytes = (n: number): string => (n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`);

/** `pix2pix-zero convert`. */
export const convertCommand: Command = defineCommand({
  name: 'convert',
  summary: 'convert a single-file SD checkpoint to a diffusers folder, or a model folder to TensorFlow.js weights',
  usage: `Usage: pix2pix-zero convert <checkpoint.safetensors> <out folder> [--prediction-type epsilon|v_prediction]
                            [--extract-ema] [--config <diffusers folder>] [--force] [--json] [--quiet]
       pix2pix-zero convert <model folder> <out folder> [--dtype float32|float16] [--shard-mb 64]
                            [--force] [--json] [--quiet]

A single-file Stable Diffusion 1.x or 2.x checkpoint in the original layout (v1-5-pruned-emaonly.safetensors and
most community models: model.diffusion_model.*, first_stage_model.*, cond_stage_model.*) becomes a diffusers
pipeline folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/): the architecture is read
from the tensor names and shapes, the configs are those of SD 1.x (v1-5) or SD 2.x (2-1), the tokenizer is the
real CLIP one shipped with this package, and every tensor is copied exactly, in its own dtype.
  --prediction-type  what the file cannot say: SD 2.x is v_prediction (the 768 px model, the default, as diffusers)
                     or epsilon (the 512 px base models); SD 1.x is epsilon unless given
  --extract-ema      take a full checkpoint's EMA UNet weights (model_ema.*; as diffusers' extract_ema); by default
                     the non-EMA ones are taken, as diffusers does (an EMA-only file has only those)
  --config           a diffusers pipeline folder whose configs (and tokenizer) to use, for other architectures (as
                     diffusers' from_single_file(config=...)); the checkpoint's shapes must fit them

A diffusers Stable Diffusion pipeline folder, a transformers BLIP folder or a single component folder
(safetensors) becomes the TensorFlow.js weights format: each component with weights becomes a model.json (its config
and a tfjs weights manifest) and binary shards group1-shard1ofN.bin; every other file is copied. The result
loads wherever the original does (--model, --captioner, inspect). Tensor names and shapes stay PyTorch's.
  --dtype     float32 (default: exact) or float16 (half the size; dequantised to float32 on load)
  --shard-mb  the largest shard in MiB (default 64; fractions allowed)

  --force     replace <out> if it exists and is not empty
  --json      print a machine-readable summary on stdout
  --quiet     no progress bar on stderr`,
  options: {
    ...COMMON_OPTIONS,
    dtype: { type: 'string' },
    'shard-mb': { type: 'string' },
    'prediction-type': { type: 'string' },
    'extract-ema': { type: 'boolean', default: false },
    config: { type: 'string' },
    force: { type: 'boolean', default: false },
    quiet: { type: 'boolean', short: 'q', default: false },
  },
  async run({ values, positionals, io, progress }) {
    if (positionals.length !== 2) {
      throw new UsageError(`convert takes a model folder or checkpoint and an output folder (got ${positionals.length} argument${positionals.length === 1 ? '' : 's'})`);
    }
    const dtype = values.dtype ?? 'float32';
    if (dtype !== 'float32' && dtype !== 'float16') throw new UsageError(`--dtype must be 'float32' or 'float16', got '${dtype}'`);
    const shardMb = numberOption(values['shard-mb'], 'shard-mb', DEFAULT_SHARD_BYTES / MiB, 1 / 1024, 1024 * 1024);
    const prediction = values['prediction-type'];
    if (prediction !== undefined && prediction !== 'epsilon' && prediction !== 'v_prediction') {
      throw new UsageError(`--prediction-type must be 'epsilon' or 'v_prediction', got '${prediction}'`);
    }
    const [source, out] = positionals as [string, string];
    const isFile = fs.existsSync(source) && fs.statSync(source).isFile();
    const folderOnly = (['dtype', 'shard-mb'] as const).find((k) => values[k] !== undefined);
    if (isFile && folderOnly !== undefined) throw new UsageError(`--${folderOnly} applies to model folders; a checkpoint's tensors are copied in their own dtype (convert the result again for tfjs weights)`);
    const checkpointOnly = (['prediction-type', 'extract-ema', 'config'] as const).find((k) => values[k] !== undefined && values[k] !== false);
    if (!isFile && checkpointOnly !== undefined) throw new UsageError(`--${checkpointOnly} applies to single-file checkpoints, and ${source} is not a file`);
    preflightOutputs([{ option: 'the output folder', path: out, kind: 'folder' }]);
    const t0 = performance.now();
    let report: ConvertReport;
    try {
      const options = { dtype, shardBytes: Math.floor(shardMb * MiB), force: values.force, predictionType: prediction, extractEma: values['extract-ema'], config: values.config } as const;
      report = await convertInWorker({ source, out, options }, progress.onProgress, (m) => io.err(`pix2pix-zero convert: ${m}`));
    } catch (err) {
      if (!(err instanceof Interrupted)) throw err;
      progress.close();
      io.err(`pix2pix-zero convert: interrupted by ${err.signal}; nothing was written to ${out}`);
      return 128 + (err.signal === 'SIGINT' ? 2 : 15);
    } finally {
      progress.close(); // an error then starts on a line of its own
    }
    const seconds = (performance.now() - t0) / 1000;
    if (values.json) {
      io.out(JSON.stringify({ ...report, seconds }, null, 2));
      return EXIT.ok;
    }
    io.out(
      [
        report.checkpoint !== undefined
          ? `converted ${source} (${report.checkpoint.architecture === 'sd1' ? 'SD 1.x' : 'SD 2.x'} checkpoint, ${report.checkpoint.predictionType}, ${report.checkpoint.configs} configs, EMA ${report.checkpoint.ema}; ${report.checkpoint.ignored} tensors no component holds left out) to the diffusers folder ${out} in ${seconds.toFixed(1)} s:`
          : `converted ${source} (${report.kind}) to ${out} as ${dtype} in ${seconds.toFixed(1)} s:`,
        ...report.components.map(
          (c) => `  ${(c.folder === '.' ? 'model' : c.folder).padEnd(13)} ${String(c.tensors).padStart(5)} tensors  ${fmtBytes(c.bytes).padStart(10)} in ${c.shards} shard${c.shards === 1 ? '' : 's'}`,
        ),
        report.checkpoint !== undefined ? `  ${report.copied.join(', ')} written` : `  ${report.copied.length} other files copied`,
      ].join('\n'),
    );
    return EXIT.ok;
  },
});
