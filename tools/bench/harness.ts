/**
 * What every benchmark shares: timing (warm-up, then the median of a few runs), random weights for blocks that
 * have no checkpoint, a plain-text table, and the JSON record written under docs/bench/.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import type { Module } from '../../lib/models/layers/module.js';
import { BACKEND_NAMES, type BackendName } from '../../lib/backend.js';

/** The repository root (this file runs from dist/tools/bench). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Milliseconds of one run of `fn`, with its result read back (so lazy backends finish) and freed. */
export async function timeOnce(fn: () => tf.Tensor | tf.Tensor[]): Promise<number> {
  const start = performance.now();
  const out = fn();
  const outs = Array.isArray(out) ? out : [out];
  for (const t of outs) await t.data();
  const ms = performance.now() - start;
  tf.dispose(outs);
  return ms;
}

/** A timing: the median and every run, in milliseconds. */
export interface Timing {
  medianMs: number;
  runsMs: number[];
  /** With `profile`: the peak bytes of live tensors during the warm-up run (everything live counted). */
  peakBytes?: number;
}

/**
 * One warm-up run (kernel set-up, JIT), then `reps` timed runs; checks that no tensor is left behind. With
 * `profile`, the warm-up runs under `tf.profile` (its bookkeeping stays out of the timed runs).
 */
export async function time(fn: () => tf.Tensor | tf.Tensor[], reps: number, profile = false): Promise<Timing> {
  const before = tf.memory().numTensors;
  let peakBytes: number | undefined;
  if (profile) {
    const info = await tf.profile(() => fn());
    peakBytes = info.peakBytes;
    tf.dispose(info.result);
  } else {
    await timeOnce(fn);
  }
  const runsMs: number[] = [];
  for (let i = 0; i < reps; i++) runsMs.push(await timeOnce(fn));
  const leaked = tf.memory().numTensors - before;
  if (leaked !== 0) throw new Error(`benchmark body left ${leaked} tensors behind`);
  const sorted = [...runsMs].sort((a, b) => a - b);
  return { medianMs: sorted[Math.floor(sorted.length / 2)]!, runsMs, peakBytes };
}

/** A small, fast, seeded generator (xorshift32) for filling large weights. */
export function uniformFiller(seed: number): (out: Float32Array, scale: number) => void {
  let s = seed >>> 0 || 1;
  return (out, scale) => {
    for (let i = 0; i < out.length; i++) {
      s ^= s << 13;
      s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5;
      s >>>= 0;
      out[i] = (s / 4294967296 - 0.5) * 2 * scale;
    }
  };
}

/**
 * Fills every weight of `block` with seeded random values: matrices and kernels uniform with variance 1/fan_in
 * (so activations keep their scale through the block), norm scales near 1, biases small.
 */
export function randomizeWeights(block: Module, seed = 1): void {
  const fill = uniformFiller(seed);
  for (const [name, w] of block.namedWeights()) {
    const shape = w.variable.shape as number[];
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    const torch = w.torchShape;
    if (torch.length >= 2) {
      const fanIn = torch.slice(1).reduce((a, b) => a * b, 1);
      fill(data, Math.sqrt(3 / fanIn));
    } else if (/norm/.test(name) && name.endsWith('weight')) {
      fill(data, 0.1);
      for (let i = 0; i < size; i++) data[i] = data[i]! + 1;
    } else {
      fill(data, 0.1);
    }
    tf.tidy(() => {
      w.variable.write(tf.tensor(data, shape));
    });
  }
}

/** Prints rows as an aligned plain-text table. */
export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

/** Where and on what a benchmark ran. */
export function machineInfo(): Record<string, string | number> {
  const cpus = os.cpus();
  return {
    node: process.version,
    tfjs: tf.version_core,
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.arch()}`,
  };
}

/** Writes `record` as JSON to `docs/bench/<name>.json` and returns the path. */
export function writeRecord(name: string, record: unknown): string {
  const file = path.join(ROOT, 'docs', 'bench', `${name}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(record, null, 2) + '\n');
  return file;
}

