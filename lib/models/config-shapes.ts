/**
 * Configs checked against their weights before a model is built. A model allocates what its config says (a
 * 2048-channel block, a vocabulary of 10^12), so each model lists which config key fixes which dimension of which
 * checkpoint tensor (and which counts fix which tensors exist), and {@link checkConfigShapes} compares them with
 * the weights' headers, which cost nothing to read, before any allocation. `MAX_CONFIG_SIZE` (in
 * `io/config-fields.ts`) bounds every size a config may give at all.
 */
import type { WeightSource } from '../io/weights.js';
import type { WeightNameMap } from './load-weights.js';

/**
 * What a config key says about the checkpoint: tensor `tensor` (the model's name) has `value` as its dimension
 * `dim`; without `dim`, that it exists. With `absent`, that this other tensor does not exist (a count: layer
 * `n - 1` is there, layer `n` is not).
 */
export interface ShapeBinding {
  readonly key: string;
  readonly value: number;
  readonly tensor: string;
  readonly dim?: number;
  readonly absent?: string;
}

/**
 * Compares a config with its weights' header shapes, before the model is built.
 * @throws Error naming the config file, the key, its value and the tensor that disagrees.
 */
export function checkConfigShapes(configFile: string, weights: WeightSource, bindings: readonly ShapeBinding[], map: WeightNameMap = {}): void {
  const toFile = map.toCheckpoint ?? ((n: string) => n);
  const names = new Set(weights.names());
  for (const b of bindings) {
    const name = toFile(b.tensor);
    if (!names.has(name)) {
      if (b.dim === undefined) throw new Error(`${configFile}: ${b.key} is ${b.value}, but ${weights.description} has no tensor '${name}'`);
      continue; // a missing tensor is listed by the weight loader
    }
    if (b.absent !== undefined && names.has(toFile(b.absent))) {
      throw new Error(`${configFile}: ${b.key} is ${b.value}, but ${weights.description} also has '${toFile(b.absent)}' (more than ${b.value})`);
    }
    if (b.dim === undefined) continue;
    const shape = weights.info(name).shape;
    if (shape[b.dim] !== b.value) {
      throw new Error(`${configFile}: ${b.key} is ${b.value}, but '${name}' in ${weights.description} has ${shape[b.dim]} there (shape [${shape.join(', ')}])`);
    }
  }
}

/** The bindings of a count: `prefix.{value - 1}.suffix` exists and `prefix.{value}.suffix` does not. */
export function countBinding(key: string, value: number, prefix: string, suffix: string): ShapeBinding {
  return { key, value, tensor: `${prefix}.${value - 1}.${suffix}`, absent: `${prefix}.${value}.${suffix}` };
}
