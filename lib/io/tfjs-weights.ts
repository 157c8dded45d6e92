/**
 * Model components in the TensorFlow.js weights format: a `model.json` holding the component's config (what its
 * `config.json` holds) and a standard tfjs `weightsManifest` (`[{paths, weights: [{name, shape, dtype,
 * quantization?}]}]`), and binary shard files (`group1-shard1of3.bin`, ...).
 *
 * As in tfjs, a group's tensors lie back to back in the concatenation of its shard files, in manifest order, and a
 * tensor may straddle two shards. float16 storage is tfjs's `quantization: {dtype: 'float16'}` on a float32
 * weight, dequantised to float32 on reading. Tensor names and shapes are the PyTorch ones of the source checkpoint,
 * so the weight-name maps and loaders read these folders exactly as they read safetensors.
 *
 * The reader validates the whole manifest (dtypes, shapes, unique names, shard files present and exactly as large
 * as the manifest implies) before it trusts any of it, then reads tensor by tensor at their offsets; the writer
 * streams tensor by tensor, so neither ever holds a whole shard or model in memory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type SafetensorsDType, decodeElements, floatsToHalfBits, isFloatDType } from './dtypes.js';
import { type JsonObject, isJsonObject, readJsonObject } from './json.js';
import type { TensorData } from './safetensors.js';
import { isPlainFileName, readExactly } from './shard-files.js';
import type { WeightSource } from './weights.js';

/** The file name of a converted component's manifest. */
export const MODEL_JSON = 'model.json';
/** The `format` written into `model.json`. */
export const TFJS_WEIGHTS_FORMAT = 'pix2pix-zero-weights';
/** The default shard size, 64 MiB. */
export const DEFAULT_SHARD_BYTES = 64 * 1024 * 1024;
/** The most dimensions a tensor may have. */
const MAX_RANK = 32;
/** The largest float16 value; anything larger rounds to infinity. */
const F16_MAX = 65504;

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
export class TfjsWeightsError extends Error {
  constructor(
    readonly file: string,
    message: string,
    readonly tensor?: string,
  ) {
    super(`${file}: ${tensor !== undefined ? `tensor '${tensor}': ` : ''}${message}`);
    this.name = 'TfjsWeightsError';
  }
}

/** Where a tensor's bytes are: its group and byte range in the concatenation of the group's shards. */
interface Located {
  readonly entry: TfjsWeightEntry;
  readonly group: number;
  readonly begin: number;
  readonly end: number;
}

/** Bytes per stored element of an entry. */
function storedSize(e: Pick<TfjsWeightEntry, 'dtype' | 'quantization'>): number {
  if (e.quantization !== undefined) return 2;
  return e.dtype === 'bool' ? 1 : 4;
}

