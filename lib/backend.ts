/**
 * Choosing and initialising the TensorFlow.js backend.
 *
 * The library runs on whichever backend is present, best first:
 * `tensorflow` (from `@tensorflow/tfjs-node-gpu`, else `@tensorflow/tfjs-node`), then `wasm`
 * (`@tensorflow/tfjs-backend-wasm`, its `.wasm` files read from the installed package, never the network),
 * then `cpu` (pure JavaScript). The choice can be forced by option or by the environment variable
 * `PIX2PIX_ZERO_BACKEND` (`auto`, `tensorflow`, `wasm` or `cpu`); the option wins over the variable.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import * as path from 'node:path';

/** A backend this library can run on. `tensorflow` is the native backend of tfjs-node(-gpu). */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

/** What the user may ask for: a backend, or `auto` for the best one present. */
export type BackendChoice = BackendName | 'auto';

/** The environment variable that forces a backend when no option does. */
export const BACKEND_ENV = 'PIX2PIX_ZERO_BACKEND';

const CHOICES: readonly BackendChoice[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

/** Options of {@link initBackend}. */
export interface BackendOptions {
  /** Which backend to use; defaults to `$PIX2PIX_ZERO_BACKEND`, else `auto`. */
  backend?: BackendChoice;
}

/** The backend that is active after {@link initBackend}, and where it came from. */
export interface BackendInfo {
  /** The active tfjs backend. */
  name: BackendName;
  /** The package that provides it. */
  provider: string;
  /** Backends that were tried before it and could not be loaded, with the reason. */
  skipped: { name: string; reason: string }[];
}

const require = createRequire(import.meta.url);

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

async function tryNative(skipped: BackendInfo['skipped']): Promise<string | undefined> {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
      if (tf.findBackend('tensorflow') !== null) return pkg;
      skipped.push({ name: pkg, reason: 'loaded, but registered no tensorflow backend' });
    } catch (err) {
      skipped.push({ name: pkg, reason: firstLine(err) });
    }
  }
  return undefined;
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0] ?? msg;
}

async function activate(name: BackendName): Promise<boolean> {
  if (name === 'wasm') configureWasm();
  return tf.setBackend(name);
}

/**
 * Chooses, initialises and activates a backend. Safe to call more than once; each call re-applies the choice.
 *
 * @throws Error when a forced backend cannot be loaded, naming the backend and the reason.
 */
export async function initBackend(options: BackendOptions = {}): Promise<BackendInfo> {
  const choice = resolveBackendChoice(options);
  const skipped: BackendInfo['skipped'] = [];

  if (choice === 'tensorflow' || choice === 'auto') {
    const provider = tf.findBackend('tensorflow') !== null ? 'already registered' : await tryNative(skipped);
    if (provider !== undefined && (await activate('tensorflow'))) {
      return { name: 'tensorflow', provider, skipped };
    }
    if (choice === 'tensorflow') {
      const why = skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
      throw new Error(`backend 'tensorflow' is not available (install @tensorflow/tfjs-node or -gpu 4.22.0). ${why}`);
    }
  }
  if (choice === 'wasm' || choice === 'auto') {
    try {
      if (await activate('wasm')) return { name: 'wasm', provider: '@tensorflow/tfjs-backend-wasm', skipped };
      skipped.push({ name: 'wasm', reason: 'initialisation failed' });
    } catch (err) {
      skipped.push({ name: 'wasm', reason: firstLine(err) });
    }
    if (choice === 'wasm') throw new Error(`backend 'wasm' could not be initialised: ${skipped.at(-1)?.reason ?? ''}`);
  }
  if (!(await activate('cpu'))) throw new Error(`backend 'cpu' could not be initialised`);
  return { name: 'cpu', provider: '@tensorflow/tfjs-backend-cpu', skipped };
}

/** The name of the active backend. */
export function currentBackend(): string {
  return tf.getBackend();
}
