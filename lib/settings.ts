/**
 * The pipeline's settings in one place: each default with its allowed range, its API option name and its CLI flag
 * (also the HTTP service's form field). The services (inverter, regulariser, guided sampler, captioner), the facade,
 * the option parser shared by the CLI and the service, and the CLI's help text all read them from here, so a
 * default changed here changes everywhere and the help cannot say another value than the code uses.
 *
 * This module imports nothing: every layer (schedulers, editing, the facade, the CLI) may read it.
 */

/** A numeric setting's allowed values: the range, and whether it takes integers only or multiples of a step. */
export interface RangeSetting {
  /** The option's name in the API (`Pix2PixZeroEditOptions`, the services' options). */
  readonly option: string;
  /** The CLI's long option without `--`, also the HTTP service's form field. */
  readonly flag: string;
  /** The smallest allowed value. */
  readonly min: number;
  /** The largest allowed value (`Infinity`: no bound). */
  readonly max: number;
  /** Whether only integers are allowed. */
  readonly integer: boolean;
  /** Values must be multiples of this, when given. */
  readonly multipleOf?: number;
  /** What the setting does (one line). */
  readonly description: string;
}

/** A numeric setting with its default (`N`: the type of its values, e.g. `0 | 1`). */
export interface NumberSetting<N extends number = number> extends RangeSetting {
  /** The value used when the caller gives none. */
  readonly default: N;
}

/** A setting that takes one of a few words. */
export interface ChoiceSetting<T extends string = string> {
  /** The option's name in the API. */
  readonly option: string;
  /** The CLI's long option without `--`, also the HTTP service's form field. */
  readonly flag: string;
  /** The allowed values. */
  readonly choices: readonly T[];
  /** The value used when the caller gives none. */
  readonly default: T;
  /** What the setting does (one line). */
  readonly description: string;
}

/** The authors' caption settings (LAVIS `blip_caption` as pix2pix-zero calls it): what the facade's captioner uses. */
export interface CaptionSettings {
  /** The text the caption continues. */
  readonly prompt: string;
  /** Whether the prompt is dropped from the returned caption. */
  readonly stripPrompt: boolean;
  /** Beams of the beam search. */
  readonly numBeams: number;
  /** The caption, prompt included, has at least this many tokens. */
  readonly minLength: number;
  /** New tokens at most (30 tokens in all with the prompt's 4). */
  readonly maxNewTokens: number;
}

/** Every setting of the pipeline, by API option name. */
export interface PipelineSettings {
  /** DDIM steps of the inversion and of the two editing passes. */
  readonly steps: NumberSetting;
  /** Rounds of noise regularisation per inversion step. */
  readonly numRegSteps: NumberSetting;
  /** Auto-correlation steps per regularisation round. */
  readonly numAutoCorrRolls: NumberSetting;
  /** Weight of the auto-correlation loss. */
  readonly lambdaAc: NumberSetting;
  /** Weight of the KL loss. */
  readonly lambdaKl: NumberSetting;
  /** The smallest roll shift of the auto-correlation loss. */
  readonly minShift: NumberSetting<0 | 1>;
  /** Seed of the roll shifts and of a sampled VAE posterior. */
  readonly seed: NumberSetting;
  /** The image size (default: the model's own, so no number here). */
  readonly size: RangeSetting;
  /** How the image is brought to the size. */
  readonly fit: ChoiceSetting<'resize' | 'crop'>;
  /** The VAE posterior's mean or a seeded sample. */
  readonly vaeEncode: ChoiceSetting<'mean' | 'sample'>;
  /** Classifier-free guidance scale. */
  readonly guidanceScale: NumberSetting;
  /** Step size of the cross-attention guidance, lambda_xa. */
  readonly xaGuidance: NumberSetting;
  /** Multiplier of the edit direction. */
  readonly directionScale: NumberSetting;
  /** Latent elements per image from which CFG's gradient is taken one half at a time. */
  readonly gradientSplitMinElements: NumberSetting;
  /** Latent elements per image below which an unguided step runs both passes in one batched forward. */
  readonly jointForwardMaxElements: NumberSetting;
  /** Local blending's mask threshold on the normalised attention map of the edited object's words. */
  readonly blendThreshold: NumberSetting;
  /** Local blending's mask dilation in latent pixels (default: from the latent's size, so no number here). */
  readonly blendDilation: RangeSetting;
  /** The fraction of the first steps that local blending leaves unblended. */
  readonly blendStart: NumberSetting;
  /** The fraction of the edit's first steps whose self-attention maps are the reference pass's (0: off). */
  readonly selfAttentionInjection: NumberSetting;
  /** Self-attention maps are replayed in layers with at most this many queries. */
  readonly selfAttentionMaxQueries: NumberSetting;
  /** The fraction of the edit's first steps whose cross-attention maps are the reference pass's (0: off). */
  readonly crossAttentionInjection: NumberSetting;
  /** The captioner's generation settings. */
  readonly caption: CaptionSettings;
}

