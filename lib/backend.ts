/**
 * The tfjs backends this library runs on, in one table: how each is loaded and detected, what it can hold, how many
 * threads it uses and which kernel variants are fast on it. The CLI's help, the tests' backend list and the layers'
 * fast-path choices all read {@link BACKENDS}; adding a backend (WebGPU, a GPU build) is one entry here.
 *
 * The library runs on whichever backend is present, best first: `tensorflow` (`@tensorflow/tfjs-node-gpu`, else
 * `@tensorflow/tfjs-node`, installed the ordinary way or built offline by `npm run setup:tensorflow` into
 * {@link nativeDir}), then `wasm` (`@tensorflow/tfjs-backend-wasm`, its `.wasm` files read from the installed
 * package, never the network), then `cpu` (pure JavaScript). The choice can be forced by option or by the
 * environment variable `PIX2PIX_ZERO_BACKEND` (`auto`, `tensorflow`, `wasm` or `cpu`); the option wins.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { getThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { registerNativeKernels } from './native-kernels.js';
import { PACKAGE_ROOT } from './paths.js';

/** A backend this library can run on. `tensorflow` is the native backend of tfjs-node(-gpu). */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

/** What the user may ask for: a backend, or `auto` for the best one present. */
export type BackendChoice = BackendName | 'auto';

/** The environment variable that forces a backend when no option does. */
export const BACKEND_ENV = 'PIX2PIX_ZERO_BACKEND';

/** The environment variable that moves the folder `npm run setup:tensorflow` builds into (default `.native/`). */
export const NATIVE_DIR_ENV = 'PIX2PIX_ZERO_NATIVE_DIR';

/**
 * Kernel variants chosen per backend by measurement (tools/bench, docs/benchmarks.md). The layers read these
 * instead of testing the backend's name.
 */