/** The safetensors-style dtype name of how an entry is stored (what `info()` reports). */
function storedDType(e: TfjsWeightEntry): SafetensorsDType {
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

/** One open shard file. */
interface Shard {
  readonly path: string;
  readonly size: number;
  /** Offset of the shard's first byte in its group. */
  readonly start: number;
  fd: number | undefined;
}

/**
 * The weights of a tfjs weights folder (`model.json` + shards), read tensor by tensor at their offsets.
 * The constructor validates the manifest and every shard's presence and size; call {@link TfjsWeights.close}
 * when done.
 */
export class TfjsWeights implements WeightSource {
  readonly description: string;
  /** The parsed `model.json`. */
  readonly model: TfjsModelJson;
  private readonly tensors = new Map<string, Located>();
  private readonly groups: Shard[][] = [];

  /** Opens the folder of `modelJson` (the path of its `model.json`). */
  constructor(modelJson: string) {
    this.description = modelJson;
    this.model = readTfjsModelJson(modelJson);
    const dir = path.dirname(modelJson);
    try {
      this.model.weightsManifest.forEach((group, g) => {
        let offset = 0;
        const located: Located[] = group.weights.map((entry) => {
          const bytes = entry.shape.reduce((a, b) => a * b, 1) * storedSize(entry);
          const l = { entry, group: g, begin: offset, end: offset + bytes };
          offset += bytes;
          return l;
        });
        const shards: Shard[] = [];
        let start = 0;
        for (const name of group.paths) {
          const p = path.join(dir, name);
          let size: number;
          try {
            const st = fs.statSync(p);
            if (!st.isFile()) throw new Error('not a file');
            size = st.size;
          } catch {
            const first = located.find((l) => l.end > start) ?? located[located.length - 1];
            const holding = first !== undefined ? ` (holding '${first.entry.name}')` : '';
            throw new TfjsWeightsError(modelJson, `shard ${name}${holding} is missing`);
          }
          shards.push({ path: p, size, start, fd: undefined });
          start += size;
        }
        if (start !== offset) {
          const sizes = shards.map((s) => `${path.basename(s.path)}: ${s.size}`).join(', ');
          const last = located[located.length - 1];
          const short = located.find((l) => l.end > start);
          const which =
            start < offset
              ? `tensor '${short?.entry.name}' ends at byte ${short?.end}: a shard is truncated`
              : `${start - offset} bytes after the last tensor${last !== undefined ? ` '${last.entry.name}'` : ''} are not described by the manifest`;
          throw new TfjsWeightsError(
            modelJson,
            `weights group ${g + 1}: its shards hold ${start} bytes (${sizes}) but its ${located.length} tensors need ${offset}; ${which}`,
          );
        }
        for (const s of shards) s.fd = fs.openSync(s.path, 'r');
        this.groups.push(shards);
        for (const l of located) this.tensors.set(l.entry.name, l);
      });
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** Tensor names in manifest order. */
  names(): string[] {
    return [...this.tensors.keys()];
  }

  private locate(name: string): Located {
    const t = this.tensors.get(name);
    if (t === undefined) throw new TfjsWeightsError(this.description, 'no such tensor in the manifest', name);
    return t;
  }

  /** How tensor `name` is stored (`F32`, `F16` for float16-quantised, `I32`, `BOOL`) and its PyTorch shape. */
  info(name: string): { dtype: SafetensorsDType; shape: readonly number[] } {
    const t = this.locate(name);
    return { dtype: storedDType(t.entry), shape: t.entry.shape };
  }

  /** The stored bytes of tensor `name`, in a fresh buffer aligned for any element type. */
  readBytes(name: string): Uint8Array {
    const t = this.locate(name);
    const out = new Uint8Array(new ArrayBuffer(t.end - t.begin));
    let pos = t.begin;
    for (const s of this.groups[t.group]!) {
      if (pos >= t.end) break;
      if (s.start + s.size <= pos) continue;
      if (s.fd === undefined) throw new TfjsWeightsError(this.description, 'weights are closed', name);
      const n = Math.min(t.end, s.start + s.size) - pos;
      readExactly(s.fd, out, pos - t.begin, n, pos - s.start, () => new TfjsWeightsError(s.path, 'unexpected end of file (the shard is truncated)', name));
      pos += n;
    }
    return out;
  }

  /** Tensor `name` as float32 (float32 and float16-quantised weights) or int32 (int32 and bool) values. */
  read(name: string): TensorData {
    const t = this.locate(name);
    const count = t.entry.shape.reduce((a, b) => a * b, 1);
    const data = decodeElements(this.readBytes(name), storedDType(t.entry), count, `${this.description}: tensor '${name}'`);
    return { dtype: data instanceof Float32Array ? 'float32' : 'int32', shape: [...t.entry.shape], data };
  }

  /** Closes the shard files. Reading afterwards throws. */
  close(): void {
    for (const g of this.groups) {
      for (const s of g) {
        if (s.fd !== undefined) fs.closeSync(s.fd);
        s.fd = undefined;
      }
    }
  }
}

/** How {@link writeTfjsWeights} stores weights. */
export interface TfjsWriteOptions {
  /** `float32` (default) keeps float weights exact; `float16` halves them (tfjs float16 quantisation). */
  readonly dtype?: 'float32' | 'float16';
  /** The largest shard, in bytes (default 64 MiB). */
  readonly shardBytes?: number;
  /** Written as `convertedBy`. */
  readonly convertedBy?: string;
  /** Called after each tensor is written. */
  readonly onTensor?: (done: number, total: number) => void;
}

/** What {@link writeTfjsWeights} wrote. */
export interface TfjsWriteResult {
  readonly modelJson: string;
  readonly tensors: number;
  /** Bytes of tensor data (the sum of the shard sizes). */
  readonly bytes: number;
  readonly shards: string[];
}

/** Splits a byte stream into shard files of at most `shardBytes` bytes each. */
class ShardWriter {
  private fd: number | undefined;
  private index = 0;
  private inShard = 0;
  readonly written: string[] = [];

  constructor(
    private readonly dir: string,
    private readonly names: readonly string[],
    private readonly shardBytes: number,
  ) {}

  write(bytes: Uint8Array): void {
    let pos = 0;
    while (pos < bytes.length) {
      if (this.fd === undefined || this.inShard === this.shardBytes) this.next();
      const n = Math.min(bytes.length - pos, this.shardBytes - this.inShard);
      let done = 0;
      while (done < n) done += fs.writeSync(this.fd!, bytes, pos + done, n - done);
      pos += n;
      this.inShard += n;
    }
  }

  private next(): void {
    this.close();
    const name = this.names[this.index++];
    if (name === undefined) throw new Error('internal error: more tensor bytes than the planned shards hold');
    this.fd = fs.openSync(path.join(this.dir, name), 'w');
    this.written.push(name);
    this.inShard = 0;
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * float32 values as float16 bit patterns ({@link floatsToHalfBits}); a finite value beyond the float16 range is an
 * error naming `what`, never a silent infinity.
 */
export function float16BitsInRange(data: Float32Array, what = 'tensor'): Uint16Array {
  const out = floatsToHalfBits(data);
  for (let i = 0; i < out.length; i++) {
    if ((out[i]! & 0x7fff) === 0x7c00 && Number.isFinite(data[i]!)) {
      throw new Error(`${what}: value ${data[i]} is beyond the float16 range (±${F16_MAX}); convert with --dtype float32`);
    }
  }
  return out;
}

/**
 * Writes the tensors of `source` (in its order) and `config` as a tfjs weights folder in `dir` (which must exist):
 * `model.json` and shards `group1-shardKofN.bin` of at most `shardBytes` each. Float weights are stored as float32,
 * or as float16 with `dtype: 'float16'`; integer and boolean tensors as int32 and bool. Does not clean up on
 * failure: write into a temporary folder and rename it (as `pix2pix-zero convert` does).
 */
export function writeTfjsWeights(dir: string, source: WeightSource, config: JsonObject, options: TfjsWriteOptions = {}): TfjsWriteResult {
  const half = options.dtype === 'float16';
  const shardBytes = options.shardBytes ?? DEFAULT_SHARD_BYTES;
  if (!Number.isSafeInteger(shardBytes) || shardBytes < 1) throw new Error(`shard size must be a positive number of bytes, got ${shardBytes}`);
  const names = source.names();
  const entries: TfjsWeightEntry[] = names.map((name) => {
    const info = source.info(name);
    const shape = [...info.shape];
    if (isFloatDType(info.dtype)) {
      return half ? { name, shape, dtype: 'float32', quantization: { dtype: 'float16', original_dtype: 'float32' } } : { name, shape, dtype: 'float32' };
    }
    return { name, shape, dtype: info.dtype === 'BOOL' ? 'bool' : 'int32' };
  });
  const total = entries.reduce((n, e) => n + e.shape.reduce((a, b) => a * b, 1) * storedSize(e), 0);
  const count = Math.max(1, Math.ceil(total / shardBytes));
  const shardNames = Array.from({ length: count }, (_, i) => `group1-shard${i + 1}of${count}.bin`);
  const writer = new ShardWriter(dir, shardNames, shardBytes);
  try {
    entries.forEach((e, i) => {
      const t = source.read(e.name);
      const what = `${source.description}: tensor '${e.name}'`;
      let bytes: Uint8Array;
      if (e.dtype === 'float32') {
        const f = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
        const stored = half ? float16BitsInRange(f, what) : f;
        bytes = new Uint8Array(stored.buffer, stored.byteOffset, stored.byteLength);
      } else if (e.dtype === 'bool') {
        bytes = Uint8Array.from(t.data, (v) => (v !== 0 ? 1 : 0));
      } else {
        const n = t.data instanceof Int32Array ? t.data : Int32Array.from(t.data);
        bytes = new Uint8Array(n.buffer, n.byteOffset, n.byteLength);
      }
      writer.write(bytes);
      options.onTensor?.(i + 1, entries.length);
    });
  } finally {
    writer.close();
  }
  // A component without tensor bytes still names one (empty) shard, so that the manifest is well formed.
  for (const name of shardNames) if (!writer.written.includes(name)) fs.writeFileSync(path.join(dir, name), new Uint8Array(0));
  const model: TfjsModelJson = {
    format: TFJS_WEIGHTS_FORMAT,
    generatedBy: typeof config._diffusers_version === 'string' ? `diffusers ${config._diffusers_version}` : typeof config.transformers_version === 'string' ? `transformers ${config.transformers_version}` : undefined,
    convertedBy: options.convertedBy,
    config,
    weightsManifest: [{ paths: shardNames, weights: entries }],
  };
  const modelJson = path.join(dir, MODEL_JSON);
  fs.writeFileSync(modelJson, formatModelJson(model));
  return { modelJson, tensors: entries.length, bytes: total, shards: shardNames };
}

/** `model.json` as text: the config indented, one manifest entry a line (readable, and small for big models). */
function formatModelJson(model: TfjsModelJson): string {
  const head = Object.entries(model)
    .filter(([k, v]) => k !== 'config' && k !== 'weightsManifest' && v !== undefined)
    .map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)},`);
  const config = JSON.stringify(model.config, null, 2).split('\n').join('\n  ');
  const groups = model.weightsManifest.map(
    (g) => `    {\n      "paths": ${JSON.stringify(g.paths)},\n      "weights": [\n${g.weights.map((w) => `        ${JSON.stringify(w)}`).join(',\n')}\n      ]\n    }`,
  );
  return `{\n${head.join('\n')}\n  "config": ${config},\n  "weightsManifest": [\n${groups.join(',\n')}\n  ]\n}\n`;
}