/** `ms` for a table: 1 decimal under 100 ms, else whole. */
export function fmtMs(ms: number): string {
  return ms < 100 ? ms.toFixed(1) : ms.toFixed(0);
}

/** The outcome of a child process: exit status, its output, and a one-line reason when it failed. */
export interface ChildRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** Why it failed (undefined when it exited 0). */
  error?: string;
}

function childRun(command: string, args: string[], env?: NodeJS.ProcessEnv): ChildRun {
  const child = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 26, env: env ?? process.env });
  const stdout = child.stdout ?? '';
  const stderr = child.stderr ?? '';
  if (child.status === 0) return { status: 0, stdout, stderr };
  const why =
    child.error?.message ??
    stderr.trim().split('\n').filter((l) => /Error|Abort|memory/i.test(l)).at(-1) ??
    stderr.trim().split('\n').at(-1) ??
    `exit status ${child.status}`;
  return { status: child.status, stdout, stderr, error: `process failed: ${why.trim()}` };
}

/** Runs `node dist/tools/bench/index.js <args>` in a child process (a fresh wasm heap, its own max RSS). */
export function runNode(args: string[]): ChildRun {
  return childRun(process.execPath, [fileURLToPath(new URL('./index.js', import.meta.url)), ...args]);
}

/**
 * The Python of the reference environment (torch, diffusers), made by `npm run fixtures`;
 * `$PIX2PIX_ZERO_BENCH_PYTHON` names another one.
 */
export const REFERENCE_PYTHON = process.env.PIX2PIX_ZERO_BENCH_PYTHON ?? path.join(ROOT, 'tools', 'reference', '.venv', 'bin', 'python');

/** What to say when the reference environment is missing. */
export const NO_REFERENCE_PYTHON = `the Python reference environment is missing (${path.relative(ROOT, REFERENCE_PYTHON)}): run \`npm run fixtures\` once to create it (it installs tools/reference/requirements.txt), then rerun; our side ran alone`;

/** Whether the reference environment exists. */
export function hasReferencePython(): boolean {
  return fs.existsSync(REFERENCE_PYTHON);
}

/**
 * How torch's OpenMP workers wait (`$OMP_WAIT_POLICY`, else PASSIVE). The default busy-wait makes 2 threads 30 to
 * 100 times slower than 1 thread on this shared 2-core machine (a worker spins while the other is descheduled);
 * PASSIVE sleeps instead. One thread is unaffected.
 */
export const OMP_WAIT_POLICY = process.env.OMP_WAIT_POLICY ?? 'PASSIVE';

/** Runs tools/bench/<script> with the reference environment's Python, offline. */
export function runReferencePython(script: string, args: string[]): ChildRun {
  if (!hasReferencePython()) return { status: null, stdout: '', stderr: '', error: NO_REFERENCE_PYTHON };
  const env = {
    ...process.env,
    HF_HUB_OFFLINE: '1',
    TRANSFORMERS_VERBOSITY: 'error',
    PYTHONDONTWRITEBYTECODE: '1',
    TQDM_DISABLE: '1',
    OMP_WAIT_POLICY,
  };
  return childRun(REFERENCE_PYTHON, [path.join(ROOT, 'tools', 'bench', script), ...args], env);
}

/** The last line of `stdout` that is a JSON object, parsed. */
export function lastJsonLine<T>(stdout: string): T | undefined {
  const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
  return line !== undefined ? (JSON.parse(line) as T) : undefined;
}

/** A command-line integer in [min, max], or an error naming the flag. */
export function intArg(flag: string, v: string | undefined, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${flag} must be an integer from ${min} to ${max}, got ${v}`);
  return n;
}

/** A `--backend` value, or an error listing the backends. */
export function backendArg(v: string | undefined): BackendName {
  if (!(BACKEND_NAMES as readonly string[]).includes(v ?? '')) throw new Error(`--backend must be one of ${BACKEND_NAMES.join(', ')}, got ${v ?? ''}`);
  return v as BackendName;
}
