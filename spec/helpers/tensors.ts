/**
 * Test helpers: reference fixtures, the backends every parity test runs on, and the error measure the
 * tolerances are stated in.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { initBackend, type BackendName } from '../../lib/backend.js';
import { SafetensorsFile } from '../../lib/io/safetensors.js';

/** The repository root (tests run from dist/spec/helpers). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** spec/fixtures in the source tree. */
export const FIXTURES = path.join(ROOT, 'spec', 'fixtures');
/** The shipped default model (also the tiny pipeline the reference fixtures are made with). */
export const TINY_SD = path.join(ROOT, 'converted_models', 'tiny-sd');

/** Every backend the parity tests run on here (CI has no tfjs-node). */
export const TEST_BACKENDS: BackendName[] = ['wasm', 'cpu'];

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

/** The worst relative error seen per kind of comparison (its label with numbers folded), for the run's summary. */
export const PARITY = new Map<string, { worst: number; tol: number; count: number }>();

/** Asserts that `actual` matches the reference `expected` within relative error `tol`. */
export function expectClose(actual: tf.Tensor, expected: tf.Tensor, tol: number, what: string): number {
  const err = relativeError(actual, expected);
  const key = `${tf.getBackend()} ${what.replace(/\d+/g, '#')}`;
  const seen = PARITY.get(key) ?? { worst: 0, tol, count: 0 };
  PARITY.set(key, { worst: Math.max(seen.worst, err), tol: Math.max(seen.tol, tol), count: seen.count + 1 });
  expect(err, `${what}: relative error ${err.toExponential(2)} exceeds ${tol}`).to.be.at.most(tol);
  return err;
}
