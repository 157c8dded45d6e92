/**
 * A recorded computation ({@link GraphTrace}) as TensorFlow's `GraphDef`, wrapped in the `SavedModel` that
 * TensorFlow's C API loads into a session (`saved_model.pb`: tensorflow/core/protobuf/saved_model.proto,
 * meta_graph.proto, framework/graph.proto, node_def.proto, attr_value.proto, tensor.proto, tensor_shape.proto).
 * Only the fields the loader reads are written: one meta graph tagged `serve`, its graph, no variables.
 *
 * Names: the k-th input is the placeholder `input_k`, the k-th parameter `param_k`, the k-th constant `const_k`, the
 * j-th op `op_j`, and the k-th output the identity `output_k`, so two traces of the same computation give the
 * same bytes.
 */
import { ProtoWriter } from './protobuf.js';

/** An op attribute as tfjs-node's binding takes it (`TFEOpAttr`): `type` is one of TensorFlow's `TF_AttrType`. */
export interface NativeAttr {
  readonly name: string;
  readonly type: number;
  readonly value: boolean | number | string | readonly number[] | readonly boolean[] | object;
}

/** TensorFlow's `TF_AttrType` numbers, as tfjs-node's binding exports them. */
export interface AttrTypes {
  readonly TF_ATTR_STRING: number;
  readonly TF_ATTR_INT: number;
  readonly TF_ATTR_FLOAT: number;
  readonly TF_ATTR_BOOL: number;
  readonly TF_ATTR_TYPE: number;
  readonly TF_ATTR_SHAPE: number;
}

/** Where an op's input comes from. */
export type TensorRef =
  | { readonly kind: 'input'; readonly index: number }
  | { readonly kind: 'param'; readonly index: number }
  | { readonly kind: 'const'; readonly index: number }
  | { readonly kind: 'op'; readonly index: number; readonly output: number };

/** A tensor's TensorFlow dtype (`TF_DataType`, the same numbers as the `DataType` enum) and shape. */
export interface TensorSpec {
  readonly dtype: number;
  readonly shape: readonly number[];
}

/** A constant made from host data during the trace (a reshape's shape, a scalar factor). */
export interface TracedConst extends TensorSpec {
  /** Its elements in TensorFlow's layout (little-endian, row-major). */
  readonly bytes: Uint8Array;
}

/** One op run during the trace. */
export interface TracedOp {
  readonly op: string;
  readonly attrs: readonly NativeAttr[];
  readonly inputs: readonly TensorRef[];
}

/** A computation recorded op by op, in terms of its inputs, the model's parameters and constants. */
export interface GraphTrace {
  /** The traced function's tensor inputs, fed at every run. */
  readonly inputs: readonly TensorSpec[];
  /** The parameters (weights) used, by their index in the model's parameter list; fed at every run. */
  readonly params: ReadonlyMap<number, TensorSpec>;
  readonly consts: readonly TracedConst[];
  readonly ops: readonly TracedOp[];
  readonly outputs: readonly TensorRef[];
}

/** The graph name of a tensor reference (`op_12:1`). */
export function refName(ref: TensorRef): string {
  switch (ref.kind) {
    case 'input':
      return `input_${ref.index}`;
    case 'param':
      return `param_${ref.index}`;
    case 'const':
      return `const_${ref.index}`;
    case 'op':
      return ref.output === 0 ? `op_${ref.index}` : `op_${ref.index}:${ref.output}`;
  }
}

/** The fetch name of output k. */
export const outputName = (k: number): string => `output_${k}:0`;
/** The feed name of input k / parameter k. */
export const inputName = (k: number): string => `input_${k}:0`;
export const paramName = (k: number): string => `param_${k}:0`;

const DT_TYPE_FIELD = 6;

function shapeProto(dims: readonly number[]): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of dims) w.message(2, new ProtoWriter().int(1, d));
  return w;
}

function isNumberList(v: unknown): v is readonly number[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'number');
}

/**
 * An `AttrValue` of a binding attribute (a `ListValue` for an array). A scalar kind's field number is the same in
 * both messages: i 3, f 4, b 5, type 6.
 */
