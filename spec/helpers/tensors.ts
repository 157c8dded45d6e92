/**
 * Test helpers: reference fixtures, the backends every parity test runs on, and the error measure the
 * tolerances are stated in.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { BACKEND_NAMES, initBackend, installedBackends, type BackendName } from '../../lib/backend.js';
import { SafetensorsFile } from '../../lib/io/safetensors.js';

/** The repository root (tests run from dist/spec/helpers). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** spec/fixtures in the source tree. */
export const FIXTURES = path.join(ROOT, 'spec', 'fixtures');
/** The shipped default model (also the tiny pipeline the reference fixtures are made with). */
export const TINY_SD = path.join(ROOT, 'converted_models', 'tiny-sd');

/** Restricts the parity tests to some backends (comma-separated), e.g. `PIX2PIX_ZERO_TEST_BACKENDS=wasm`. */
export const TEST_BACKENDS_ENV = 'PIX2PIX_ZERO_TEST_BACKENDS';

function testBackends(): BackendName[] {
  const installed = installedBackends();
  const env = process.env[TEST_BACKENDS_ENV];
  if (env === undefined || env.trim() === '') return installed;
  const asked = env.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const a of asked) {
    if (!(BACKEND_NAMES as readonly string[]).includes(a)) throw new Error(`${TEST_BACKENDS_ENV}: unknown backend '${a}' (expected ${BACKEND_NAMES.join(', ')})`);
    if (!(installed as string[]).includes(a)) throw new Error(`${TEST_BACKENDS_ENV}: backend '${a}' is not installed (npm run setup:tensorflow)`);
  }
  return installed.filter((b) => asked.includes(b));
}

/**
 * Every backend the parity tests run on: each one installed here (tensorflow when tfjs-node or the offline build of
 * `npm run setup:tensorflow` is present; wasm and cpu always), or those `$PIX2PIX_ZERO_TEST_BACKENDS` names.
 */
export const TEST_BACKENDS: BackendName[] = testBackends();

/** Registers `body` once per test backend, in a describe block that activates that backend. */
export function forEachBackend(title: string, body: (backend: BackendName) => void): void {
  for (const backend of TEST_BACKENDS) {
    describe(`${title} [${backend}]`, function () {
      before(async function () {
        await initBackend({ backend });
      });
      body(backend);
    });
  }
}

/** Reads every tensor of a reference safetensors file as tf tensors (caller disposes). */
export function readReference(file: string): Record<string, tf.Tensor> {
  const f = SafetensorsFile.open(path.isAbsolute(file) ? file : path.join(FIXTURES, file));
  try {
    const out: Record<string, tf.Tensor> = {};
    for (const name of f.names()) {
      const t = f.read(name);
      out[name] = tf.tensor(t.data, t.shape, t.dtype);
    }
    return out;
  } finally {
    f.close();
  }
}

/** max |actual - expected| / max |expected|: the relative error the parity tolerances are stated in. */
export function relativeError(actual: tf.Tensor, expected: tf.Tensor): number {
  expect(actual.shape, 'shape').to.deep.equal(expected.shape);
  const a = actual.dataSync();
  const e = expected.dataSync();
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < e.length; i++) {
    const d = Math.abs(a[i]! - e[i]!);
    if (!(d <= diff)) diff = d; // NaN propagates as a failure
    scale = Math.max(scale, Math.abs(e[i]!));
  }
  return scale === 0 ? diff : diff / scale;
}

/** The worst relative error of one kind of comparison on one backend. */
export interface ParityRecord {
  worst: number;
  tol: number;
  count: number;
}

/**
 * The worst relative error seen per kind of comparison (its label with numbers folded) and backend, for the run's
 * summary.
 */
export const PARITY = new Map<string, Map<string, ParityRecord>>();

/** Asserts that `actual` matches the reference `expected` within relative error `tol`. */
export function expectClose(actual: tf.Tensor, expected: tf.Tensor, tol: number, what: string): number {
  const err = relativeError(actual, expected);
  const kind = what.replace(/\d+/g, '#');
  const perBackend = PARITY.get(kind) ?? new Map<string, ParityRecord>();
  const seen = perBackend.get(tf.getBackend()) ?? { worst: 0, tol, count: 0 };
  perBackend.set(tf.getBackend(), { worst: Math.max(seen.worst, err), tol: Math.max(seen.tol, tol), count: seen.count + 1 });
  PARITY.set(kind, perBackend);
  expect(err, `${what}: relative error ${err.toExponential(2)} exceeds ${tol}`).to.be.at.most(tol);
  return err;
}
