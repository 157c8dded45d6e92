/**
 * An edit asked for over HTTP: the `edit` command's options as form fields of the same long names, validated by
 * the CLI's own parser (lib/options/edit-options.ts), so a field the CLI would refuse is refused with the CLI's
 * message. The result is plain JSON: it travels through a queue to a worker unchanged.
 */
import type { Pix2PixZeroEditOptions } from '../pix2pix-zero.js';
import {
  GUIDANCE_OPTIONS,
  INVERT_OPTIONS,
  type OptionValues,
  conceptWords,
  directionScale,
  guidanceOptions,
  invertOptions,
  missingConcept,
  refuseDirectionConflicts,
} from '../options/edit-options.js';
import { UsageError } from '../options/values.js';

/** The fields of `POST /api/edits` besides the `image` file: `edit`'s options that name no file. */
export const EDIT_FIELDS: readonly string[] = ['task', 'source', 'target', ...Object.keys(INVERT_OPTIONS), ...Object.keys(GUIDANCE_OPTIONS), 'direction-scale'];

/** The options of an edit that are plain values (no callbacks, no signal): what a job carries. */
export type EditJobOptions = Omit<Pix2PixZeroEditOptions, 'onProgress' | 'signal' | 'onStepEnd' | 'shifts' | 'reconstruction'>;

/** A validated edit: the two concept words and the options. */
export interface EditRequest {
  readonly source: string;
  readonly target: string;
  readonly options: EditJobOptions;
}

/** A flag's text (`true`/`on`/`1`, `false`/`off`/`0` or empty) as a boolean: what an HTML checkbox or curl sends. */
function flag(name: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === 'true' || v === 'on' || v === '1') return true;
  if (v === 'false' || v === 'off' || v === '0' || v === '') return false;
  throw new UsageError(`--${name} is a flag: give true or false, got '${value}'`);
}

/**
 * Validates the form fields of an edit (field name -> text). An unknown field, a field given twice, or a value the
 * CLI would refuse is a {@link UsageError} with the CLI's message. An empty text field counts as not given (what a
 * form sends for a field left blank).
 */
export function parseEditFields(fields: readonly (readonly [string, string])[]): EditRequest {
  const v: OptionValues = {};
  const flags = new Set(Object.entries(GUIDANCE_OPTIONS).filter(([, o]) => o.type === 'boolean').map(([k]) => k));
  for (const [name, value] of fields) {
    if (!EDIT_FIELDS.includes(name)) throw new UsageError(`unknown field '${name}': the fields are image, ${EDIT_FIELDS.join(', ')}`);
    if (v[name] !== undefined) throw new UsageError(`--${name} is given twice: give it once`);
    if (flags.has(name)) v[name] = flag(name, value);
    else if (value !== '') v[name] = value;
  }
  refuseDirectionConflicts(v);
  const { source, target } = conceptWords(v);
  if (source === undefined) throw missingConcept('source');
  if (target === undefined) throw missingConcept('target');
  const options: EditJobOptions = { ...invertOptions(v), ...guidanceOptions(v), directionScale: directionScale(v) };
  // Drop the options left unset, so a request reads the same after a trip through JSON.
  const defined = Object.fromEntries(Object.entries(options).filter(([, x]) => x !== undefined)) as EditJobOptions;
  return { source, target, options: defined };
}
