/**
 * The options of an edit, as the `edit` command takes them (`--steps 10`, `--guidance-scale 5`, ...) and as the HTTP
 * service takes them (form fields of the same long names): one parser, so both accept the same values and refuse
 * the others with the same messages.
 */
import type { Pix2PixZeroEditOptions, Pix2PixZeroInvertOptions } from '../pix2pix-zero.js';
import { UsageError, intOption, numberOption, refuseTogether } from './values.js';

/** Option values by long name, as `util.parseArgs` gives them (strings, flags as booleans). */
export type OptionValues = Record<string, string | boolean | undefined>;

/** A string option's value (undefined: not given). */
export function stringValue(v: OptionValues, k: string): string | undefined {
  const x = v[k];
  return typeof x === 'string' ? x : undefined;
}

/** The inversion options of `edit` and `invert`, for `util.parseArgs`. */
export const INVERT_OPTIONS = {
  caption: { type: 'string' },
  steps: { type: 'string' },
  'reg-steps': { type: 'string' },
  'ac-rolls': { type: 'string' },
  'lambda-ac': { type: 'string' },
  'lambda-kl': { type: 'string' },
  'min-shift': { type: 'string' },
  'vae-encode': { type: 'string' },
  seed: { type: 'string' },
  size: { type: 'string' },
  fit: { type: 'string' },
} as const;

/** The guidance options of `edit` (the editing pass), for `util.parseArgs`. */
export const GUIDANCE_OPTIONS = {
  'guidance-scale': { type: 'string' },
  'xa-guidance': { type: 'string' },
  'negative-prompt': { type: 'string' },
  'direct-inversion': { type: 'boolean', default: false },
} as const;

/** Parses the inversion options shared by `edit` and `invert`. */
export function invertOptions(v: OptionValues): Pix2PixZeroInvertOptions {
  const vae = stringValue(v, 'vae-encode') ?? 'mean';
  if (vae !== 'mean' && vae !== 'sample') throw new UsageError(`--vae-encode must be 'mean' or 'sample', got '${vae}'`);
  const fit = stringValue(v, 'fit') ?? 'resize';
  if (fit !== 'resize' && fit !== 'crop') throw new UsageError(`--fit must be 'resize' or 'crop', got '${fit}'`);
  const minShift = intOption(stringValue(v, 'min-shift'), 'min-shift', 0, 0, 1) as 0 | 1;
  const sizeArg = stringValue(v, 'size');
  const size = sizeArg === undefined ? undefined : intOption(sizeArg, 'size', 512, 8, 4096);
  if (size !== undefined && size % 8 !== 0) throw new UsageError(`--size must be a multiple of 8, got ${size}`);
  const steps = stringValue(v, 'steps');
  return {
    caption: stringValue(v, 'caption'),
    // Unset, an edit of a saved inversion takes the inversion's own step count; a new inversion takes 50.
    steps: steps === undefined ? undefined : intOption(steps, 'steps', 50, 1, 1000),
    numRegSteps: intOption(stringValue(v, 'reg-steps'), 'reg-steps', 5, 0, 100),
    numAutoCorrRolls: intOption(stringValue(v, 'ac-rolls'), 'ac-rolls', 5, 0, 100),
    lambdaAc: numberOption(stringValue(v, 'lambda-ac'), 'lambda-ac', 20, 0, 1e6),
    lambdaKl: numberOption(stringValue(v, 'lambda-kl'), 'lambda-kl', 20, 0, 1e6),
    minShift,
    vaeEncode: vae,
    seed: intOption(stringValue(v, 'seed'), 'seed', 0, 0, 2 ** 32 - 1),
    size,
    fit,
  };
}

/** The options of the editing pass that `edit` adds to the inversion's. */
export type GuidanceOptions = Pick<Pix2PixZeroEditOptions, 'guidanceScale' | 'xaGuidance' | 'negativePrompt' | 'directInversion'>;

/** Parses the guidance options of `edit`. */
export function guidanceOptions(v: OptionValues): GuidanceOptions {
  return {
    guidanceScale: numberOption(stringValue(v, 'guidance-scale'), 'guidance-scale', 5, 0, 100),
    xaGuidance: numberOption(stringValue(v, 'xa-guidance'), 'xa-guidance', 0.1, 0, 100),
    negativePrompt: stringValue(v, 'negative-prompt'),
    directInversion: v['direct-inversion'] === true,
  };
}

/** The direction sources: one of --task, --source/--target (with sentence files or a chat endpoint), --direction. */
export function refuseDirectionConflicts(v: OptionValues): void {
  refuseTogether(v, [
    ['task', ['source', 'target', 'source-sentences', 'target-sentences', 'direction']],
    ['direction', ['source', 'target', 'source-sentences', 'target-sentences', 'chat-url', 'chat-model']],
  ]);
}

/** The source and target concept words of `--task a2b`, else of `--source` and `--target` (undefined: not given). */
export function conceptWords(v: OptionValues): { source: string | undefined; target: string | undefined } {
  const task = stringValue(v, 'task');
  if (task === undefined) return { source: stringValue(v, 'source'), target: stringValue(v, 'target') };
  const m = /^([a-z][a-z0-9_-]*)2([a-z][a-z0-9_-]*)$/i.exec(task);
  if (m === null) throw new UsageError(`--task must look like 'cat2dog', got '${task}'`);
  return { source: m[1]!, target: m[2]! };
}

/** The error for a concept given neither by word nor by sentences. */
export function missingConcept(which: 'source' | 'target'): UsageError {
  return new UsageError(`the ${which} concept is missing: give --task, --${which}, or --${which}-sentences`);
}

/** `--direction-scale`, parsed before any work (undefined: not given). */
export function directionScale(v: OptionValues): number | undefined {
  const scale = stringValue(v, 'direction-scale');
  return scale === undefined ? undefined : numberOption(scale, 'direction-scale', 1, -10, 10);
}