/** Deep-freezes a settings record (each setting is an object of its own). */
function frozen<T extends object>(o: T): Readonly<T> {
  for (const v of Object.values(o)) if (typeof v === 'object' && v !== null) Object.freeze(v);
  return Object.freeze(o);
}

/**
 * The pipeline's defaults and ranges: diffusers' `StableDiffusionPix2PixZeroPipeline` and the authors' values
 * (50 DDIM steps; 5 regularisation rounds of 5 rolls, lambdas 20 and 20; guidance scale 5; cross-attention
 * guidance 0.1; the authors' BLIP caption settings).
 */
export const SETTINGS: PipelineSettings = frozen({
  steps: {
    option: 'steps',
    flag: 'steps',
    default: 50,
    min: 1,
    max: 1000,
    integer: true,
    description: "DDIM steps (at most the scheduler's: 999 for SD 1.x)",
  },
  numRegSteps: { option: 'numRegSteps', flag: 'reg-steps', default: 5, min: 0, max: 100, integer: true, description: 'noise regularisation rounds per inversion step' },
  numAutoCorrRolls: { option: 'numAutoCorrRolls', flag: 'ac-rolls', default: 5, min: 0, max: 100, integer: true, description: 'auto-correlation steps per round' },
  lambdaAc: { option: 'lambdaAc', flag: 'lambda-ac', default: 20, min: 0, max: 1e6, integer: false, description: 'weight of the auto-correlation loss (0: off)' },
  lambdaKl: { option: 'lambdaKl', flag: 'lambda-kl', default: 20, min: 0, max: 1e6, integer: false, description: 'weight of the KL loss (0: off)' },
  minShift: {
    option: 'minShift',
    flag: 'min-shift',
    default: 0,
    min: 0,
    max: 1,
    integer: true,
    description: "smallest roll shift: 0 as diffusers, 1 as the authors' current code",
  },
  seed: { option: 'seed', flag: 'seed', default: 0, min: 0, max: 2 ** 32 - 1, integer: true, description: 'seed of the roll shifts and of a sampled VAE posterior' },
  size: { option: 'size', flag: 'size', min: 8, max: 4096, integer: true, multipleOf: 8, description: "image size (default: the model's, 512 for SD 1.x)" },
  fit: { option: 'fit', flag: 'fit', choices: ['resize', 'crop'], default: 'resize', description: 'stretch to the size, or scale the shorter side and cut the centre' },
  vaeEncode: { option: 'vaeEncode', flag: 'vae-encode', choices: ['mean', 'sample'], default: 'mean', description: "the VAE posterior's mean (deterministic) or a seeded sample" },
  guidanceScale: { option: 'guidanceScale', flag: 'guidance-scale', default: 5, min: 0, max: 100, integer: false, description: 'classifier-free guidance scale (1 or less: off)' },
  xaGuidance: { option: 'xaGuidance', flag: 'xa-guidance', default: 0.1, min: 0, max: 100, integer: false, description: 'cross-attention guidance step (0: off)' },
  directionScale: { option: 'directionScale', flag: 'direction-scale', default: 1, min: -10, max: 10, integer: false, description: 'multiplies the edit direction' },
  gradientSplitMinElements: {
    option: 'gradientSplitMinElements',
    flag: 'gradient-split-min-elements',
    // 32 x 32 x 4: a 256 px image. At 512 px the split keeps the full-size edit under 8 GiB (docs/benchmarks.md).
    default: 32 * 32 * 4,
    min: 0,
    max: Infinity,
    integer: false,
    description: "latent elements per image from which CFG's gradient is taken one half at a time",
  },
  jointForwardMaxElements: {
    option: 'jointForwardMaxElements',
    flag: 'joint-forward-max-elements',
    // 32 x 32 x 4, as above: below it a forward's time is per-kernel overhead, which one batched forward pays once;
    // above it memory counts more (a batch of 3-4 at 512 px).
    default: 32 * 32 * 4,
    min: 0,
    max: Infinity,
    integer: false,
    description: 'latent elements per image below which a step without cross-attention guidance runs the reference and edit passes as one batched forward',
  },
  blendThreshold: {
    option: 'threshold',
    flag: 'blend-threshold',
    // Prompt-to-Prompt's LocalBlend default
    default: 0.3,
    min: 0,
    max: 0.99,
    integer: false,
    description: "local blending: edit where the object words' normalised attention exceeds this",
  },
  blendDilation: {
    option: 'dilation',
    flag: 'blend-dilation',
    min: 0,
    max: 64,
    integer: true,
    description: "local blending: the mask's reach past the attention, in latent pixels (default max(1, round(latent side / 16)), Prompt-to-Prompt's; 0 when every blend word is an attribute; 0: none)",
  },
  blendStart: {
    option: 'start',
    flag: 'blend-start',
    // every step, as this library's first version; Prompt-to-Prompt's notebook waits 0.2 of the steps (start_blend)
    default: 0,
    min: 0,
    max: 1,
    integer: false,
    description: 'local blending: the fraction of the first steps left unblended (the mask still gathers their maps)',
  },
  selfAttentionInjection: {
    option: 'selfAttentionInjection',
    flag: 'self-attention',
    default: 0,
    min: 0,
    max: 1,
    integer: false,
    description: "fraction of the first steps in which the edit pass uses the reference pass's self-attention maps (0: off)",
  },
  selfAttentionMaxQueries: {
    option: 'selfAttentionMaxQueries',
    flag: 'self-attention-max-queries',
    // Prompt-to-Prompt's 16 x 16: SD's 16 x 16 and 8 x 8 levels (4 MiB a layer at batch 2, 8 heads)
    default: 256,
    min: 1,
    max: 1 << 20,
    integer: true,
    description: 'self-attention maps are replayed in layers with at most this many queries',
  },
  crossAttentionInjection: {
    option: 'crossAttentionInjection',
    flag: 'cross-attention',
    default: 0,
    min: 0,
    max: 1,
    integer: false,
    description: "fraction of the first steps in which the edit pass uses the reference pass's cross-attention maps (0: off)",
  },
  caption: { prompt: 'a picture of', stripPrompt: true, numBeams: 3, minLength: 10, maxNewTokens: 26 },
});

