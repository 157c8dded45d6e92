/**
 * Writing a tfjs weights folder: tensors streamed one by one into shards of bounded size, float weights as float32
 * or float16-quantised, then `model.json`. Never holds a whole shard or model in memory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isFloatDType } from '../dtypes.js';
import type { JsonObject } from '../json.js';
import type { WeightSource } from '../weights.js';
import { float16BitsInRange } from './float16.js';
import { MODEL_JSON, TFJS_WEIGHTS_FORMAT, type TfjsModelJson, type TfjsWeightEntry, storedSize } from './manifest.js';
import { formatModelJson } from './model-json-text.js';
import { ShardWriter } from './shard-writer.js';

/** The default shard size, 64 MiB. */
export const DEFAULT_SHARD_BYTES = 64 * 1024 * 1024;

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
