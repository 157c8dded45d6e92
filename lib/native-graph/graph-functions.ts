/**
 * Graph execution on the `tensorflow` backend: a small model's call runs as one TensorFlow graph instead of op by
 * op. Eagerly, each op costs tfjs' engine and TensorFlow's eager runtime some 30-40 µs whatever its size, which
 * is nearly all of a small UNet's time (the toy-world UNet's gradient is ~2,900 ops on 16 x 16 latents); a graph
 * runs the same kernels from C++, prunes the ops its outputs do not need, and costs one call.
 *
 * How: the first call of a computation runs eagerly while `tracer.ts` records it; the record is written as a
 * `SavedModel` (`graph-def.ts`), loaded into a TensorFlow session, and the call's result is the session's (fed with
 * the inputs and the model's parameters, never copied into the graph). The second call is recorded too: when it
 * records the same graph (the same ops, attributes and constants, so nothing in it depends on the inputs' values
 * through the host), later calls with inputs of the same shapes only run the session. Every result of such a
 * computation comes from its graph, so it does not depend on the process's history (a graph may round the last
 * bit differently from the eager ops). A computation that does not trace (it reads values back, uses other tensors,
 * or changes from call to call) runs eagerly. Calls inside a gradient tape run eagerly too (a graph is opaque to
 * `tf.grad`); a traced function may take its own gradient inside.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { kernelChoices } from '../backend.js';
import { inputName, outputName, paramName, savedModelBytes } from './graph-def.js';
import { type NativeBackend, isNativeBackend } from './native-binding.js';
import { isTracing, traceCall } from './tracer.js';

/** A traced function's outputs, and host-side facts about them that a graph run must give back (map keys). */
export interface GraphCallResult {
  readonly outputs: tf.Tensor[];
  readonly meta: readonly string[];
}

/** How the calls of a {@link GraphFunctions} ran (for tests and benchmarks). */
export interface GraphStats {
  /** Calls run eagerly without recording (another backend, a gradient tape, a computation that does not trace). */
  eager: number;
  /** Calls recorded (run eagerly, their results then taken from the graph). */
  traced: number;
  /** Calls whose results came from a graph (the recorded ones included). */
  graph: number;
  /** Graphs loaded. */
  compiled: number;
  /** Why computations do not run as graphs, by key. */
  readonly failures: Map<string, string>;
}

/** Calls after the first whose graph may differ from the one before before a computation is left eager. */
const MAX_TRACES = 3;