/** Whether `value` is allowed by `setting`: a number in its range, an integer where it takes integers, a multiple where it asks. */
export function inRange(setting: RangeSetting, value: unknown): value is number {
  if (typeof value !== 'number' || !(value >= setting.min && value <= setting.max)) return false;
  if (setting.integer && !Number.isInteger(value)) return false;
  return setting.multipleOf === undefined || value % setting.multipleOf === 0;
}

/** The range in words: `an integer in [1, 1000]`, `a number in [0, 100]`. */
export function rangeText(setting: RangeSetting): string {
  return `${setting.integer ? 'an integer' : 'a number'} in [${setting.min}, ${setting.max}]`;
}

/**
 * Whether `steps` is a DDIM step count the pipeline takes: an integer from `SETTINGS.steps.min` to `max` (the
 * range's own, or a scheduler's lower limit). The one rule every check of a step count applies: the option parser
 * (through the range), the guided sampler, the facade's scheduler check and a saved inversion's metadata.
 */
export function isStepCount(steps: unknown, max: number = SETTINGS.steps.max): steps is number {
  return inRange({ ...SETTINGS.steps, max: Math.min(max, SETTINGS.steps.max) }, steps);
}

/**
 * Refuses a step count outside `SETTINGS.steps`' range.
 * @throws Error `steps must be an integer in [1, 1000], got x`.
 */
export function assertStepCount(steps: number): void {
  if (!isStepCount(steps)) throw new Error(`${SETTINGS.steps.option} must be ${rangeText(SETTINGS.steps)}, got ${steps}`);
}

/** A setting as the help shows it with its default: `--steps 50`, `--vae-encode mean|sample`. */
export function flagWithDefault(setting: NumberSetting | ChoiceSetting): string {
  return `--${setting.flag} ${'choices' in setting ? setting.choices.join('|') : setting.default}`;
}
