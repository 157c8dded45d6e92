/**
 * The options of an edit, as the `edit` command takes them (`--steps 10`, `--guidance-scale 5`, ...) and as the HTTP
 * service takes them (form fields of the same long names): one parser, so both accept the same values and refuse
 * the others with the same messages. Defaults and ranges are those of `SETTINGS` (lib/settings.ts).
 */
import type { Pix2PixZeroEditOptions, Pix2PixZeroInvertOptions } from '../pix2pix-zero.js';
import { type ChoiceSetting, type NumberSetting, type RangeSetting, SETTINGS } from '../settings.js';
import { UsageError, intOption, numberOption, refuseTogether } from './values.js';

/** Option values by long name, as `util.parseArgs` gives them (strings, flags as booleans). */
export type OptionValues = Record<string, string | boolean | undefined>;

/** A string option's value (undefined: not given). */
export function stringValue(v: OptionValues, k: string): string | undefined {
  const x = v[k];
  return typeof x === 'string' ? x : undefined;
}

/** The value of a numeric setting's option (its default when not given), refused outside its range naming the option. */
export function settingValue<N extends number>(v: OptionValues, setting: NumberSetting<N>): N {
  return rangeValue(v, setting, setting.default) as N;
}

/** The value of a numeric option within `setting`'s range (`fallback` when not given), refused naming the option. */
function rangeValue(v: OptionValues, setting: RangeSetting, fallback: number): number {
  const parse = setting.integer ? intOption : numberOption;
  const n = parse(stringValue(v, setting.flag), setting.flag, fallback, setting.min, setting.max);
  if (setting.multipleOf !== undefined && n % setting.multipleOf !== 0) throw new UsageError(`--${setting.flag} must be a multiple of ${setting.multipleOf}, got ${n}`);
  return n;
}

/** The value of a choice setting's option (its default when not given), refused naming the option and the choices. */
export function choiceValue<T extends string>(v: OptionValues, setting: ChoiceSetting<T>): T {
  const x = stringValue(v, setting.flag) ?? setting.default;
  const found = setting.choices.find((c) => c === x);
  if (found === undefined) throw new UsageError(`--${setting.flag} must be ${setting.choices.map((c) => `'${c}'`).join(' or ')}, got '${x}'`);
  return found;
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
  'local-blend': { type: 'boolean', default: false },
  'blend-words': { type: 'string' },
  'blend-threshold': { type: 'string' },
  'blend-dilation': { type: 'string' },
  'blend-start': { type: 'string' },
  'blend-overlay': { type: 'boolean', default: false },
  'self-attention': { type: 'string' },
  'cross-attention': { type: 'string' },
} as const;

/** Parses the inversion options shared by `edit` and `invert`. */
export function invertOptions(v: OptionValues): Pix2PixZeroInvertOptions {
  const vaeEncode = choiceValue(v, SETTINGS.vaeEncode);
  const fit = choiceValue(v, SETTINGS.fit);
  const minShift = settingValue(v, SETTINGS.minShift);
  // Unset, the size is the model's own (the facade's).
  const size = stringValue(v, SETTINGS.size.flag) === undefined ? undefined : rangeValue(v, SETTINGS.size, SETTINGS.size.min);
  return {
    caption: stringValue(v, 'caption'),
    // Unset, an edit of a saved inversion takes the inversion's own step count; a new inversion takes the default.
    steps: stringValue(v, SETTINGS.steps.flag) === undefined ? undefined : settingValue(v, SETTINGS.steps),
    numRegSteps: settingValue(v, SETTINGS.numRegSteps),
    numAutoCorrRolls: settingValue(v, SETTINGS.numAutoCorrRolls),
    lambdaAc: settingValue(v, SETTINGS.lambdaAc),
    lambdaKl: settingValue(v, SETTINGS.lambdaKl),
    minShift,
    vaeEncode,
    seed: settingValue(v, SETTINGS.seed),
    size,
    fit,
  };
}

/** The options of the editing pass that `edit` adds to the inversion's. */
export type GuidanceOptions = Pick<Pix2PixZeroEditOptions, 'guidanceScale' | 'xaGuidance' | 'negativePrompt' | 'directInversion' | 'localBlend' | 'selfAttentionInjection' | 'crossAttentionInjection'>;

/** Parses the guidance options of `edit`. */
export function guidanceOptions(v: OptionValues): GuidanceOptions {
  return {
    guidanceScale: settingValue(v, SETTINGS.guidanceScale),
    xaGuidance: settingValue(v, SETTINGS.xaGuidance),
    negativePrompt: stringValue(v, 'negative-prompt'),
    directInversion: v['direct-inversion'] === true,
    localBlend: localBlendOption(v),
    selfAttentionInjection: settingValue(v, SETTINGS.selfAttentionInjection),
    crossAttentionInjection: settingValue(v, SETTINGS.crossAttentionInjection),
  };
}

/** `--local-blend` with `--blend-words w1,w2`, `--blend-threshold x`, `--blend-dilation k`, `--blend-start f` and `--blend-overlay` (these only with it). */
function localBlendOption(v: OptionValues): Pix2PixZeroEditOptions['localBlend'] {
  const wordsText = stringValue(v, 'blend-words');
  const dilationText = stringValue(v, SETTINGS.blendDilation.flag);
  const given = [SETTINGS.blendThreshold.flag, SETTINGS.blendStart.flag].some((flag) => stringValue(v, flag) !== undefined) || dilationText !== undefined || v['blend-overlay'] === true;
  if (v['local-blend'] !== true) {
    if (wordsText !== undefined || given) {
      throw new UsageError(`--blend-words, --${SETTINGS.blendThreshold.flag}, --${SETTINGS.blendDilation.flag}, --${SETTINGS.blendStart.flag} and --blend-overlay need --local-blend`);
    }
    return undefined;
  }
  const words = wordsText?.split(',').map((w) => w.trim()).filter((w) => w !== '');
  if (words !== undefined && words.length === 0) throw new UsageError(`--blend-words needs at least one word, got '${wordsText}'`);
  const dilation = dilationText === undefined ? undefined : rangeValue(v, SETTINGS.blendDilation, 0);
  return {
    words,
    threshold: settingValue(v, SETTINGS.blendThreshold),
    start: settingValue(v, SETTINGS.blendStart),
    ...(dilation !== undefined ? { dilation } : {}),
    ...(v['blend-overlay'] === true ? { overlay: true } : {}),
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
  return stringValue(v, SETTINGS.directionScale.flag) === undefined ? undefined : settingValue(v, SETTINGS.directionScale);
}