interface Entry {
  /** The last trace's graph, until two agree. */
  lastBytes?: Uint8Array;
  /** The last trace's meta. */
  lastMeta?: string;
  traces: number;
  /** Whether a second call recorded the session's graph again (it then runs without recording). */
  verified?: boolean;
  failed?: string;
  session?: {
    id: number;
    backend: NativeBackend;
    params: readonly number[];
    feedNames: string;
    outputNames: string;
    meta: readonly string[];
  };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** Loads a graph into a session of the native binding (through a temporary `SavedModel` folder, removed at once). */
function loadGraph(backend: NativeBackend, bytes: Uint8Array): number {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pix2pix-zero-graph-'));
  try {
    fs.writeFileSync(path.join(dir, 'saved_model.pb'), bytes);
    return backend.binding.loadSavedModel(dir, 'serve');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The graph-compiled calls of one model. `params` lists the model's parameters (the same tensors, in the same
 * order, at every call; a parameter may be reassigned, not replaced).
 */
export class GraphFunctions {
  private readonly entries = new Map<string, Entry>();
  readonly stats: GraphStats = { eager: 0, traced: 0, graph: 0, compiled: 0, failures: new Map() };

  /** @param maxGraphs sessions kept at once (the least recently used is freed beyond). */
  constructor(
    private readonly params: () => readonly tf.Tensor[],
    private readonly maxGraphs = 16,
  ) {}

  /**
   * `fn()`, as a graph when it can: `fn` must compute its outputs from `inputs` (the same tensor objects) and the
   * parameters only, and `key` must name everything else it depends on (options, hooks). Returns tensors the caller
   * owns.
   */
  call(key: string, inputs: readonly tf.Tensor[], fn: () => GraphCallResult): GraphCallResult {
    const backend = tf.backend();
    if (!isNativeBackend(backend) || isTracing() || tf.engine().isTapeOn()) {
      this.stats.eager++;
      return fn();
    }
    const fullKey = `${key}|${inputs.map((t) => `${t.dtype}[${t.shape.join(',')}]`).join(';')}|${JSON.stringify(kernelChoices())}`;
    const entry = this.entries.get(fullKey) ?? { traces: 0 };
    this.entries.delete(fullKey);
    this.entries.set(fullKey, entry);
    this.evict();
    if (entry.session !== undefined && entry.verified === true && entry.session.backend === backend) return this.run(entry.session, inputs);
    if (entry.failed !== undefined) {
      this.stats.eager++;
      return fn();
    }
    this.stats.traced++;
    let meta: readonly string[] = [];
    const { outputs, result } = traceCall(backend, inputs, this.params(), () => {
      const r = fn();
      meta = r.meta;
      return r.outputs;
    });
    const fail = (reason: string): GraphCallResult => {
      this.dropSession(entry);
      entry.failed = reason;
      entry.lastBytes = undefined;
      this.stats.failures.set(key, reason);
      return { outputs, meta };
    };
    if (!result.ok) return fail(result.reason);
    let bytes: Uint8Array;
    try {
      bytes = savedModelBytes(result.trace, backend.binding, result.dtypeOf);
    } catch (err) {
      return fail(err instanceof Error ? err.message : String(err));
    }
    const metaText = JSON.stringify(meta);
    if (entry.session !== undefined && entry.lastBytes !== undefined && sameBytes(entry.lastBytes, bytes) && entry.lastMeta === metaText) {
      // The second call recorded the graph of the first: it holds for any input of these shapes.
      entry.verified = true;
      entry.lastBytes = undefined;
    } else {
      // A first trace, or one that differs from the last (a constant made on a first call, say): load this call's
      // own graph, and check it against the next call's.
      entry.traces++;
      if (entry.traces > MAX_TRACES) return fail(`its graph changed at each of ${MAX_TRACES} calls after the first`);
      this.dropSession(entry);
      try {
        const id = loadGraph(backend, bytes);
        const params = [...result.trace.params.keys()].sort((a, b) => a - b);
        entry.session = {
          id,
          backend,
          params,
          feedNames: [...inputs.map((_, k) => inputName(k)), ...params.map(paramName)].join(','),
          outputNames: result.trace.outputs.map((_, k) => outputName(k)).join(','),
          meta,
        };
      } catch (err) {
        return fail(`TensorFlow did not load its graph: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
      }
      entry.lastBytes = bytes;
      entry.lastMeta = metaText;
      this.stats.compiled++;
      this.evict();
    }
    // The result is the graph's, as at every later call (a graph's float rounding may differ from the eager ops'
    // in the last bit; a call's result must not depend on whether it came first).
    tf.dispose(outputs);
    return this.run(entry.session, inputs);
  }

  private dropSession(entry: Entry): void {
    if (entry.session !== undefined) entry.session.backend.binding.deleteSavedModel(entry.session.id);
    entry.session = undefined;
    entry.verified = false;
  }

  private run(session: NonNullable<Entry['session']>, inputs: readonly tf.Tensor[]): GraphCallResult {
    const params = this.params();
    const fed = session.params.map((k) => {
      const p = params[k];
      if (p === undefined || p.isDisposed) throw new Error(`graph: the model's parameter ${k} is missing or disposed`);
      return p;
    });
    const { backend } = session;
    const ids = backend.getInputTensorIds([...inputs, ...fed]);
    const meta = backend.binding.runSavedModel(session.id, ids, session.feedNames, session.outputNames);
    this.stats.graph++;
    return { outputs: meta.map((m) => backend.createOutputTensor(m)), meta: session.meta };
  }

  /**
   * Frees the least recently used sessions beyond `maxGraphs`, and forgets the least recently used computations
   * beyond 4 x `maxGraphs` (a service editing many sizes would otherwise keep a trace of each).
   */
  private evict(): void {
    const drop = (key: string, e: Entry): void => {
      this.dropSession(e);
      this.entries.delete(key);
    };
    const loaded = [...this.entries].filter(([, e]) => e.session !== undefined);
    for (const [key, e] of loaded.slice(0, Math.max(0, loaded.length - this.maxGraphs))) drop(key, e);
    const all = [...this.entries];
    for (const [key, e] of all.slice(0, Math.max(0, all.length - 4 * this.maxGraphs))) drop(key, e);
  }

  /** Frees every session (later calls trace again). */
  dispose(): void {
    for (const e of this.entries.values()) this.dropSession(e);
    this.entries.clear();
  }
}