export interface KernelChoices {
  /**
   * Split batched matrix products into single ones and compute their gradients with explicit transposes
   * (`models/layers/matmul.ts`): wasm runs only single, untransposed products fast (XNNPACK) and falls back to a
   * 10-20x slower kernel otherwise.
   */
  readonly plainProducts: boolean;
  /**
   * Compute a convolution's input gradient as a forward convolution of the upstream gradient with the flipped
   * kernel (`models/layers/conv2d.ts`) instead of the backend's `Conv2DBackpropInput`.
   */
  readonly convInputGradientAsForwardConv: boolean;
  /**
   * Run the VAE's stride-1 `'same'` convolutions (its 3x3 ones; the VAE is never differentiated) through the
   * backend's convolution input-gradient kernel with the kernel flipped (`models/layers/conv2d.ts`
   * `conv2dByInputGradient`). On tensorflow oneDNN's backward-data kernel beats its forward one at the VAE's sizes
   * (quiet, ms: 1x128x128x512 617 -> 268, 1x512x512x128 371 -> 325; the 512 px decode 20.3 s -> 14.8 s), while in
   * the UNet, with its 1280-channel kernels flipped at every call, a batch-2 forward at 64 x 64 was 8 % slower
   * (and its gradient 5 % faster): the UNet keeps the backend's own convolution.
   */
  readonly convByInputGradient: boolean;
  /**
   * How a group norm reduces its statistics (`models/layers/group-norm.ts`), each several times faster than
   * `tf.moments` over both axes at once: over each group's channels first, then the positions (`'groups-first'`);
   * over the positions first, channels contiguous (`'positions-first'`); or the same with the positions' sum as a
   * product by a row of ones (`'positions-by-product'`): on tensorflow Eigen's column reduction is single-threaded
   * and slow on large activations, oneDNN's product is not (Intel Xeon, 2 threads, per-channel mean, ms, reduction ->
   * product: 1 x 512² x 128 44 -> 9.7, 1 x 256² x 256 17 -> 3.8, 1 x 128² x 512 5.2 -> 1.8, 2 x 64² x 320 1.1 ->
   * 0.6).
   */
  readonly groupNormStatistics: 'groups-first' | 'positions-first' | 'positions-by-product';
  /**
   * Run a stride-1 convolution of at most this many output positions (batch x height x width; 0: never) as one
   * matrix product over the input's shifted windows (`models/layers/conv2d.ts` `conv2dAsProduct`). On tensorflow
   * oneDNN's convolution of a batch-1 activation up to 32 x 32 keeps one of the two cores idle (16 x 16 x 1280:
   * batch 1 76 ms, batch 2 68 ms); as a product (ms, convolution -> product, forward / forward + input gradient,
   * Intel Xeon, 2 threads): 1 x 8 x 8 x 1280 21 -> 12 / 46 -> 23, 1 x 16 x 16 x 1280 76 -> 34 / 123 -> 68,
   * 1 x 32 x 32 x 640 45 -> 31 / 73 -> 68, 2 x 16 x 16 x 1280 69 -> 62 / 135 -> 124, while 2 x 32 x 32 x 640
   * (46 -> 62) and 1 x 64 x 64 x 320 (25 -> 34) are slower: hence 1,024.
   */
  readonly convAsProductMaxPositions: number;
  /**
   * The fewest multiply-adds of a convolution run as a product (with `convAsProductMaxPositions`): a product
   * launches about a dozen kernels (pad, window slices, concat, product) where a convolution launches one, which a
   * model bound by per-kernel overhead pays for nothing (tensorflow: the toy-world UNet's 16 x 16 x 96
   * convolutions, 42 M multiply-adds at batch 2, made its batch-2 forward 70 -> 117 ms and its gradient 163 -> 223
   * ms as products). SD's smallest at 512 px (8 x 8 x 1280, batch 1) has 943 M.
   */
  readonly convAsProductMinMacs: number;
  /**
   * Keep the weights of widening `Linear` layers (out > in: CLIP's and BLIP's MLP `fc1`, BLIP's word scores; the
   * UNet's GEGLU projection opts out, see `unet/feed-forward.ts`) in PyTorch's `[out, in]` layout (no transpose when
   * loading) and multiply by their transpose (`models/layers/linear.ts`), instead of `[in, out]` and a plain
   * product. On tensorflow oneDNN's product with a wide untransposed right operand is slow, with a transposed one
   * not (ms, Intel Xeon, 2 threads): 16 x 77 x 768 by 768 x 3072 36.7 -> 19.8, 1024 x 640 by 640 x 5120 44.5 -> 22.8,
   * 256 x 1280 by 1280 x 10240 45.9 -> 22.4. Square and narrowing layers gain nothing (4096 x 320 by 320 x 320 2.9 /
   * 2.9 ms) and keep `[in, out]` (with every layer transposed, the UNet's process kept 0.4-0.8 GiB more resident
   * after a forward and a gradient, and the 512 px edit peaked at 8.6-9.0 GiB). The text encoder's 2 x 120 sentences
   * (the bench's direction phase) 21.5-22.0 s -> 18.6-18.9 s. wasm (XNNPACK) runs transposed products 10-20x slower.
   */
  readonly wideLinearWeightsAsStored: boolean;
  /**
   * The fewest multiply-adds of a product by one matrix that the `tensorflow` backend runs as TensorFlow's 2-D
   * `MatMul` instead of `BatchMatMulV2` (native-kernels.ts; unused elsewhere). Below, the two reshapes around it cost
   * more than it saves (ms, one thread / two: [2, 256, 96] x [96, 96] 0.077 -> 0.114 / 0.127 -> 0.113; [2, 256, 320]
   * x [320, 320] 0.72 -> 0.75 / 0.44 -> 0.66; [3, 768] x [768, 768], a BLIP decoding step, 0.11 -> 0.16 / 0.14 ->
   * 0.18), and from 2 x 1024 x 320 x 320 to 2^28 the two are level: without the floor the toy-world UNet's
   * gradient, every product under 20 M multiply-adds, was 6 % slower.
   */
  readonly matrixProductMinMacs: number;
  /**
   * Run the UNet's calls as TensorFlow graphs (`native-graph/`) when their latents have at most this many elements
   * per image (0: never; only the `tensorflow` backend has graphs). A small model's eager call is nearly all
   * per-op overhead, which a graph does not pay: the toy-world UNet (16 x 16 x 4 latents) gradient ~2,900 ops
   * 240 -> 55 ms. Larger latents are bound by their kernels and keep the eager path (and its memory controls:
   * scoped tidies, checkpointing, chunked attention).
   */
  readonly graphMaxElements: number;
  /**
   * Run the CLIP text encoder's layers as a TensorFlow graph (`native-graph/`; only the `tensorflow` backend has
   * graphs): TensorFlow's graph optimiser fuses what its eager ops run one by one. The full-size SD 1.x text encoder
   * on 16 sentences (Intel Xeon, 2 threads): 1,218 -> 928 ms, within 8.4e-7 of eager; the CLI's direction from the
   * built-in 2 x 1,000-sentence banks 143.9 -> 120.2 s (from 2 x 120 sentences level: 18.9-19.9 / 19.3-20.2 s, the
   * first two calls of a batch size being recorded as well as run as the graph).
   */
  readonly textEncoderGraphs: boolean;
}

