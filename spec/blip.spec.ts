/**
 * BLIP captioning model against transformers (fixtures from tools/reference/blip_outputs.py) on the tiny fixture
 * BLIP: BlipProcessor's pixel values, the vision encoder's last_hidden_state, the decoder's logits for the prompt
 * prefix, and loading errors.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { readImage } from '../lib/io/image.js';
import { readBlipFolder } from '../lib/io/model-folder.js';
import { parseBlipConfig } from '../lib/models/blip/config.js';
import { BlipForConditionalGeneration } from '../lib/models/blip/model.js';
import { blipPixelValues, parseBlipImageProcessorConfig } from '../lib/models/blip/processor.js';
import { FIXTURES, expectClose, forEachBackend, readReference } from './helpers/tensors.js';

export const TINY_BLIP = path.join(FIXTURES, 'models', 'tiny-blip');
/** Test images whose RGB decoding matches Pillow's `convert("RGB")` (the RGBA one is composited on white by BLIP). */
export const BLIP_IMAGES = ['rgb', 'grey', 'palette', 'photo'];
export const imageFile = (name: string): string => path.join(FIXTURES, 'images', `${name}.${name === 'photo' ? 'jpg' : 'png'}`);
const TOL = 1e-4;
const measured: string[] = [];

forEachBackend('BLIP model matches transformers', (backend) => {
  let model: BlipForConditionalGeneration;
  let ref: Record<string, tf.Tensor>;
  before(function () {
    model = BlipForConditionalGeneration.fromFolder(TINY_BLIP);
    ref = readReference(path.join('reference', 'blip', 'outputs.safetensors'));
  });
  after(function () {
    model?.disposeAll();
    if (ref !== undefined) for (const t of Object.values(ref)) t.dispose();
  });

  for (const name of BLIP_IMAGES) {
    it(`${name}: pixel values, vision features and next-token logits`, async function () {
      const folder = readBlipFolder(TINY_BLIP);
      const proc = parseBlipImageProcessorConfig(folder.preprocessorConfig);
      const img = await readImage(imageFile(name));
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        const pv = blipPixelValues(img, proc);
        // jimp's JPEG decoder and libjpeg (Pillow) differ by a few levels; PNGs decode identically.
        const pvTol = name === 'photo' ? 0.1 : 1e-6;
        const pvErr = expectClose(tf.transpose(pv, [0, 3, 1, 2]), ref[`pixel_values.${name}`]!, pvTol, 'pixel values');
        const vision = model.encodeImage(tf.transpose(ref[`pixel_values.${name}`]!, [0, 2, 3, 1]) as tf.Tensor4D);
        const visErr = expectClose(vision, ref[`vision.${name}`]!, TOL, 'vision last_hidden_state');
        const ids = tf.cast(tf.expandDims(ref.prefix_ids!, 0), 'int32') as tf.Tensor2D;
        const logits = model.logits(ids, ref[`vision.${name}`]! as tf.Tensor3D);
        const logErr = expectClose(logits, ref[`logits.${name}`]!, TOL, 'logits');
        measured.push(`${backend} ${name}: pixel_values ${pvErr.toExponential(1)}, vision ${visErr.toExponential(1)}, logits ${logErr.toExponential(1)}`);
      });
      expect(tf.memory().numTensors).to.equal(before);
    });
  }

  it('the cached decoder gives the same logits one token at a time', function () {
    tf.tidy(() => {
      const ids = tf.cast(tf.expandDims(ref.prefix_ids!, 0), 'int32') as tf.Tensor2D;
      const feats = ref['vision.rgb']! as tf.Tensor3D;
      let cache = model.textDecoder.startCache(feats);
      const parts: tf.Tensor[] = [];
      for (let i = 0; i < ids.shape[1]; i++) {
        const out = model.textDecoder.step(tf.slice(ids, [0, i], [1, 1]), cache);
        cache = out.cache;
        parts.push(out.logits);
      }
      for (const kv of [...cache.self, ...cache.cross]) tf.dispose([kv.k, kv.v]);
      expectClose(tf.concat(parts, 1), ref['logits.rgb']!, TOL, 'cached logits');
    });
  });
});

describe('BLIP config and weights', function () {
  it('names the field of a bad config', function () {
    expect(() => parseBlipConfig({ model_type: 'blip', vision_config: { hidden_size: 30, num_attention_heads: 4 } }, 'cfg')).to.throw(/cfg: vision_config: 'hidden_size' \(30\)/);
    expect(() => parseBlipConfig({ model_type: 'clip' }, 'cfg')).to.throw(/model_type/);
    expect(() => parseBlipImageProcessorConfig({ resample: 7 }, 'pp')).to.throw(/pp: 'resample'/);
  });
});

after(function () {
  if (measured.length > 0) console.log(`      BLIP parity (max relative error):\n        ${measured.join('\n        ')}`);
});
