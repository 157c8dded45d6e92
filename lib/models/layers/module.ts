/**
 * `Module`: the base of every model block. A `tf.layers.Layer` whose weights and child blocks carry their
 * PyTorch names, so that a model's state-dict names (`down_blocks.0.resnets.1.conv1.weight`) come from its
 * structure, as in PyTorch, and the loader can check a checkpoint against them: every expected tensor present,
 * of the right shape, and no tensor left over.
 *
 * Blocks are called eagerly on concrete tensors (`forward`), which is what `tf.grad` differentiates.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initializers, layers, type LayerVariable } from '@tensorflow/tfjs-layers';

/**
 * How a PyTorch tensor becomes ours: `linear` transposes `[out, in]` to `[in, out]`; `conv2d` permutes
 * `[out, in, kh, kw]` to `[kh, kw, in, out]` (NHWC); `none` keeps it.
 */
export type WeightLayout = 'none' | 'linear' | 'conv2d';

/** A weight of a block: the variable, and the layout its PyTorch tensor is stored in. */
export interface NamedWeight {
  readonly variable: LayerVariable;
  readonly layout: WeightLayout;
  /** The PyTorch shape the checkpoint must have. */
  readonly torchShape: readonly number[];
}

/** Extra arguments of a block's forward pass (a hook, a mask, a context tensor). */
export type ForwardArgs = Record<string, unknown>;

/** The PyTorch shape of a tensor stored in `layout` whose shape in tfjs is `shape`. */
export function torchShapeOf(shape: readonly number[], layout: WeightLayout): number[] {
  switch (layout) {
    case 'none':
      return [...shape];
    case 'linear':
      return [shape[1]!, shape[0]!];
    case 'conv2d':
      return [shape[3]!, shape[2]!, shape[0]!, shape[1]!];
  }
}

/** Converts a tensor from its PyTorch layout to ours. */
export function fromTorchLayout(t: tf.Tensor, layout: WeightLayout): tf.Tensor {
  switch (layout) {
    case 'none':
      return t;
    case 'linear':
      return tf.transpose(t, [1, 0]);
    case 'conv2d':
      return tf.transpose(t, [2, 3, 1, 0]);
  }
}

/**
 * The base of every block. Subclasses declare weights with {@link Module.weight} and sub-blocks with
 * {@link Module.child} in their constructor (PyTorch's order and names), and implement `forward`.
 */
export abstract class Module extends layers.Layer {
  private readonly ownWeights = new Map<string, NamedWeight>();
  private readonly children = new Map<string, Module>();
  private weightsDisposed = false;

  constructor() {
    super({ trainable: false });
    // Weights are declared in the constructor, so there is nothing left for build() to do.
    this.built = true;
  }

  /** tf.layers names layers after their class. */
  override getClassName(): string {
    return this.constructor.name;
  }

  /** The block's computation on concrete tensors. */
  abstract forward(inputs: tf.Tensor | tf.Tensor[], args?: ForwardArgs): tf.Tensor;

  /** tf.layers entry point: `apply()` lands here. */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: ForwardArgs): tf.Tensor {
    return this.forward(inputs, kwargs);
  }

  /** Declares a weight under its PyTorch name, in our layout (`shape`), initialised to zeros. */
  protected weight(name: string, shape: number[], layout: WeightLayout = 'none'): LayerVariable {
    if (this.ownWeights.has(name)) throw new Error(`${this.constructor.name}: weight '${name}' declared twice`);
    const variable = this.addWeight(name, shape, 'float32', initializers.zeros(), undefined, false);
    this.ownWeights.set(name, { variable, layout, torchShape: torchShapeOf(shape, layout) });
    return variable;
  }

  /** Registers a sub-block under its PyTorch attribute name (`conv1`, `resnets.0`, `to_out.0`). */
  protected child<M extends Module>(name: string, module: M): M {
    if (this.children.has(name)) throw new Error(`${this.constructor.name}: child '${name}' declared twice`);
    this.children.set(name, module);
    return module;
  }

  /** Registers a list of sub-blocks as `name.0`, `name.1`, ... (PyTorch's ModuleList). */
  protected childList<M extends Module>(name: string, modules: M[]): M[] {
    modules.forEach((m, i) => this.child(`${name}.${i}`, m));
    return modules;
  }

  /**
   * This block and every block under it, depth first in registration order, by module path (PyTorch's
   * `named_modules()`): `prefix` (default '') for this block, then `down_blocks.0`, `down_blocks.0.resnets.0`, ...
   * The paths are the state-dict names' prefixes, and what hooks name the layers by.
   */
  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [name, m] of this.children) yield* m.namedModules(prefix === '' ? name : `${prefix}.${name}`);
  }

  /** Every weight of this block and its sub-blocks, by PyTorch state-dict name. */
  namedWeights(prefix = ''): Map<string, NamedWeight> {
    const out = new Map<string, NamedWeight>();
    for (const [path, m] of this.namedModules()) {
      for (const [name, w] of m.ownWeights) out.set(`${prefix}${path === '' ? '' : `${path}.`}${name}`, w);
    }
    return out;
  }

  /** The weights' tensors, in {@link namedWeights} order (what a graph of this block is fed: `native-graph/`). */
  parameterTensors(): tf.Tensor[] {
    return [...this.namedWeights().values()].map((w) => w.variable.read());
  }

  /** The number of scalar parameters. */
  parameterCount(): number {
    let n = 0;
    for (const w of this.namedWeights().values()) n += w.torchShape.reduce((a, b) => a * b, 1);
    return n;
  }

  /** Frees every weight of this block and its sub-blocks (once; later calls do nothing). */
  disposeAll(): number {
    if (this.weightsDisposed) return 0;
    this.weightsDisposed = true;
    const all = [...this.namedWeights().values()];
    for (const w of all) w.variable.dispose();
    this.markDisposed();
    return all.length;
  }

  private markDisposed(): void {
    this.weightsDisposed = true;
    for (const m of this.children.values()) m.markDisposed();
  }

  /**
   * Frees the block's weights. (tf.layers' own `dispose` counts `apply()` calls and refuses blocks that were only
   * called through `forward`; a block tree here owns its weights outright.)
   */
  override dispose(): { refCountAfterDispose: number; numDisposedVariables: number } {
    return { refCountAfterDispose: 0, numDisposedVariables: this.disposeAll() };
  }
}

/** Runs a block through `tf.layers`' `apply` on concrete tensors and returns its single output. */
export function run(block: Module, inputs: tf.Tensor | tf.Tensor[], args?: ForwardArgs): tf.Tensor {
  const out = block.apply(inputs, args);
  if (!(out instanceof tf.Tensor)) throw new Error(`${block.constructor.name} returned no single tensor`);
  return out;
}
