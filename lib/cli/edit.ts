/**
 * `pix2pix-zero edit`, `invert` and `direction`: the pipeline from the command line. Progress bars on stderr,
 * `--json` output with per-phase timings, artefacts written atomically and only when the run succeeds.
 */
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs-core';
import { writePng } from '../io/image.js';
import { saveInversion } from '../editing/artefacts.js';
import { readSentenceFile, chatSentences } from '../editing/sentences.js';
import type { Concept } from '../editing/services.js';
import { MIN_REGULARIZED_SIDE } from '../editing/noise-regularization.js';
import { DEFAULT_GENERATED_SENTENCES } from '../editing/sentence-generator.js';
import { SETTINGS as S, flagWithDefault as dflt } from '../settings.js';
import { Direction, Inversion, Pix2PixZero, type Pix2PixZeroEditOptions } from '../pix2pix-zero.js';
import {
  COMMON_OPTIONS,
  IMAGE_LIMITS,
  type CliIO,
  type Command,
  EXIT,
  UsageError,
  BACKEND_SYNOPSIS,
  backendOption,
  parseCommandLine,
  refuseTogether,
} from './command.js';
import { type PlannedOutput, preflightOutputs } from './outputs.js';
import { ProgressReporter, roundMs } from './progress.js';
import {
  GUIDANCE_OPTIONS,
  INVERT_OPTIONS,
  type OptionValues as Values,
  conceptWords,
  directionScale,
  guidanceOptions,
  invertOptions,
  missingConcept,
  refuseDirectionConflicts,
  stringValue as str,
} from '../options/edit-options.js';

