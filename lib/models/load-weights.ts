/**
 * Loading a checkpoint into a block tree. The block tree says which tensors it expects (PyTorch state-dict
 * names and shapes); a model's weight-name map says where each one is in the file. Anything missing, left over or
 * mis-shaped fails the load with one error that lists every problem, before any weight is changed.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WeightSource } from '../io/weights.js';
import { type ShapeBinding, checkConfigShapes } from './config-shapes.js';
import { type Module, fromTorchLayout } from './layers/module.js';

/** How a model's expected names relate to the names in its checkpoint files. */
export interface WeightNameMap {
  /** The checkpoint name of the model's tensor `name` (default: the same name). */
  toCheckpoint?(name: string): string;
  /** Checkpoint tensors the model does not use (buffers such as `position_ids`), which are not an error. */
  ignore?(checkpointName: string): boolean;
}

/** Options of {@link loadWeights}. */
export interface LoadWeightsOptions {
  /** Stop after this many listed problems (default 20). */
  maxProblems?: number;
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Checks `source` against `model`'s expected tensors and copies them in (converting layouts, F16/BF16 to F32).
 * @throws Error listing every missing, unexpected or mis-shaped tensor, naming the source; no weight is changed.
 */
export function loadWeights(model: Module, source: WeightSource, map: WeightNameMap = {}, options: LoadWeightsOptions = {}): void {
  const expected = model.namedWeights();
  const toFile = map.toCheckpoint ?? ((n: string) => n);
  const available = new Set(source.names());
  const problems: string[] = [];
  const used = new Set<string>();

  for (const [name, w] of expected) {
    const fileName = toFile(name);
    if (!available.has(fileName)) {
      problems.push(`missing tensor '${fileName}'${fileName !== name ? ` (for ${name})` : ''}`);
      continue;
    }
    used.add(fileName);
    const info = source.info(fileName);
    if (!sameShape(info.shape, w.torchShape)) {
      problems.push(`tensor '${fileName}' has shape [${info.shape.join(', ')}], expected [${w.torchShape.join(', ')}]`);
    }
  }
  for (const name of available) {
    if (!used.has(name) && !(map.ignore?.(name) ?? false)) problems.push(`unexpected tensor '${name}'`);
  }
  if (problems.length > 0) {
    const max = options.maxProblems ?? 20;
    const more = problems.length > max ? `\n  ... and ${problems.length - max} more` : '';
    throw new Error(
      `weights in ${source.description} do not match the ${model.constructor.name} built from its config ` +
        `(${problems.length} problem${problems.length > 1 ? 's' : ''}):\n  ${problems.slice(0, max).join('\n  ')}${more}`,
    );
  }
  for (const [name, w] of expected) {
    const data = source.read(toFile(name));
    tf.tidy(() => {
      const t = tf.tensor(data.data, data.shape, 'float32');
      w.variable.write(fromTorchLayout(t, w.layout));
    });
  }
}

/**
 * Builds a model with `build` and fills it from a component folder's weights with `load` (a model's own loader,
 * which applies its weight-name map), closing the files either way and freeing the model if the weights do not
 * fit. With `check`, the config is first compared with the weights' header shapes, before anything is allocated.
 */
export function loadFromComponent<M extends Module>(
  build: () => M,
  component: { openWeights(): WeightSource },
  load: (model: M, source: WeightSource) => void,
  check?: { configFile: string; bindings: readonly ShapeBinding[]; map?: (checkpointNames: string[]) => WeightNameMap },
): M {
  const source = component.openWeights();
  try {
    if (check !== undefined) checkConfigShapes(check.configFile, source, check.bindings, check.map?.(source.names()));
    const model = build();
    try {
      load(model, source);
      return model;
    } catch (err) {
      model.disposeAll();
      throw err;
    }
  } finally {
    source.close();
  }
}
