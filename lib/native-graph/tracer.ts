/**
 * Records what a tensor function does on the `tensorflow` backend, op by op, while it runs eagerly: for the
 * duration of the call the backend's native binding is replaced by one that forwards every call and notes each op
 * (`executeOp`: name, attributes, inputs), each host array copied in (`createTensor`) and each read of values back
 * to the host (`tensorDataSync`). Gradients are recorded too: `tf.grad` runs its backward ops through the same
 * binding.
 *
 * Every input of a recorded op must be the function's own input, a model parameter, a host array copied in during
 * the call (a constant: a reshape's shape, a scalar factor) or another recorded op's output. A function that uses any
 * other tensor made before the call, or reads values back to the host (its ops could then depend on them), is not
 * a graph: the trace says why.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GraphTrace, TensorRef, TensorSpec, TracedConst, TracedOp } from './graph-def.js';
import type { NativeBackend, NativeBinding, TensorMetadata } from './native-binding.js';

/** A recorded call: its graph, or why it has none. */
export type TraceResult = { readonly ok: true; readonly trace: GraphTrace; readonly dtypeOf: (ref: TensorRef) => number } | { readonly ok: false; readonly reason: string };

let tracing = false;

/** Whether a trace is being recorded now (a traced function's nested graph calls then run eagerly, and are recorded). */
export function isTracing(): boolean {
  return tracing;
}

/** TensorFlow's dtype number of a tfjs dtype (-1: none a graph here takes). */
function nativeDtype(binding: NativeBinding, dtype: tf.DataType): number {
  return dtype === 'float32' ? binding.TF_FLOAT : dtype === 'int32' ? binding.TF_INT32 : dtype === 'bool' ? binding.TF_BOOL : -1;
}

function hostBytes(values: ArrayLike<number> | ArrayBufferView): Uint8Array | undefined {
  if (!ArrayBuffer.isView(values)) return undefined;
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice();
}

/**
 * Runs `fn(inputs)` eagerly, recording it. `params` are the model's parameters (what the graph may use besides its
 * inputs, fed by position at every run). Returns `fn`'s outputs (the caller owns them) and the trace.
 */
export function traceCall(backend: NativeBackend, inputs: readonly tf.Tensor[], params: readonly tf.Tensor[], fn: () => tf.Tensor[]): { outputs: tf.Tensor[]; result: TraceResult } {
  if (tracing) throw new Error('traceCall: a trace is already being recorded');
  const real = backend.binding;
  const refs = new Map<number, TensorRef>();
  const specOf = (t: tf.Tensor): TensorSpec => ({ dtype: nativeDtype(real, t.dtype), shape: t.shape });
  const inputSpecs = inputs.map(specOf);
  backend.getInputTensorIds([...inputs]).forEach((id, k) => {
    if (!refs.has(id)) refs.set(id, { kind: 'input', index: k });
  });
  const paramIds = params.length > 0 ? backend.getInputTensorIds([...params]) : [];
  const paramIndex = new Map<number, number>();
  paramIds.forEach((id, k) => {
    if (!paramIndex.has(id)) paramIndex.set(id, k);
  });
  const usedParams = new Map<number, TensorSpec>();
  const born = new Map<number, TracedConst>();
  const consts: TracedConst[] = [];
  const ops: TracedOp[] = [];
  const opDtypes: number[][] = [];
  let failure: string | undefined;
  const fail = (reason: string): void => {
    failure ??= reason;
  };
  const dtypeOfRef = (ref: TensorRef): number => {
    switch (ref.kind) {
      case 'input':
        return inputSpecs[ref.index]!.dtype;
      case 'param':
        return usedParams.get(ref.index)!.dtype;
      case 'const':
        return consts[ref.index]!.dtype;
      case 'op':
        return opDtypes[ref.index]![ref.output]!;
    }
  };
  const refOf = (id: number): TensorRef | undefined => {
    const known = refs.get(id);
    if (known !== undefined) return known;
    const p = paramIndex.get(id);
    if (p !== undefined) {
      usedParams.set(p, specOf(params[p]!));
      const ref: TensorRef = { kind: 'param', index: p };
      refs.set(id, ref);
      return ref;
    }
    const c = born.get(id);
    if (c !== undefined) {
      const ref: TensorRef = { kind: 'const', index: consts.length };
      consts.push(c);
      refs.set(id, ref);
      return ref;
    }
    return undefined;
  };
  const recording: NativeBinding = Object.create(null) as NativeBinding;
  for (const key of Object.getOwnPropertyNames(real) as (keyof NativeBinding)[]) {
    const v = real[key];
    Object.defineProperty(recording, key, { value: typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(real) : v, enumerable: true, configurable: true });
  }
  Object.defineProperty(recording, 'executeOp', {
    value: (name: string, attrs: TracedOp['attrs'], inputIds: readonly number[], numOutputs: number): TensorMetadata[] => {
      const out = real.executeOp(name, attrs, inputIds, numOutputs);
      const inputRefs: TensorRef[] = [];
      for (const id of inputIds) {
        const ref = refOf(id);
        if (ref === undefined) {
          fail(`op ${name} reads a tensor made before the call that is neither an input nor a parameter`);
          break;
        }
        inputRefs.push(ref);
      }
      const index = ops.length;
      ops.push({ op: name, attrs: attrs.map((a) => ({ ...a, value: Array.isArray(a.value) ? [...(a.value as unknown[])] : a.value }) as TracedOp['attrs'][number]), inputs: inputRefs });
      opDtypes.push(out.map((m) => m.dtype));
      out.forEach((m, output) => {
        refs.set(m.id, { kind: 'op', index, output });
      });
      return out;
    },
  });
  Object.defineProperty(recording, 'createTensor', {
    value: (shape: readonly number[], dtype: number, values: ArrayLike<number> | ArrayBufferView): number => {
      const id = real.createTensor(shape, dtype, values);
      const bytes = hostBytes(values);
      if (bytes === undefined || dtype === real.TF_STRING) fail(`a host array of dtype ${dtype} cannot be a graph constant`);
      else born.set(id, { dtype, shape: [...shape], bytes });
      return id;
    },
  });
  Object.defineProperty(recording, 'tensorDataSync', {
    value: (id: number) => {
      fail('the function reads tensor values back to the host');
      return real.tensorDataSync(id);
    },
  });

  tracing = true;
  backend.binding = recording;
  let outputs: tf.Tensor[] = [];
  let outputRefs: TensorRef[] = [];
  try {
    outputs = fn();
    const ids = backend.getInputTensorIds(outputs);
    outputRefs = ids.map((id) => {
      const ref = refOf(id);
      if (ref === undefined) fail('an output is a tensor made before the call');
      return ref ?? { kind: 'input', index: 0 };
    });
  } catch (err) {
    tf.dispose(outputs);
    throw err;
  } finally {
    backend.binding = real;
    tracing = false;
  }
  if (inputSpecs.some((s) => s.dtype < 0) || [...usedParams.values()].some((s) => s.dtype < 0)) fail('an input or parameter is not float32, int32 or bool');
  if (failure !== undefined) return { outputs, result: { ok: false, reason: failure } };
  return { outputs, result: { ok: true, trace: { inputs: inputSpecs, params: usedParams, consts, ops, outputs: outputRefs }, dtypeOf: dtypeOfRef } };
}