/** The options that load a model (`edit`, `invert`, `direction`, `serve`, `worker`). */
export const MODEL_OPTIONS = {
  ...COMMON_OPTIONS,
  model: { type: 'string' },
  variant: { type: 'string' },
  'prediction-type': { type: 'string' },
  captioner: { type: 'string' },
  'no-captioner': { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q', default: false },
  'cache-dir': { type: 'string' },
  'no-cache': { type: 'boolean', default: false },
} as const;

const DIRECTION_OPTIONS = {
  task: { type: 'string' },
  source: { type: 'string' },
  target: { type: 'string' },
  'source-sentences': { type: 'string' },
  'target-sentences': { type: 'string' },
  'chat-url': { type: 'string' },
  'chat-model': { type: 'string' },
  direction: { type: 'string' },
  'direction-scale': { type: 'string' },
} as const;

/** The model options that contradict each other. */
export function refuseModelConflicts(v: Values): void {
  refuseTogether(v, [
    ['no-captioner', ['captioner']],
    ['no-cache', ['cache-dir']],
  ]);
}

/**
 * The cache folder to check before the work: the one asked for by --cache-dir or $PIX2PIX_ZERO_CACHE (a default
 * cache that cannot be written only goes unused).
 */
function cacheOutput(v: Values): PlannedOutput {
  const env = process.env.PIX2PIX_ZERO_CACHE;
  const dir = v['no-cache'] === true ? undefined : (str(v, 'cache-dir') ?? (env !== undefined && env !== '' ? env : undefined));
  return { option: str(v, 'cache-dir') !== undefined ? '--cache-dir' : '$PIX2PIX_ZERO_CACHE', path: dir, kind: 'folder' };
}

/**
 * Loads the model the options name; notices (generated sentences, an fp16 variant) go to stderr. `oneShot` (the
 * edit, invert and direction commands): one pass through the phases, so the captioner and the text encoder are
 * freed once used; a server keeps them.
 */
export async function load(v: Values, io: CliIO, oneShot: boolean): Promise<Pix2PixZero> {
  return Pix2PixZero.load({
    onNotice: (message) => io.err(`pix2pix-zero: ${message}`),
    model: str(v, 'model'),
    variant: str(v, 'variant'),
    checkpoint: { predictionType: predictionType(str(v, 'prediction-type')) },
    captioner: v['no-captioner'] === true ? false : str(v, 'captioner'),
    ...backendOption(str(v, 'backend'), v.debug === true),
    cacheDir: v['no-cache'] === true ? false : str(v, 'cache-dir'),
    releaseAfterUse: oneShot,
  });
}

/** `--prediction-type` of a single-file checkpoint given as --model. */
function predictionType(value: string | undefined): 'epsilon' | 'v_prediction' | undefined {
  if (value === undefined || value === 'epsilon' || value === 'v_prediction') return value;
  throw new UsageError(`--prediction-type must be 'epsilon' or 'v_prediction', got '${value}'`);
}

/** The two concepts of a direction from `--task a2b`, `--source/--target` and sentence files or a chat endpoint. */
async function concepts(v: Values): Promise<[Concept, Concept]> {
  const { source, target } = conceptWords(v);
  const chatUrl = str(v, 'chat-url');
  const make = async (word: string | undefined, file: string | undefined, which: 'source' | 'target'): Promise<Concept> => {
    if (file !== undefined) return { name: word ?? file, sentences: readSentenceFile(file) };
    if (word === undefined) throw missingConcept(which);
    if (chatUrl !== undefined) {
      const model = str(v, 'chat-model');
      if (model === undefined) throw new UsageError('--chat-url needs --chat-model');
      return { name: word, sentences: await chatSentences(word, { baseUrl: chatUrl, model, apiKey: process.env.OPENAI_API_KEY }) };
    }
    return word;
  };
  return [await make(source, str(v, 'source-sentences'), 'source'), await make(target, str(v, 'target-sentences'), 'target')];
}

async function directionFrom(p2p: Pix2PixZero, v: Values, progress: ProgressReporter, k: number | undefined): Promise<Direction> {
  const file = str(v, 'direction');
  let d: Direction;
  if (file !== undefined) {
    d = Direction.load(file, p2p.embeddingShape);
  } else {
    const [source, target] = await concepts(v);
    progress.start('direction');
    d = await p2p.direction(source, target, { onProgress: progress.onProgress });
    progress.finish();
  }
  if (k === undefined) return d;
  const scaled = d.scaled(k);
  d.dispose();
  return scaled;
}

function finish(io: CliIO, json: boolean, result: Record<string, unknown>, text: string[], progress: ProgressReporter, t0: number): number {
  progress.finish();
  if (json) io.out(JSON.stringify({ ...result, timings: { ...progress.timings, total: roundMs((performance.now() - t0) / 1000) } }, null, 2));
  else io.out(text.join('\n'));
  return EXIT.ok;
}

export const editCommand: Command = {
  name: 'edit',
  summary: 'edit an image along a concept direction (e.g. cat -> dog), keeping its structure',
  usage: `Usage: pix2pix-zero edit <image> --out out.png [options]

Model:      --model <sd folder | checkpoint.safetensors> (default: $PIX2PIX_ZERO_MODEL, else the shipped model; a
            single-file SD 1.x/2.x checkpoint is converted once into the cache, --prediction-type epsilon|v_prediction
            settling what an SD 2.x file cannot say)  --caption "..." | --captioner <blip folder>
            (default: the model folder's captioner/, if it has one; loaded only when no caption is given)
            | --no-captioner;  --variant fp16 reads the folder's *.fp16.safetensors (as diffusers' variant=; a
            folder with only fp16 weights is read without it, said on stderr)
Direction:  --task cat2dog | --source cat --target dog | --source-sentences a.txt --target-sentences b.txt
            | --direction d.safetensors;  a concept without a built-in bank gets ${DEFAULT_GENERATED_SENTENCES} generated template
            sentences (said on stderr; pix2pix-zero sentences <word> prints them), or --chat-url <openai-compatible
            base url> --chat-model <name> has a language model write them;  --direction-scale k (default ${S.directionScale.default})
Inversion:  ${dflt(S.steps)} (${S.steps.min} to ${S.steps.max}, at most the scheduler's: 999 for SD 1.x)  ${dflt(S.numRegSteps)} ${dflt(S.numAutoCorrRolls)}
            ${dflt(S.lambdaAc)} ${dflt(S.lambdaKl)} --min-shift ${S.minShift.min}|${S.minShift.max} ${dflt(S.vaeEncode)} ${dflt(S.seed)}
            --size <model's size, 512 for SD 1.x; ${S.size.min} to ${S.size.max}, a multiple of ${S.size.multipleOf}; with regularisation on, at least
            ${MIN_REGULARIZED_SIDE} latent pixels a side: ${MIN_REGULARIZED_SIDE * 8} for SD> ${dflt(S.fit)}
            --inversion f (reuse a saved inversion; no other inversion option then)  --save-inversion f
Editing:    ${dflt(S.guidanceScale)} ${dflt(S.xaGuidance)} --negative-prompt "..." (default: the caption)
            --direct-inversion (keep the reference pass on the inversion trajectory, Ju et al.: the
            reconstruction is the input's VAE round trip, the edit drifts less; no extra cost)
Output:     --out out.png  --reconstruction out-rec.png  --save-latents f.safetensors  --save-direction f
            --json  --quiet  ${BACKEND_SYNOPSIS}  --cache-dir d | --no-cache  --debug
${IMAGE_LIMITS} Outputs are checked before the model loads.`,
  async run(argv, io) {
    const { values, positionals } = parseCommandLine(argv, {
      ...MODEL_OPTIONS,
      ...DIRECTION_OPTIONS,
      ...INVERT_OPTIONS,
      inversion: { type: 'string' },
      'save-inversion': { type: 'string' },
      'save-latents': { type: 'string' },
      'save-direction': { type: 'string' },
      ...GUIDANCE_OPTIONS,
      reconstruction: { type: 'string' },
      out: { type: 'string' },
    });
    if (values.help) {
      io.out(this.usage);
      return EXIT.ok;
    }
    const v = values as Values;
    const inversionFile = str(v, 'inversion');
    if (positionals.length !== (inversionFile !== undefined ? 0 : 1)) {
      throw new UsageError(inversionFile !== undefined ? 'give either an image or --inversion, not both' : 'edit takes one image (or --inversion f)');
    }
    const out = str(v, 'out');
    if (out === undefined) throw new UsageError('--out <file.png> is required');
    refuseModelConflicts(v);
    refuseDirectionConflicts(v);
    // A saved inversion carries its own caption and inversion settings: giving others would be silently ignored.
    refuseTogether(v, [['inversion', Object.keys(INVERT_OPTIONS).filter((k) => k !== 'steps')]], 'do not go together (a saved inversion keeps the caption and settings it was made with)');
    const opts: Pix2PixZeroEditOptions = {
      ...invertOptions(v),
      ...guidanceOptions(v),
      reconstruction: str(v, 'reconstruction') !== undefined,
    };
    const scale = directionScale(v);
    preflightOutputs([
      { option: '--out', path: out, kind: 'png' },
      { option: '--reconstruction', path: str(v, 'reconstruction'), kind: 'png' },
      { option: '--save-inversion', path: str(v, 'save-inversion'), kind: 'safetensors' },
      { option: '--save-latents', path: str(v, 'save-latents'), kind: 'safetensors' },
      { option: '--save-direction', path: str(v, 'save-direction'), kind: 'safetensors' },
      cacheOutput(v),
    ]);
    const t0 = performance.now();
    const progress = new ProgressReporter(io, io.isTTY && !values.quiet && !values.json);
    progress.start('load');
    const p2p = await load(v, io, true);
    progress.finish();
    try {
      const direction = await directionFrom(p2p, v, progress, scale);
      try {
        const source = inversionFile !== undefined ? Inversion.load(inversionFile) : positionals[0]!;
        const result = await p2p.edit(source, direction, { ...opts, onProgress: progress.onProgress });
        try {
          await writePng(out, result.image);
          const rec = str(v, 'reconstruction');
          if (rec !== undefined && result.reconstruction !== undefined) await writePng(rec, result.reconstruction);
          const saveInv = str(v, 'save-inversion');
          if (saveInv !== undefined) result.inversion.save(saveInv);
          const saveDir = str(v, 'save-direction');
          if (saveDir !== undefined) direction.save(saveDir);
          const saveLat = str(v, 'save-latents');
          if (saveLat !== undefined) saveInversion(saveLat, result.latents, result.inversion.meta, undefined, 'latents');
          return finish(
            io,
            values.json,
            { out, caption: result.caption, reconstruction: rec, backend: p2p.backend.name, size: [result.image.width, result.image.height] },
            [`wrote ${out} (${result.image.width}x${result.image.height}; caption: "${result.caption}")`, ...(rec !== undefined ? [`wrote ${rec}`] : [])],
            progress,
            t0,
          );
        } finally {
          result.latents.dispose();
          result.inversion.dispose();
        }
      } finally {
        direction.dispose();
      }
    } finally {
      progress.close();
      p2p.dispose();
    }
  },
};

export const invertCommand: Command = {
  name: 'invert',
  summary: 'invert an image to noise and save it, to edit it many times without inverting again',
  usage: `Usage: pix2pix-zero invert <image> --out inversion.safetensors [--model d [--variant fp16]] [--captioner d | --caption "..."]
       [${dflt(S.steps)}] [${dflt(S.numRegSteps)}] [${dflt(S.numAutoCorrRolls)}] [${dflt(S.lambdaAc)}] [${dflt(S.lambdaKl)}] [--min-shift ${S.minShift.min}|${S.minShift.max}]
       [${dflt(S.vaeEncode)}] [${dflt(S.seed)}] [--size <model's>] [${dflt(S.fit)}] [--json] [--quiet]
Ranges as edit's (pix2pix-zero edit --help). ${IMAGE_LIMITS}`,
  async run(argv, io) {
    const { values, positionals } = parseCommandLine(argv, { ...MODEL_OPTIONS, ...INVERT_OPTIONS, out: { type: 'string' } });
    if (values.help) {
      io.out(this.usage);
      return EXIT.ok;
    }
    if (positionals.length !== 1) throw new UsageError('invert takes one image');
    const v = values as Values;
    const out = str(v, 'out');
    if (out === undefined) throw new UsageError('--out <file.safetensors> is required');
    refuseModelConflicts(v);
    const opts = invertOptions(v);
    preflightOutputs([{ option: '--out', path: out, kind: 'safetensors' }]);
    const t0 = performance.now();
    const progress = new ProgressReporter(io, io.isTTY && !values.quiet && !values.json);
    progress.start('load');
    const p2p = await load(v, io, true);
    progress.finish();
    try {
      const inv = await p2p.invert(positionals[0]!, { ...opts, onProgress: progress.onProgress });
      try {
        inv.save(out);
        return finish(io, values.json, { out, caption: inv.caption, steps: inv.meta.steps }, [`wrote ${out} (caption: "${inv.caption}")`], progress, t0);
      } finally {
        inv.dispose();
      }
    } finally {
      progress.close();
      p2p.dispose();
    }
  },
};

export const directionCommand: Command = {
  name: 'direction',
  summary: 'compute an edit direction (mean target - mean source sentence embedding) and save it',
  usage: `Usage: pix2pix-zero direction (--task cat2dog | --source cat --target dog | --source-sentences a.txt
       --target-sentences b.txt) --out direction.safetensors [--model d [--variant fp16]] [--chat-url u --chat-model m]
       [--direction-scale k] [--cache-dir d | --no-cache] [--json] [--quiet]`,
  async run(argv, io) {
    const { values, positionals } = parseCommandLine(argv, { ...MODEL_OPTIONS, ...DIRECTION_OPTIONS, out: { type: 'string' } });
    if (values.help) {
      io.out(this.usage);
      return EXIT.ok;
    }
    if (positionals.length > 0) throw new UsageError(`direction takes no positional arguments (got '${positionals[0]}')`);
    const v = values as Values;
    const out = str(v, 'out');
    if (out === undefined) throw new UsageError('--out <file.safetensors> is required');
    if (str(v, 'direction') !== undefined) throw new UsageError('--direction is an input of edit, not of direction');
    refuseModelConflicts(v);
    refuseDirectionConflicts(v);
    const scale = directionScale(v);
    preflightOutputs([{ option: '--out', path: out, kind: 'safetensors' }, cacheOutput(v)]);
    const t0 = performance.now();
    const progress = new ProgressReporter(io, io.isTTY && !values.quiet && !values.json);
    progress.start('load');
    const p2p = await load(v, io, true);
    progress.finish();
    try {
      const d = await directionFrom(p2p, v, progress, scale);
      try {
        d.save(out);
        const norm = Math.sqrt(tf.sum(tf.square(d.tensor)).dataSync()[0]!);
        return finish(io, values.json, { out, source: d.meta.source, target: d.meta.target, shape: d.tensor.shape, norm }, [`wrote ${out} (${d.meta.source} -> ${d.meta.target}, norm ${norm.toFixed(3)})`], progress, t0);
      } finally {
        d.dispose();
      }
    } finally {
      progress.close();
      p2p.dispose();
    }
  },
};
