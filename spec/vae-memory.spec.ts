/**
 * Memory of a full-size Stable Diffusion 1.x VAE (block_out_channels 128, 256, 512, 512; 2 layers per block;
 * 32 groups; random weights) on the wasm backend: decoding a 64x64 latent to a 512x512 image and encoding a
 * 512x512 image. Reports the peak of `tf.memory().numBytes` (weights included), the wasm heap and the time.
 *
 * Slow (minutes), so it runs only when asked: PIX2PIX_ZERO_VAE_MEMORY=1 npx mocha ... dist/spec/vae-memory.spec.js
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { initBackend } from '../lib/backend.js';
import { AutoencoderKL } from '../lib/models/vae/autoencoder-kl.js';
import { parseVaeConfig } from '../lib/models/vae/config.js';

const SD1_VAE = {
  _class_name: 'AutoencoderKL',
  act_fn: 'silu',
  block_out_channels: [128, 256, 512, 512],
  down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D'],
  up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D'],
  in_channels: 3,
  out_channels: 3,
  latent_channels: 4,
  layers_per_block: 2,
  norm_num_groups: 32,
  sample_size: 512,
  scaling_factor: 0.18215,
};

/** The wasm backend's heap (it grows and never shrinks; capped at 4 GB). */
function wasmHeapBytes(): number | undefined {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return backend.wasm?.HEAPU8?.byteLength;
}

const MB = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MB`;

/** Random weights of the usual scales (kernels ~ 1/sqrt(fan in), norm scales ~ 1, biases small). */
function randomize(model: AutoencoderKL): void {
  let seed = 1;
  for (const [name, w] of model.namedWeights()) {
    tf.tidy(() => {
      const shape = w.variable.shape as number[];
      const fanIn = w.torchShape.slice(1).reduce((a, b) => a * b, 1);
      const value =
        w.torchShape.length >= 2
          ? tf.randomNormal(shape, 0, 1 / Math.sqrt(fanIn), 'float32', seed++)
          : /norm/.test(name) && name.endsWith('weight')
            ? tf.add(1, tf.randomNormal(shape, 0, 0.1, 'float32', seed++))
            : tf.randomNormal(shape, 0, 0.1, 'float32', seed++);
      w.variable.write(value);
    });
  }
}

describe('full-size SD 1.x VAE on wasm: memory of a 512x512 decode and encode', function () {
  let vae: AutoencoderKL;
  const report: string[] = [];

  before(async function () {
    if (process.env.PIX2PIX_ZERO_VAE_MEMORY !== '1') this.skip();
    await initBackend({ backend: 'wasm' });
    vae = new AutoencoderKL(parseVaeConfig(SD1_VAE, 'SD 1.x VAE config'));
    randomize(vae);
    report.push(`weights ${MB(tf.memory().numBytes)} (${vae.parameterCount()} parameters), wasm heap ${MB(wasmHeapBytes() ?? 0)}`);
  });
  after(function () {
    vae?.disposeAll();
    if (report.length > 0) console.log(`      ${report.join('\n      ')}`);
  });

  const measure = async (what: string, run: () => tf.Tensor): Promise<void> => {
    const tensorsBefore = tf.memory().numTensors;
    const bytesBefore = tf.memory().numBytes;
    let start = Date.now();
    const out = run();
    await out.data();
    const seconds = (Date.now() - start) / 1000;
    expect(out.shape.length).to.equal(4);
    const finite = tf.tidy(() => tf.all(tf.isFinite(out)).dataSync()[0]);
    expect(finite, `${what}: non-finite output`).to.equal(1);
    out.dispose();
    const heapAfterPlain = wasmHeapBytes() ?? 0;
    start = Date.now();
    const profile = await tf.profile(() => run());
    const profiled = (Date.now() - start) / 1000;
    (profile.result as tf.Tensor).dispose();
    expect(tf.memory().numTensors, `${what}: leaked tensors`).to.equal(tensorsBefore);
    report.push(
      `${what}: ${seconds.toFixed(1)} s; peak tensor memory ${MB(profile.peakBytes)} (${MB(profile.peakBytes - bytesBefore)} above the weights); ` +
        `wasm heap ${MB(heapAfterPlain)} after the plain run (profiled run ${profiled.toFixed(1)} s)`,
    );
  };

  it('decodes a 1x64x64x4 latent to a 512x512 image', async function () {
    const z = tf.randomNormal([1, 64, 64, 4], 0, 1, 'float32', 3) as tf.Tensor4D;
    await measure('decode 64x64 -> 512x512', () => vae.decode(z));
    z.dispose();
  });

  it('encodes a 1x512x512x3 image to its posterior', async function () {
    const image = tf.randomUniform([1, 512, 512, 3], -1, 1, 'float32', 4) as tf.Tensor4D;
    await measure('encode 512x512 -> 64x64', () => {
      const posterior = vae.encode(image);
      const mean = posterior.mean.clone();
      posterior.dispose();
      return mean;
    });
    image.dispose();
  });
});
