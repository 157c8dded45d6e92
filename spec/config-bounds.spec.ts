/**
 * Kind 7 of issue 18, configs bounded before allocation: each component's config is compared with its weights'
 * header shapes (and sane bounds) before the model is built, and the error names the key.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { BlipForConditionalGeneration } from '../lib/models/blip/model.js';
import { CLIPTextModel } from '../lib/models/clip-text/model.js';
import { UNet2DConditionModel } from '../lib/models/unet/index.js';
import { AutoencoderKL } from '../lib/models/vae/autoencoder-kl.js';
import { FIXTURES, TINY_SD } from './helpers/tensors.js';

/** A copy of component folder `src` whose config.json has `changes` applied (a key set to undefined is removed). */
function withConfig(tmp: string, src: string, name: string, changes: (c: Record<string, unknown>) => void): string {
  const dir = path.join(tmp, name);
  fs.cpSync(src, dir, { recursive: true });
  const file = path.join(dir, 'config.json');
  const config = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  changes(config);
  fs.writeFileSync(file, JSON.stringify(config));
  return dir;
}

describe('configs are checked against the weights before anything is allocated (issue 18, kind 7)', function () {
  let tmp: string;
  before(function () {
    if (!fs.existsSync(TINY_SD)) this.skip();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-config-bounds-'));
  });
  after(function () {
    if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** Expects `build` to fail with `message` without having allocated a single tensor. */
  function refusedBeforeAllocation(build: () => unknown, message: RegExp): void {
    const before = tf.memory();
    expect(build).to.throw(message);
    expect(tf.memory().numTensors).to.equal(before.numTensors);
    expect(tf.memory().numBytes).to.equal(before.numBytes);
  }

  it('UNet: a block wider than its weights, the number of blocks and of layers, name the key', function () {
    const unet = path.join(TINY_SD, 'unet');
    const cases: [(c: Record<string, unknown>) => void, RegExp][] = [
      [(c) => (c.block_out_channels = [16, 2048]), /config\.json: block_out_channels\[1\] is 2048, but 'down_blocks\.1\.resnets\.0\.conv2\.weight' .* has 32 there/],
      [(c) => (c.cross_attention_dim = 4096), /cross_attention_dim is 4096, but .*attn2\.to_k\.weight.* has 32 there/],
      [(c) => (c.layers_per_block = 300), /layers_per_block is 300, but .* has no tensor 'down_blocks\.0\.resnets\.299\.conv1\.weight'/],
      [(c) => (c.block_out_channels = [2 ** 40, 32]), /'block_out_channels'\[0\] is 1099511627776, larger than any model this library runs/],
    ];
    cases.forEach(([change, message], i) => refusedBeforeAllocation(() => UNet2DConditionModel.fromFolder(withConfig(tmp, unet, `unet${i}`, change)), message));
  });

  it('text encoder: absurd sizes and sizes that disagree with the weights name the key', function () {
    const te = path.join(TINY_SD, 'text_encoder');
    const cases: [(c: Record<string, unknown>) => void, RegExp][] = [
      [(c) => (c.hidden_size = 2 ** 40), /'hidden_size' is 1099511627776, larger than any model/],
      [(c) => (c.vocab_size = 1e12), /'vocab_size' is 1000000000000, larger than any model/],
      [(c) => (c.vocab_size = 4000), /vocab_size is 4000, but 'embeddings\.token_embedding\.weight' .* has 2514 there/],
      [(c) => (c.intermediate_size = 8192), /intermediate_size is 8192, but .*fc1\.weight/],
      [(c) => (c.num_hidden_layers = 1), /num_hidden_layers is 1, but .* also has 'encoder\.layers\.1\./],
    ];
    cases.forEach(([change, message], i) => refusedBeforeAllocation(() => CLIPTextModel.fromFolder(withConfig(tmp, te, `te${i}`, change)), message));
  });

  it('VAE and BLIP: the same check, naming the key', function () {
    refusedBeforeAllocation(() => AutoencoderKL.fromFolder(withConfig(tmp, path.join(TINY_SD, 'vae'), 'vae', (c) => (c.block_out_channels = [8, 16, 16, 2048]))), /block_out_channels\[3\] is 2048, but/);
    refusedBeforeAllocation(() => AutoencoderKL.fromFolder(withConfig(tmp, path.join(TINY_SD, 'vae'), 'vae2', (c) => (c.layers_per_block = 3))), /layers_per_block is 3/);
    const blip = path.join(FIXTURES, 'models', 'tiny-blip');
    refusedBeforeAllocation(
      () => BlipForConditionalGeneration.fromFolder(withConfig(tmp, blip, 'blip', (c) => ((c.text_config as Record<string, unknown>).vocab_size = 1_000_000))),
      /text_config\.vocab_size is 1000000, but 'text_decoder\.bert\.embeddings\.word_embeddings\.weight' .* has 154 there/,
    );
    refusedBeforeAllocation(() => BlipForConditionalGeneration.fromFolder(withConfig(tmp, blip, 'blip2', (c) => ((c.vision_config as Record<string, unknown>).hidden_size = 2 ** 30))), /vision_config: 'hidden_size' is 1073741824, larger than any model/);
  });

  it('the shipped configs still load', function () {
    const unet = UNet2DConditionModel.fromFolder(path.join(TINY_SD, 'unet'));
    unet.disposeAll();
    AutoencoderKL.fromFolder(path.join(TINY_SD, 'vae')).disposeAll();
    CLIPTextModel.fromFolder(path.join(TINY_SD, 'text_encoder')).disposeAll();
    BlipForConditionalGeneration.fromFolder(path.join(FIXTURES, 'models', 'tiny-blip')).disposeAll();
  });
});
