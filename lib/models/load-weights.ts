/**
 * Loading a checkpoint into a block tree. The block tree says which tensors it expects (PyTorch state-dict
 * names and shapes); a model's weight-name map says where each one is in the file. Anything missing, left over or
 * mis-shaped fails the load with one error that lists every problem, before any weight is changed.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { JsonObject } from '../io/json.js';
import { type ComponentFolder, readComponentFolder } from '../io/model-folder.js';
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
 * (The step of {@link loadComponentModel}, which every model's `fromFolder` goes through.)
 */
function buildAndLoad<M extends Module>(
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

/** How one model is built from its component folder, for {@link loadComponentModel}. */
export interface ComponentModelSpec<C, M extends Module> {
  /** Names the component in errors ("UNet", "VAE", "text encoder"). */
  readonly what: string;
  /** Parses and checks the config; `configFile` names it in errors. */
  parse(json: JsonObject, configFile: string): C;
  /** Builds the model (its weights uninitialised). */
  build(config: C): M;
  /** Copies the weights in: the model's own loader, which applies its weight-name map. */
  load(model: M, source: WeightSource, config: C): void;
  /** What the config says about the weights' shapes, checked before the model is built. */
  bindings(config: C): readonly ShapeBinding[];
  /** The weight-name map the shape check reads the checkpoint through (default: the model's names). */
  map?(config: C, checkpointNames: string[]): WeightNameMap;
}

/**
 * Builds a model from a component folder (a path, read here, or an already read {@link ComponentFolder}): parses
 * its `config.json`, checks the config against the weights' headers, builds the model and loads the weights.
 * The caller frees it with `disposeAll()`.
 * @throws Error naming the file and field of a bad config, or listing every missing/unexpected/mis-shaped tensor.
 */
export function loadComponentModel<C, M extends Module>(folder: string | ComponentFolder, spec: ComponentModelSpec<C, M>): M {
  const component = typeof folder === 'string' ? readComponentFolder(folder, spec.what) : folder;
  const configFile = path.join(component.dir, 'config.json');
  const config = spec.parse(component.config, configFile);
  const map = spec.map === undefined ? undefined : (names: string[]) => spec.map!(config, names);
  return buildAndLoad(() => spec.build(config), component, (model, source) => spec.load(model, source, config), { configFile, bindings: spec.bindings(config), map });
}
