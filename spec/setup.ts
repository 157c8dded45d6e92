// Mocha setup: quiet tfjs's console advice, and start every run on an initialised backend (wasm, the one CI
// has); parity suites switch between wasm and cpu themselves (spec/helpers/tensors.ts forEachBackend).
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.js';
import { PARITY } from './helpers/tensors.js';

tf.env().set('PROD', true);

export const mochaHooks = {
  async beforeAll(): Promise<void> {
    await initBackend({ backend: 'wasm' });
  },
  /** Prints the worst relative error of each kind of reference comparison the run made, with its tolerance. */
  afterAll(): void {
    if (PARITY.size === 0) return;
    const rows = [...PARITY.entries()].sort(([a], [b]) => a.localeCompare(b));
    const width = Math.min(90, Math.max(...rows.map(([k]) => k.length)));
    console.log(`\n  Parity against the reference (worst relative error over n comparisons, tolerance):`);
    for (const [k, v] of rows) {
      console.log(`    ${k.slice(0, 90).padEnd(width)}  ${v.worst.toExponential(1)}  n=${v.count}  tol ${v.tol}`);
    }
  },
};
