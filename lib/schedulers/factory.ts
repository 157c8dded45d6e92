/**
 * Builds schedulers from a diffusers scheduler config by its `_class_name`, one fresh instance per call. Each
 * registered class names the scheduler of each walk: pix2pix-zero samples with DDIM and inverts with the DDIM
 * inverse scheduler built from the same config (as diffusers' `DDIMInverseScheduler.from_config`).
 *
 * Stable Diffusion folders often ship another scheduler's config (PNDM for SD 1.x); its betas and prediction
 * type are those of the model, and pix2pix-zero replaces the scheduler by DDIM over them, as diffusers' own
 * pix2pix-zero example does (`DDIMScheduler.from_config(pipeline.scheduler.config)`). Those classes are
 * registered as {@link DDIM_COMPATIBLE}.
 */
import type { JsonObject } from '../io/json.js';
import { ConfigFields } from '../io/config-fields.js';
import { type DDIMConfig, parseDDIMConfig } from './config.js';
import { DDIMInverseScheduler } from './ddim-inverse.js';
import { DDIMScheduler } from './ddim.js';
import type { Scheduler, SchedulerFactory, SchedulerRole } from './scheduler.js';

/** How to build the scheduler of each walk from a parsed config. */
export type SchedulerEntry = Readonly<Record<SchedulerRole, (config: DDIMConfig) => Scheduler>>;

const DDIM_ENTRY: SchedulerEntry = {
  sampling: (c) => new DDIMScheduler(c),
  inversion: (c) => new DDIMInverseScheduler(c),
};

/**
 * diffusers scheduler classes of the Stable Diffusion family (the same discrete beta schedule) whose configs are
 * walked with DDIM; schedules of another kind (EDM, flow matching) are not among them and are refused.
 */
export const DDIM_COMPATIBLE = [
  'PNDMScheduler',
  'DDPMScheduler',
  'LMSDiscreteScheduler',
  'EulerDiscreteScheduler',
  'EulerAncestralDiscreteScheduler',
  'DPMSolverMultistepScheduler',
  'DPMSolverSinglestepScheduler',
  'DEISMultistepScheduler',
  'UniPCMultistepScheduler',
  'HeunDiscreteScheduler',
  'KDPM2DiscreteScheduler',
  'KDPM2AncestralDiscreteScheduler',
  'LCMScheduler',
] as const;

const REGISTRY = new Map<string, SchedulerEntry>([
  ['DDIMScheduler', DDIM_ENTRY],
  ['DDIMInverseScheduler', DDIM_ENTRY],
  ...DDIM_COMPATIBLE.map((name) => [name, DDIM_ENTRY] as [string, SchedulerEntry]),
]);

/** The class assumed when a config has no `_class_name`. */
export const DEFAULT_SCHEDULER_CLASS = 'DDIMScheduler';

/** Registers (or replaces) the schedulers built for configs of diffusers class `className`. */
export function registerScheduler(className: string, entry: SchedulerEntry): void {
  if (className.length === 0) throw new Error('registerScheduler: the class name is empty');
  REGISTRY.set(className, entry);
}

/** The registered class names. */
export function registeredSchedulers(): string[] {
  return [...REGISTRY.keys()];
}

/** A {@link SchedulerFactory} over one scheduler config, chosen by its `_class_name`. */
export class ConfigSchedulerFactory implements SchedulerFactory {
  readonly className: string;
  private readonly config: DDIMConfig;
  private readonly entry: SchedulerEntry;

  /** @throws Error naming `_class_name` when it is not a registered scheduler class, or a bad config field. */
  constructor(json: JsonObject) {
    const r = new ConfigFields(json, 'scheduler config');
    const name = r.string('_class_name', DEFAULT_SCHEDULER_CLASS);
    const entry = REGISTRY.get(name);
    if (entry === undefined) {
      throw r.error('_class_name', `${JSON.stringify(name)} is not a supported scheduler (supported: ${registeredSchedulers().join(', ')})`);
    }
    this.className = name;
    this.entry = entry;
    this.config = parseDDIMConfig(json);
  }

  create(role: SchedulerRole): Scheduler {
    return this.entry[role](this.config);
  }
}
