/**
 * The manifest of a tfjs weights folder, `model.json`: the component's config and a standard tfjs
 * `weightsManifest` (`[{paths, weights: [{name, shape, dtype, quantization?}]}]`), its types, and its parser,
 * which validates the whole manifest (dtypes, shapes, unique names, plain shard file names) before anything
 * trusts it.
 */
import type { SafetensorsDType } from '../dtypes.js';
import { type JsonObject, isJsonObject, readJsonObject } from '../json.js';
import { isPlainFileName } from '../shard-files.js';
import { WeightsFileError } from '../weights-file-error.js';

/** The file name of a converted component's manifest. */
export const MODEL_JSON = 'model.json';
/** The `format` written into `model.json`. */
export const TFJS_WEIGHTS_FORMAT = 'pix2pix-zero-weights';
/** The most dimensions a tensor may have. */
const MAX_RANK = 32;

/** The dtypes of a tfjs manifest entry that this reader knows. */
export type TfjsDType = 'float32' | 'int32' | 'bool';

/** One tensor of a tfjs weights manifest. */
export interface TfjsWeightEntry {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: TfjsDType;
  /** float16 storage of a float32 weight (the only quantisation read here). */
  readonly quantization?: { readonly dtype: 'float16'; readonly original_dtype?: 'float32' };
}

/** One group of a tfjs weights manifest: shard file names (relative to `model.json`) and their tensors. */
export interface TfjsWeightsGroup {
  readonly paths: readonly string[];
  readonly weights: readonly TfjsWeightEntry[];
}

/** The content of a converted component's `model.json`. */
export interface TfjsModelJson {
  readonly format: string;
  readonly generatedBy?: string;
  readonly convertedBy?: string;
  /** The component's config (its `config.json`). */
  readonly config: JsonObject;
  readonly weightsManifest: readonly TfjsWeightsGroup[];
}

/** An error in a tfjs weights folder: the message names the file and, where there is one, the tensor. */
export class TfjsWeightsError extends WeightsFileError {
  override name = 'TfjsWeightsError';
}

/** Bytes per stored element of an entry. */
export function storedSize(e: Pick<TfjsWeightEntry, 'dtype' | 'quantization'>): number {
  if (e.quantization !== undefined) return 2;
  return e.dtype === 'bool' ? 1 : 4;
}

/** The safetensors-style dtype name of how an entry is stored (what `info()` reports). */
export function storedDType(e: TfjsWeightEntry): SafetensorsDType {
  if (e.quantization !== undefined) return 'F16';
  return e.dtype === 'float32' ? 'F32' : e.dtype === 'int32' ? 'I32' : 'BOOL';
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function parseEntry(file: string, g: number, raw: unknown): TfjsWeightEntry {
  if (!isJsonObject(raw)) throw new TfjsWeightsError(file, `weightsManifest[${g}].weights has an entry that is not an object`);
  const { name, shape, dtype, quantization } = raw;
  if (typeof name !== 'string' || name.length === 0) {
    throw new TfjsWeightsError(file, `weightsManifest[${g}].weights has an entry without a name`);
  }
  if (dtype !== 'float32' && dtype !== 'int32' && dtype !== 'bool') {
    throw new TfjsWeightsError(file, `unknown or unsupported dtype ${JSON.stringify(dtype)} (expected float32, int32 or bool)`, name);
  }
  if (!Array.isArray(shape) || shape.length > MAX_RANK || !shape.every(isCount)) {
    throw new TfjsWeightsError(file, `shape ${JSON.stringify(shape)} must be a list of at most ${MAX_RANK} non-negative integers`, name);
  }
  let count = 1;
  for (const d of shape as number[]) {
    count *= d;
    if (!Number.isSafeInteger(count)) throw new TfjsWeightsError(file, `shape [${shape.join(', ')}] is too large`, name);
  }
  if (quantization === undefined) return { name, shape: shape as number[], dtype };
  if (!isJsonObject(quantization) || quantization.dtype !== 'float16') {
    const q = isJsonObject(quantization) ? quantization.dtype : quantization;
    throw new TfjsWeightsError(file, `unknown or unsupported quantization dtype ${JSON.stringify(q)} (only float16 is read)`, name);
  }
  if (dtype !== 'float32') throw new TfjsWeightsError(file, `float16 quantization of a ${dtype} weight`, name);
  if (quantization.original_dtype !== undefined && quantization.original_dtype !== 'float32') {
    throw new TfjsWeightsError(file, `float16 quantization with original_dtype ${JSON.stringify(quantization.original_dtype)}`, name);
  }
  return { name, shape: shape as number[], dtype, quantization: { dtype: 'float16', original_dtype: 'float32' } };
}

/**
 * Parses and validates a `model.json` (without touching its shards): a `config` object and a `weightsManifest`
 * of groups with plain shard file names, known dtypes, shapes of non-negative integers and unique tensor names.
 * `file` names it in errors.
 */
export function parseTfjsModelJson(file: string, json: JsonObject): TfjsModelJson {
  const { config, weightsManifest } = json;
  if (!isJsonObject(config)) throw new TfjsWeightsError(file, "has no 'config' object (the component's config.json)");
  if (!Array.isArray(weightsManifest)) throw new TfjsWeightsError(file, "has no 'weightsManifest' list");
  const seen = new Set<string>();
  const groups: TfjsWeightsGroup[] = weightsManifest.map((raw, g) => {
    if (!isJsonObject(raw)) throw new TfjsWeightsError(file, `weightsManifest[${g}] is not an object`);
    const { paths, weights } = raw;
    if (!Array.isArray(paths) || !paths.every(isPlainFileName)) {
      throw new TfjsWeightsError(file, `weightsManifest[${g}].paths must be a list of file names in the folder, got ${JSON.stringify(paths)}`);
    }
    if (!Array.isArray(weights)) throw new TfjsWeightsError(file, `weightsManifest[${g}] has no 'weights' list`);
    const entries = weights.map((w) => parseEntry(file, g, w));
    for (const e of entries) {
      if (seen.has(e.name)) throw new TfjsWeightsError(file, 'appears more than once in the manifest', e.name);
      seen.add(e.name);
    }
    if (entries.length > 0 && paths.length === 0) {
      throw new TfjsWeightsError(file, `weightsManifest[${g}] has tensors but no shard files`);
    }
    return { paths, weights: entries };
  });
  return {
    format: typeof json.format === 'string' ? json.format : '',
    generatedBy: typeof json.generatedBy === 'string' ? json.generatedBy : undefined,
    convertedBy: typeof json.convertedBy === 'string' ? json.convertedBy : undefined,
    config,
    weightsManifest: groups,
  };
}

/** Reads and validates `model.json` (not its shards). */
export function readTfjsModelJson(file: string): TfjsModelJson {
  return parseTfjsModelJson(file, readJsonObject(file, 'tfjs weights manifest'));
}