/** One backend: how it is provided and what it can do. */
export interface BackendSpec {
  readonly name: BackendName;
  /** What the user reads in help texts. */
  readonly description: string;
  /** The npm packages that provide it, tried in order. */
  readonly packages: readonly string[];
  /** How much tensor memory it can hold, in bytes; `undefined` when only the machine's memory limits it. */
  readonly heapLimitBytes?: number;
  /** The threads its kernels use, once active. */
  threads(): number;
  /** Kernel variants that are fast on it. */
  readonly kernels: KernelChoices;
  /** Registers kernels over the package's own, once it has loaded (see native-kernels.ts). */
  readonly registerKernels?: () => void;
}

/** TensorFlow's own intra-op thread count (its `TF_NUM_INTRAOP_THREADS`, else every CPU the process may use). */
function tensorflowThreads(): number {
  const n = Number(process.env.TF_NUM_INTRAOP_THREADS);
  return Number.isInteger(n) && n > 0 ? n : os.availableParallelism();
}

/**
 * Every backend, best first: the order `auto` tries them in. The kernel choices are `npm run bench -- unet --only
 * conv,matmul` on this machine (docs/benchmarks.md): the built-in convolution input gradient against the forward-conv
 * one, 8.96x slower on wasm, 0.85x on cpu, 0.98x and 1.14x on tensorflow in two runs (within this shared machine's
 * noise; the built-in one is kept there, as it needs no flipped copy of the kernel); the plain-product split against
 * `tf.matMul` for the attention products' gradient, 1.46x and 1.30x slower on tensorflow (wasm: 10-20x faster, see
 * matmul.ts). The group norm's
 * statistics of a [1, 512, 512, 128] activation in 32 groups: positions first 133 ms / 501 / 244 (tensorflow / wasm
 * / cpu, 64 x 64 on cpu), each group's channels first 248 / 393 / 138, tf.moments 598 / 1002 / 220.
 */
export const BACKENDS: readonly BackendSpec[] = [
  {
    name: 'tensorflow',
    description: 'native TensorFlow (tfjs-node-gpu or tfjs-node; offline: npm run setup:tensorflow)',
    packages: ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'],
    threads: tensorflowThreads,
    kernels: { plainProducts: false, convInputGradientAsForwardConv: false, convByInputGradient: true, groupNormStatistics: 'positions-by-product', convAsProductMaxPositions: 1024, convAsProductMinMacs: 1 << 27, wideLinearWeightsAsStored: true, matrixProductMinMacs: 1 << 28, graphMaxElements: 16 * 16 * 4, textEncoderGraphs: true },
    registerKernels: () => registerNativeKernels(() => kernelChoices().matrixProductMinMacs),
  },
  {
    name: 'wasm',
    description: 'WebAssembly (XNNPACK, one thread in Node, 4 GB heap)',
    packages: ['@tensorflow/tfjs-backend-wasm'],
    heapLimitBytes: 4 * 1024 ** 3,
    threads: () => getThreadsCount(),
    kernels: { plainProducts: true, convInputGradientAsForwardConv: true, convByInputGradient: false, groupNormStatistics: 'groups-first', convAsProductMaxPositions: 0, convAsProductMinMacs: 0, wideLinearWeightsAsStored: false, matrixProductMinMacs: 0, graphMaxElements: 0, textEncoderGraphs: false },
  },
  {
    name: 'cpu',
    description: 'pure JavaScript (slow; always present)',
    packages: ['@tensorflow/tfjs-backend-cpu'],
    threads: () => 1,
    kernels: { plainProducts: false, convInputGradientAsForwardConv: false, convByInputGradient: false, groupNormStatistics: 'groups-first', convAsProductMaxPositions: 0, convAsProductMinMacs: 0, wideLinearWeightsAsStored: false, matrixProductMinMacs: 0, graphMaxElements: 0, textEncoderGraphs: false },
  },
];

/** The backend names, best first. */
export const BACKEND_NAMES: readonly BackendName[] = BACKENDS.map((b) => b.name);

