// Mocha setup: quiet tfjs's console advice, and start every run on an initialised backend (wasm, the one CI
// has); parity suites switch between wasm and cpu themselves (spec/helpers/tensors.ts forEachBackend).
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.js';
import { MODEL_ENV } from '../lib/paths.js';
import { PARITY, TINY_SD } from './helpers/tensors.js';

tf.env().set('PROD', true);
// Tests that give no model run on the tiny pipeline the reference fixtures are made with (in this process and in
// the CLI processes they start), whatever the shipped default is; a test of the default sets the variable itself.
process.env[MODEL_ENV] ??= TINY_SD;

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
