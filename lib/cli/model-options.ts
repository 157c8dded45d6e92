/**
 * The options that load a model (`edit`, `invert`, `direction`, `serve`, `worker`), their checks, the load
 * itself, and the load of the pipeline commands, which print their result with its timings.
 */
import { performance } from 'node:perf_hooks';
import { Pix2PixZero } from '../pix2pix-zero.js';
import { COMMON_OPTIONS, type CliIO, EXIT, UsageError, backendOption, refuseTogether } from './command.js';
import type { PlannedOutput } from './outputs.js';
import { type ProgressReporter, roundMs } from './progress.js';
import { type OptionValues as Values, stringValue as str } from '../options/edit-options.js';

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
export function cacheOutput(v: Values): PlannedOutput {
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

/** A model loaded for one pipeline command, and how that command prints its result. */
export interface CommandModel {
  readonly p2p: Pix2PixZero;
  /**
   * Prints the result: under `--json` the result with the phase timings and the total since the load began,
   * else the text lines. Returns the success exit code.
   */
  readonly report: (result: Record<string, unknown>, text: string[]) => number;
}

/**
 * {@link load}s the model once through (`oneShot`) as the `load` phase of `progress`, for `edit`, `invert` and
 * `direction`. The caller disposes the model.
 */
export async function loadForCommand(v: Values, io: CliIO, progress: ProgressReporter): Promise<CommandModel> {
  const t0 = performance.now();
  progress.start('load');
  const p2p = await load(v, io, true);
  progress.finish();
  const report = (result: Record<string, unknown>, text: string[]): number => {
    progress.finish();
    if (v.json === true) io.out(JSON.stringify({ ...result, timings: { ...progress.timings, total: roundMs((performance.now() - t0) / 1000) } }, null, 2));
    else io.out(text.join('\n'));
    return EXIT.ok;
  };
  return { p2p, report };
}