const CHOICES: readonly BackendChoice[] = ['auto', ...BACKEND_NAMES];

/** The table entry of a backend. */
export function backendSpec(name: BackendName): BackendSpec {
  const spec = BACKENDS.find((b) => b.name === name);
  if (spec === undefined) throw new Error(`unknown backend '${name}'`);
  return spec;
}

let kernelOverride: Partial<KernelChoices> | undefined;

/**
 * Kernel choices forced for the whole process, as a JSON object (`{"graphMaxElements": 0}`): how a benchmark
 * compares variants across whole commands.
 */
export const KERNEL_CHOICES_ENV = 'PIX2PIX_ZERO_KERNEL_CHOICES';

/**
 * Kernel choices from a JSON object's text (empty: none).
 *
 * @throws Error when it is not a JSON object of known choices with values of their types, naming what is wrong.
 */
export function parseKernelChoices(text: string, source = KERNEL_CHOICES_ENV): Partial<KernelChoices> {
  let parsed: unknown = {};
  if (text.trim() !== '') {
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error(`${source} must be a JSON object, got '${text}'`);
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${source} must be a JSON object, got '${text}'`);
  const known = backendSpec('tensorflow').kernels as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(parsed)) {
    if (!(key in known)) throw new Error(`${source}: unknown kernel choice '${key}' (known: ${Object.keys(known).join(', ')})`);
    if (typeof value !== typeof known[key]) throw new Error(`${source}: '${key}' must be a ${typeof known[key]}, got ${JSON.stringify(value)}`);
  }
  return parsed as Partial<KernelChoices>;
}

let envChoices: Partial<KernelChoices> | undefined;

/**
 * The choices `$PIX2PIX_ZERO_KERNEL_CHOICES` forces (read at the first call).
 *
 * @throws Error when it is malformed (see {@link parseKernelChoices}).
 */
export function environmentKernelChoices(): Partial<KernelChoices> {
  envChoices ??= parseKernelChoices(process.env[KERNEL_CHOICES_ENV] ?? '');
  return envChoices;
}

/**
 * The kernel variants of the active backend (those of `cpu` for a backend outside the table), with those of
 * `$PIX2PIX_ZERO_KERNEL_CHOICES` and {@link withKernelChoices} over them.
 */
export function kernelChoices(): KernelChoices {
  const name = tf.getBackend();
  const kernels = (BACKENDS.find((b) => b.name === name) ?? backendSpec('cpu')).kernels;
  const forced = environmentKernelChoices();
  return kernelOverride === undefined && Object.keys(forced).length === 0 ? kernels : { ...kernels, ...forced, ...kernelOverride };
}

/**
 * Runs `fn` (synchronously) with some kernel variants forced, whatever the table says: the benchmarks time the
 * variants against each other with it, and the tests check that they compute the same values.
 */
export function withKernelChoices<T>(choices: Partial<KernelChoices>, fn: () => T): T {
  const saved = kernelOverride;
  kernelOverride = { ...saved, ...choices };
  try {
    return fn();
  } finally {
    kernelOverride = saved;
  }
}

/** Options of {@link initBackend}. */
export interface BackendOptions {
  /** Which backend to use; defaults to `$PIX2PIX_ZERO_BACKEND`, else `auto`. */
  backend?: BackendChoice;
  /**
   * Let native TensorFlow's own start-up lines (absl, oneDNN and CPU-feature notices) reach stderr; the CLI sets
   * this with `--debug`. Default false. Applies when the native library is first loaded in the process.
   */
  nativeLogs?: boolean;
}

/** The backend that is active after {@link initBackend}, and where it came from. */
export interface BackendInfo {
  /** The active tfjs backend. */
  name: BackendName;
  /** The package that provides it (with the folder it was found in when that is the offline build). */
  provider: string;
  /** The versions of what runs the kernels (e.g. `tfjs-node 4.22.0, TensorFlow 2.21.0`). */
  version: string;
  /** The threads its kernels use. */
  threads: number;
  /** Backends that were tried before it and could not be loaded, with the reason. */
  skipped: { name: string; reason: string }[];
}

const require = createRequire(import.meta.url);

/** The folder `npm run setup:tensorflow` builds the native backend into: `$PIX2PIX_ZERO_NATIVE_DIR`, else `.native/`. */
export function nativeDir(): string {
  const env = process.env[NATIVE_DIR_ENV];
  return env !== undefined && env.trim() !== '' ? path.resolve(env) : path.join(PACKAGE_ROOT, '.native');
}

/** Where a package resolves: from this library's own `node_modules` first, else from the offline build's folder. */
function resolvePackage(pkg: string): { entry: string; offline: boolean } | undefined {
  try {
    return { entry: require.resolve(pkg), offline: false };
  } catch {
    const dir = nativeDir();
    if (!fs.existsSync(path.join(dir, 'node_modules'))) return undefined;
    try {
      return { entry: createRequire(path.join(dir, 'package.json')).resolve(pkg), offline: true };
    } catch {
      return undefined;
    }
  }
}

/**
 * The backends present in this installation, best first, without loading any: `tensorflow` when one of its packages
 * resolves (it may still fail to load; {@link initBackend} then says why), `wasm` and `cpu` always.
 */
export function installedBackends(): BackendName[] {
  return BACKENDS.filter((b) => b.name !== 'tensorflow' || b.packages.some((p) => resolvePackage(p) !== undefined)).map((b) => b.name);
}

/** Parses a backend choice (from an option, a CLI flag or the environment), with a clear error. */
export function parseBackendChoice(value: string, source = 'backend'): BackendChoice {
  const v = value.trim().toLowerCase();
  if ((CHOICES as readonly string[]).includes(v)) return v as BackendChoice;
  throw new Error(`${source}: unknown backend '${value}'; expected one of ${CHOICES.join(', ')}`);
}

/** Resolves the user's choice: the option first, then the environment variable, then `auto`. */
export function resolveBackendChoice(options: BackendOptions = {}): BackendChoice {
  if (options.backend !== undefined) return parseBackendChoice(options.backend, 'backend option');
  const env = process.env[BACKEND_ENV];
  if (env !== undefined && env.trim() !== '') return parseBackendChoice(env, BACKEND_ENV);
  return 'auto';
}

let wasmPathsSet = false;

/** Points the wasm backend at the `.wasm` files inside the installed package (no network). */
function configureWasm(): void {
  if (wasmPathsSet) return;
  const pkgJson = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  setWasmPaths(path.join(path.dirname(pkgJson), 'dist') + path.sep);
  wasmPathsSet = true;
}

/** `TF_CPP_MIN_LOG_LEVEL=3` (set before the library loads, unless the user set it) hides TensorFlow's info lines. */
function prepareNativeEnvironment(nativeLogs: boolean): void {
  if (!nativeLogs && (process.env.TF_CPP_MIN_LOG_LEVEL ?? '').trim() === '') process.env.TF_CPP_MIN_LOG_LEVEL = '3';
}

/** `stderr_guard.node` (tools/native/stderr-guard.c, built by the setup): mutes fd 2 around TensorFlow's start. */
interface StderrGuard {
  mute(): void;
  unmute(): void;
}

/**
 * The guard, when the offline build made one. TensorFlow 2.21 writes absl's pre-initialisation warning and the
 * oneDNN notice straight to stderr at its first op, whatever the log level; an ordinary tfjs-node (TensorFlow
 * 2.9) honours the level and needs none.
 */
function stderrGuard(): StderrGuard | undefined {
  const file = path.join(nativeDir(), 'stderr_guard.node');
  if (!fs.existsSync(file)) return undefined;
  try {
    return require(file) as StderrGuard;
  } catch {
    return undefined;
  }
}

let nativeProvider: string | undefined;

/** Loads tfjs-node(-gpu) once per process; returns the package that registered the `tensorflow` backend. */
async function loadNative(options: BackendOptions, skipped: BackendInfo['skipped']): Promise<string | undefined> {
  if (nativeProvider !== undefined) return nativeProvider;
  if (tf.findBackend('tensorflow') !== null) {
    backendSpec('tensorflow').registerKernels?.();
    return (nativeProvider = 'already registered');
  }
  prepareNativeEnvironment(options.nativeLogs === true);
  // Not tf.getBackend(): before any backend is active it would initialise one as a side effect.
  // (engine.backendName is typed string but is undefined until a backend is set.)
  const previous: string | undefined = tf.engine().backendName;
  for (const pkg of backendSpec('tensorflow').packages) {
    const found = resolvePackage(pkg);
    if (found === undefined) {
      skipped.push({ name: pkg, reason: 'not installed' });
      continue;
    }
    const guard = options.nativeLogs === true ? undefined : stderrGuard();
    guard?.mute();
    try {
      require(found.entry);
      if (tf.findBackend('tensorflow') === null) {
        skipped.push({ name: pkg, reason: 'loaded, but registered no tensorflow backend (a second @tensorflow/tfjs-core?)' });
        continue;
      }
      // tfjs-node activates itself on load. TensorFlow prints its start-up notices at its first op: one runs while
      // stderr is muted. Then the caller decides what is active.
      tf.tidy(() => tf.add(tf.ones([1]), 1).dataSync());
      backendSpec('tensorflow').registerKernels?.();
      if (typeof previous === 'string' && previous !== 'tensorflow') await tf.setBackend(previous);
      return (nativeProvider = found.offline ? `${pkg} (${nativeDir()})` : pkg);
    } catch (err) {
      skipped.push({ name: pkg, reason: firstLine(err) });
    } finally {
      guard?.unmute();
    }
  }
  return undefined;
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0] ?? msg;
}

/** The versions of what runs the active backend's kernels. */
function versionOf(name: BackendName): string {
  const pkgVersion = (pkg: string): string => {
    try {
      const found = resolvePackage(`${pkg}/package.json`);
      if (found === undefined) return '?';
      return (JSON.parse(fs.readFileSync(found.entry, 'utf8')) as { version?: string }).version ?? '?';
    } catch {
      return '?';
    }
  };
  if (name === 'tensorflow') {
    const binding = (tf.backend() as unknown as { binding?: { TF_Version?: string } }).binding;
    const provider = nativeProvider?.split(' ')[0] ?? '@tensorflow/tfjs-node';
    return `${provider.replace('@tensorflow/', '')} ${pkgVersion(provider)}, TensorFlow ${binding?.TF_Version ?? '?'}`;
  }
  const pkg = backendSpec(name).packages[0]!;
  return `${pkg.replace('@tensorflow/', '')} ${pkgVersion(pkg)}`;
}

async function activate(name: BackendName): Promise<boolean> {
  if (name === 'wasm') configureWasm();
  return tf.setBackend(name);
}

function info(name: BackendName, provider: string, skipped: BackendInfo['skipped']): BackendInfo {
  return { name, provider, version: versionOf(name), threads: backendSpec(name).threads(), skipped };
}

/**
 * Chooses, initialises and activates a backend. Safe to call more than once; each call re-applies the choice.
 *
 * @throws Error when a forced backend cannot be loaded, naming the backend and what to do, or when
 * `$PIX2PIX_ZERO_KERNEL_CHOICES` is malformed.
 */
export async function initBackend(options: BackendOptions = {}): Promise<BackendInfo> {
  const choice = resolveBackendChoice(options);
  environmentKernelChoices();
  const skipped: BackendInfo['skipped'] = [];

  if (choice === 'tensorflow' || choice === 'auto') {
    const provider = await loadNative(options, skipped);
    if (provider !== undefined && (await activate('tensorflow'))) {
      return info('tensorflow', provider, skipped.filter((s) => s.reason !== 'not installed'));
    }
    if (choice === 'tensorflow') {
      const broken = skipped.filter((s) => s.reason !== 'not installed');
      const why = broken.length > 0 ? ` (${broken.map((s) => `${s.name}: ${s.reason}`).join('; ')})` : '';
      throw new Error(
        `backend 'tensorflow' is not available${why}: run 'npm run setup:tensorflow' in ${PACKAGE_ROOT} (offline build), or install @tensorflow/tfjs-node 4.22.0`,
      );
    }
  }
  if (choice === 'wasm' || choice === 'auto') {
    try {
      if (await activate('wasm')) return info('wasm', '@tensorflow/tfjs-backend-wasm', skipped);
      skipped.push({ name: 'wasm', reason: 'initialisation failed' });
    } catch (err) {
      skipped.push({ name: 'wasm', reason: firstLine(err) });
    }
    if (choice === 'wasm') throw new Error(`backend 'wasm' could not be initialised: ${skipped.at(-1)?.reason ?? ''}`);
  }
  if (!(await activate('cpu'))) throw new Error(`backend 'cpu' could not be initialised`);
  return info('cpu', '@tensorflow/tfjs-backend-cpu', skipped);
}

/** The name of the active backend. */
export function currentBackend(): string {
  return tf.getBackend();
}