function attrValue(a: NativeAttr, t: AttrTypes): ProtoWriter {
  const v = a.value;
  const scalars: readonly (readonly [number, number, 'int' | 'float' | 'bool'])[] = [
    [t.TF_ATTR_INT, 3, 'int'],
    [t.TF_ATTR_FLOAT, 4, 'float'],
    [t.TF_ATTR_BOOL, 5, 'bool'],
    [t.TF_ATTR_TYPE, DT_TYPE_FIELD, 'int'],
  ];
  const scalar = scalars.find(([type]) => type === a.type);
  if (scalar !== undefined) {
    const [, field, kind] = scalar;
    const put = (w: ProtoWriter, x: unknown): ProtoWriter => (kind === 'float' ? w.float(field, Number(x)) : kind === 'bool' ? w.bool(field, Boolean(x)) : w.int(field, Number(x)));
    if (Array.isArray(v)) {
      const list = new ProtoWriter();
      for (const x of v as unknown[]) put(list, x);
      return new ProtoWriter().message(1, list);
    }
    if (typeof v === (kind === 'bool' ? 'boolean' : 'number')) return put(new ProtoWriter(), v);
  } else if (a.type === t.TF_ATTR_STRING && typeof v === 'string') {
    return new ProtoWriter().string(2, v);
  } else if (a.type === t.TF_ATTR_SHAPE && isNumberList(v)) {
    return new ProtoWriter().message(7, shapeProto(v));
  }
  throw new Error(`graph: cannot write attribute '${a.name}' (type ${a.type}, value ${JSON.stringify(v)})`);
}

function nodeDef(name: string, op: string, inputs: readonly string[], attrs: readonly (readonly [string, ProtoWriter])[]): ProtoWriter {
  const w = new ProtoWriter().string(1, name).string(2, op);
  for (const i of inputs) w.string(3, i);
  for (const [key, value] of attrs) w.message(5, new ProtoWriter().string(1, key).message(2, value));
  return w;
}

const typeAttr = (dtype: number): ProtoWriter => new ProtoWriter().int(DT_TYPE_FIELD, dtype);

/**
 * Type attributes that tfjs-node's kernels leave to TensorFlow's eager runtime, which infers them from the inputs
 * (a graph node must name them): op -> [attribute, the input whose dtype it is].
 */
const INFERRED_TYPE_ATTRS: Readonly<Record<string, readonly (readonly [string, number])[]>> = {
  ExpandDims: [
    ['T', 0],
    ['Tdim', 1],
  ],
};

/** The GraphDef producer version written (TensorFlow 2.x graphs; the loader accepts any recent one). */
const GRAPH_PRODUCER = 1286;

/**
 * The `saved_model.pb` bytes of a trace. `dtypeOf` gives the dtype of a reference (for inferred attributes).
 *
 * @throws Error when an attribute cannot be written.
 */
export function savedModelBytes(trace: GraphTrace, types: AttrTypes, dtypeOf: (ref: TensorRef) => number): Uint8Array {
  const graph = new ProtoWriter();
  const placeholder = (name: string, spec: TensorSpec): void => {
    graph.message(1, nodeDef(name, 'Placeholder', [], [['dtype', typeAttr(spec.dtype)], ['shape', new ProtoWriter().message(7, shapeProto(spec.shape))]]));
  };
  trace.inputs.forEach((spec, k) => placeholder(`input_${k}`, spec));
  for (const [k, spec] of [...trace.params].sort((a, b) => a[0] - b[0])) placeholder(`param_${k}`, spec);
  trace.consts.forEach((c, k) => {
    const tensor = new ProtoWriter().int(1, c.dtype).message(2, shapeProto(c.shape)).raw(4, c.bytes);
    graph.message(1, nodeDef(`const_${k}`, 'Const', [], [['dtype', typeAttr(c.dtype)], ['value', new ProtoWriter().message(8, tensor)]]));
  });
  trace.ops.forEach((o, j) => {
    const attrs: [string, ProtoWriter][] = o.attrs.map((a) => [a.name, attrValue(a, types)]);
    for (const [name, input] of INFERRED_TYPE_ATTRS[o.op] ?? []) {
      const ref = o.inputs[input];
      if (ref !== undefined && !o.attrs.some((a) => a.name === name)) attrs.push([name, typeAttr(dtypeOf(ref))]);
    }
    graph.message(1, nodeDef(`op_${j}`, o.op, o.inputs.map(refName), attrs));
  });
  trace.outputs.forEach((ref, k) => {
    graph.message(1, nodeDef(`output_${k}`, 'Identity', [refName(ref)], [['T', typeAttr(dtypeOf(ref))]]));
  });
  graph.message(4, new ProtoWriter().int(1, GRAPH_PRODUCER));
  const metaGraph = new ProtoWriter().message(1, new ProtoWriter().string(4, 'serve')).message(2, graph);
  return new ProtoWriter().int(1, 1).message(2, metaGraph).bytes().slice();
}
