/**
 * Weight sources: where a model's named tensors come from. One safetensors file, or a sharded checkpoint
 * described by a `*.safetensors.index.json` (`weight_map`: tensor name -> shard file). Further formats (tfjs
 * weight manifests) implement the same interface.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJsonObject, isJsonObject } from './json.js';
import { SafetensorsFile, type TensorData, type TensorInfo } from './safetensors.js';
import { isPlainFileName } from './shard-files.js';

/** A read-only collection of named tensors. */
export interface WeightSource {
  /** Where the weights come from, for messages. */
  readonly description: string;
  /** Every tensor name. */
  names(): string[];
  /** The dtype and shape of tensor `name`; throws naming the source if there is none. */
  info(name: string): Pick<TensorInfo, 'dtype' | 'shape'>;
  /** Tensor `name` as float32 or int32 values. */
  read(name: string): TensorData;
  /** Releases open files. */
  close(): void;
}

/** The weights of one safetensors file. */
export class SafetensorsWeights implements WeightSource {
  private readonly file: SafetensorsFile;
  readonly description: string;

  constructor(file: string) {
    this.file = SafetensorsFile.open(file);
    this.description = file;
  }
  names(): string[] {
    return this.file.names();
  }
  info(name: string): TensorInfo {
    return this.file.info(name);
  }
  read(name: string): TensorData {
    return this.file.read(name);
  }
  close(): void {
    this.file.close();
  }
}

/**
 * A sharded safetensors checkpoint. Every shard named by the index is opened and validated up front, and every
 * tensor the index names must be in the shard it points to.
 */
export class ShardedSafetensorsWeights implements WeightSource {
  private readonly shards = new Map<string, SafetensorsFile>();
  private readonly owner = new Map<string, SafetensorsFile>();
  readonly description: string;

  constructor(indexFile: string) {
    this.description = indexFile;
    const index = readJsonObject(indexFile, 'safetensors index');
    const map = index.weight_map;
    if (!isJsonObject(map)) throw new Error(`safetensors index ${indexFile} has no 'weight_map' object`);
    const dir = path.dirname(indexFile);
    try {
      for (const [name, shard] of Object.entries(map)) {
        if (!isPlainFileName(shard)) {
          throw new Error(`safetensors index ${indexFile}: tensor '${name}' names an invalid shard ${JSON.stringify(shard)}`);
        }
        let file = this.shards.get(shard);
        if (file === undefined) {
          const shardPath = path.join(dir, shard);
          if (!fs.existsSync(shardPath)) {
            throw new Error(`safetensors index ${indexFile}: shard ${shard} (holding '${name}') is missing`);
          }
          file = SafetensorsFile.open(shardPath);
          this.shards.set(shard, file);
        }
        if (!file.tensors.has(name)) {
          throw new Error(`safetensors index ${indexFile}: tensor '${name}' is not in its shard ${shard}`);
        }
        this.owner.set(name, file);
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }
  names(): string[] {
    return [...this.owner.keys()];
  }
  private fileOf(name: string): SafetensorsFile {
    const f = this.owner.get(name);
    if (f === undefined) throw new Error(`${this.description}: no tensor '${name}'`);
    return f;
  }
  info(name: string): TensorInfo {
    return this.fileOf(name).info(name);
  }
  read(name: string): TensorData {
    return this.fileOf(name).read(name);
  }
  close(): void {
    for (const f of this.shards.values()) f.close();
  }
}
