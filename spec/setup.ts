// Mocha setup: quiet tfjs's console advice, and start every run on an initialised backend (wasm, present
// everywhere); parity suites switch between the installed backends themselves (spec/helpers/tensors.ts
// forEachBackend: tensorflow when set up, wasm, cpu).
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.js';
import { MODEL_ENV } from '../lib/paths.js';
import { PARITY, TEST_BACKENDS, TINY_SD } from './helpers/tensors.js';

tf.env().set('PROD', true);
// Tests that give no model run on the tiny pipeline the reference fixtures are made with (in this process and in
// the CLI processes they start), whatever the shipped default is; a test of the default sets the variable itself.
process.env[MODEL_ENV] ??= TINY_SD;

export const mochaHooks = {
  async beforeAll(): Promise<void> {
    await initBackend({ backend: 'wasm' });
  },
  /**
   * Prints the worst relative error of each kind of reference comparison the run made, one column per backend, with
   * the comparison count and the tolerance.
   */
  afterAll(): void {
    if (PARITY.size === 0) return;
    const rows = [...PARITY.entries()].sort(([a], [b]) => a.localeCompare(b));
    const width = Math.min(80, Math.max(...rows.map(([k]) => k.length)));
    const cols = TEST_BACKENDS.filter((b) => rows.some(([, per]) => per.has(b)));
    const cell = (s: string): string => s.padStart(11);
    console.log(`\n  Parity against the reference: worst relative error per backend (comparisons), tolerance`);
    console.log(`    ${''.padEnd(width)}${cols.map((b) => cell(b)).join('')}        tol`);
    for (const [kind, per] of rows) {
      const cells = cols.map((b) => {
        const r = per.get(b);
        return cell(r === undefined ? '-' : `${r.worst.toExponential(1)} (${r.count})`);
      });
      const tol = Math.max(...[...per.values()].map((r) => r.tol));
      console.log(`    ${kind.slice(0, 80).padEnd(width)}${cells.join('')}  ${String(tol).padStart(9)}`);
    }
  },
};
