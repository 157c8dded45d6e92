/**
 * The parts of tfjs-node's `NodeJSKernelBackend` and of its native binding (`tfjs_binding.d.ts`) that graph
 * execution uses, typed. Every eager op of the `tensorflow` backend goes through `binding.executeOp` (TensorFlow's
 * `TFE_Execute`), every host array through `binding.createTensor`; a `SavedModel` session runs through
 * `binding.runSavedModel` (`TF_SessionRun`).
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { AttrTypes, NativeAttr } from './graph-def.js';

/** What the binding says of a tensor it made. */
export interface TensorMetadata {
  readonly id: number;
  readonly shape: readonly number[];
  readonly dtype: number;
}

/** The native binding's functions and constants used here. */
export interface NativeBinding extends AttrTypes {
  executeOp(name: string, attrs: readonly NativeAttr[], inputIds: readonly number[], numOutputs: number): TensorMetadata[];
  createTensor(shape: readonly number[], dtype: number, values: ArrayLike<number> | ArrayBufferView): number;
  tensorDataSync(id: number): Float32Array | Int32Array | Uint8Array;
  loadSavedModel(dir: string, tags: string): number;
  deleteSavedModel(id: number): void;
  runSavedModel(id: number, inputIds: readonly number[], inputNames: string, outputNames: string): TensorMetadata[];
  readonly TF_FLOAT: number;
  readonly TF_INT32: number;
  readonly TF_BOOL: number;
  readonly TF_STRING: number;
}

/** tfjs-node's backend object (what graph execution and `native-kernels.ts` call). */
export interface NativeBackend {
  binding: NativeBinding;
  /** Runs one TensorFlow op eagerly on tfjs tensors. */
  executeSingleOutput(name: string, attrs: readonly NativeAttr[], inputs: tf.Tensor[]): tf.Tensor;
  /** Makes the tensors' native handles (a host array is copied in on first use) and returns their ids. */
  getInputTensorIds(tensors: tf.Tensor[]): number[];
  /** A tfjs tensor over a native handle the binding returned. */
  createOutputTensor(metadata: TensorMetadata): tf.Tensor;
}

/** Whether `b` is tfjs-node's backend (with the functions graph execution and the native kernels call). */
export function isNativeBackend(b: unknown): b is NativeBackend {
  const c = b as Partial<NativeBackend> | undefined;
  const binding = c?.binding as Partial<NativeBinding> | undefined;
  return (
    typeof c?.getInputTensorIds === 'function' &&
    typeof c.executeSingleOutput === 'function' &&
    typeof c.createOutputTensor === 'function' &&
    typeof binding?.executeOp === 'function' &&
    typeof binding.runSavedModel === 'function' &&
    typeof binding.loadSavedModel === 'function' &&
    typeof binding.TF_ATTR_SHAPE === 'number'
  );
}
