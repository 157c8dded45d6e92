/**
 * Reading a tfjs weights folder (`model.json` + shards): as in tfjs, a group's tensors lie back to back in the
 * concatenation of its shard files, in manifest order, and a tensor may straddle two shards; float16 storage
 * (tfjs's `quantization: {dtype: 'float16'}` on a float32 weight) is dequantised to float32. Every shard's
 * presence and size is checked against the manifest before any tensor is read, then tensors are read one by one
 * at their offsets, so no whole shard or model is ever held in memory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type SafetensorsDType, decodeElements } from '../dtypes.js';
import type { TensorData } from '../safetensors.js';
import { readExactly } from '../shard-files.js';
import type { WeightSource } from '../weights.js';
import { type TfjsModelJson, type TfjsWeightEntry, TfjsWeightsError, readTfjsModelJson, storedDType, storedSize } from './manifest.js';

/** Where a tensor's bytes are: its group and byte range in the concatenation of the group's shards. */
interface Located {
  readonly entry: TfjsWeightEntry;
  readonly group: number;
  readonly begin: number;
  readonly end: number;
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
