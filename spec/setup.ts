// Mocha setup: quiet tfjs's console advice, and start every run on an initialised backend (wasm, the one CI
// has); parity suites switch between wasm and cpu themselves (spec/helpers/tensors.ts forEachBackend).
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.js';

tf.env().set('PROD', true);

export const mochaHooks = {
  async beforeAll(): Promise<void> {
    await initBackend({ backend: 'wasm' });
  },
};
