import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import {
  findWeights,
  readBlipFolder,
  readComponentFolder,
  readStableDiffusionFolder,
  readTokenizerFolder,
} from '../lib/io/model-folder.js';
import { writeSafetensors } from '../lib/io/safetensors.js';
import { ShardedSafetensorsWeights } from '../lib/io/weights.js';
import { loadWeights } from '../lib/models/load-weights.js';
import { Conv2d } from '../lib/models/layers/conv2d.js';
import { Linear } from '../lib/models/layers/linear.js';
import { Module } from '../lib/models/layers/module.js';
import { FIXTURES, TINY_SD, forEachBackend } from './helpers/tensors.js';

/** A two-layer block with PyTorch names `proj.weight`, `proj.bias`, `conv.weight`, `conv.bias`. */
class Toy extends Module {
  readonly proj = this.child('proj', new Linear(3, 2));
  readonly conv = this.child('conv', new Conv2d(2, 4, 3, 1, 1));
  forward(x: tf.Tensor): tf.Tensor {
    return this.conv.forward(this.proj.forward(x));
  }
}

const f32 = (n: number, base = 0): Float32Array => Float32Array.from({ length: n }, (_, i) => base + i / 10);

function toyWeights(overrides: Record<string, { shape: number[] } | null> = {}) {
  const tensors: Record<string, { dtype: 'F32' | 'F16'; shape: number[]; data: Float32Array }> = {
    'proj.weight': { dtype: 'F32', shape: [2, 3], data: f32(6) },
    'proj.bias': { dtype: 'F16', shape: [2], data: f32(2, 1) },
    'conv.weight': { dtype: 'F32', shape: [4, 2, 3, 3], data: f32(72) },
    'conv.bias': { dtype: 'F32', shape: [4], data: f32(4) },
  };
  for (const [name, o] of Object.entries(overrides)) {
    if (o === null) delete tensors[name];
    else tensors[name] = { dtype: 'F32', shape: o.shape, data: f32(o.shape.reduce((a, b) => a * b, 1)) };
  }
  return tensors;
}

function makeComponent(dir: string, config: object = { _class_name: 'Toy' }, weights = toyWeights()): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  writeSafetensors(path.join(dir, 'diffusion_pytorch_model.safetensors'), weights);
  return dir;
}

describe('model folders', function () {
  let dir: string;
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-folders-'));
  });
  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('the shipped tiny Stable Diffusion pipeline (made by diffusers save_pretrained)', function () {
    it('resolves every component', function () {
      if (!fs.existsSync(TINY_SD)) this.skip();
      const sd = readStableDiffusionFolder(TINY_SD);
      expect(sd.unet.config._class_name).to.equal('UNet2DConditionModel');
      expect(sd.vae.config._class_name).to.equal('AutoencoderKL');
      expect(sd.textEncoder.config.architectures).to.deep.equal(['CLIPTextModel']);
      expect(path.basename(sd.unet.weightsPath)).to.equal('diffusion_pytorch_model.safetensors');
      expect(path.basename(sd.textEncoder.weightsPath)).to.equal('model.safetensors');
      expect(sd.tokenizer.vocabJson ?? sd.tokenizer.tokenizerJson).to.be.a('string');
      expect(sd.schedulerConfig._class_name).to.be.a('string');
      const w = sd.unet.openWeights();
      try {
        expect(w.names().length).to.be.greaterThan(50);
        expect(w.info('conv_in.weight').shape[1]).to.equal(sd.unet.config.in_channels);
      } finally {
        w.close();
      }
    });
    it('resolves the tiny BLIP folder', function () {
      const blipDir = path.join(FIXTURES, 'models', 'tiny-blip');
      if (!fs.existsSync(blipDir)) this.skip();
      const blip = readBlipFolder(blipDir);
      expect(blip.model.config.model_type).to.equal('blip');
      expect(blip.preprocessorConfig.image_mean).to.be.an('array');
    });
  });

  describe('missing or mismatched files give clear errors', function () {
    it('a folder that does not exist', function () {
      expect(() => readStableDiffusionFolder(path.join(dir, 'nope'))).to.throw(/Stable Diffusion model folder not found: .*nope/);
    });
    it('a folder without model_index.json', function () {
      const d = path.join(dir, 'no-index');
      fs.mkdirSync(d);
      expect(() => readStableDiffusionFolder(d)).to.throw(/model_index.json.*not found/);
    });
    it('a model index without a component', function () {
      const d = path.join(dir, 'no-vae');
      fs.mkdirSync(d);
      fs.writeFileSync(path.join(d, 'model_index.json'), JSON.stringify({ unet: ['diffusers', 'UNet2DConditionModel'] }));
      expect(() => readStableDiffusionFolder(d)).to.throw(/does not list the component 'vae'/);
    });
    it('a component folder that is missing', function () {
      const d = path.join(dir, 'missing-unet');
      fs.mkdirSync(d);
      fs.writeFileSync(
        path.join(d, 'model_index.json'),
        JSON.stringify({ unet: [], vae: [], text_encoder: [], tokenizer: [], scheduler: [] }),
      );
      expect(() => readStableDiffusionFolder(d)).to.throw(/UNet folder not found: .*missing-unet\/unet/);
    });
    it('a broken config.json', function () {
      const d = path.join(dir, 'bad-config');
      fs.mkdirSync(d);
      fs.writeFileSync(path.join(d, 'config.json'), '{"in_channels": 4,');
      expect(() => readComponentFolder(d, 'UNet')).to.throw(/UNet config .*config.json is not valid JSON/);
    });
    it('PyTorch pickles only', function () {
      const d = path.join(dir, 'pickle');
      fs.mkdirSync(d);
      fs.writeFileSync(path.join(d, 'config.json'), '{}');
      fs.writeFileSync(path.join(d, 'diffusion_pytorch_model.bin'), 'x');
      expect(() => readComponentFolder(d, 'VAE')).to.throw(/VAE weights not found.*PyTorch pickle weights \(diffusion_pytorch_model.bin\).*safe_serialization=True/);
    });
    it('fp16 variants only: read as that variant (spec/variant.spec.ts covers variants)', function () {
      const d = path.join(dir, 'fp16');
      fs.mkdirSync(d);
      fs.writeFileSync(path.join(d, 'config.json'), '{}');
      fs.writeFileSync(path.join(d, 'model.fp16.safetensors'), 'x');
      expect(findWeights(d, 'text encoder')).to.equal(path.join(d, 'model.fp16.safetensors'));
      expect(() => findWeights(d, 'text encoder', 'bf16')).to.throw(/text encoder weights of variant 'bf16' not found .* it has the variants fp16/);
    });
    it('a tokenizer folder without a vocabulary', function () {
      const d = path.join(dir, 'tok');
      fs.mkdirSync(d);
      fs.writeFileSync(path.join(d, 'merges.txt'), '#version: 0.2\n');
      expect(() => readTokenizerFolder(d)).to.throw(/has no vocabulary: expected tokenizer.json, or vocab.json \+ merges.txt/);
    });
    it('a folder that is not a BLIP model', function () {
      const d = makeComponent(path.join(dir, 'not-blip'), { model_type: 'clip_text_model' });
      expect(() => readBlipFolder(d)).to.throw(/is not a BLIP captioning model \(model_type "clip_text_model"/);
    });
  });

  describe('sharded checkpoints', function () {
    function shard(d: string, index: object, shards: Record<string, Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>>): string {
      fs.mkdirSync(d, { recursive: true });
      for (const [name, tensors] of Object.entries(shards)) writeSafetensors(path.join(d, name), tensors);
      const file = path.join(d, 'model.safetensors.index.json');
      fs.writeFileSync(file, JSON.stringify(index));
      return file;
    }
    const a = { dtype: 'F32' as const, shape: [2], data: f32(2) };
    it('reads tensors across shards', function () {
      const file = shard(path.join(dir, 'sharded'), { weight_map: { a: 's1.safetensors', b: 's2.safetensors' } }, { 's1.safetensors': { a }, 's2.safetensors': { b: a } });
      const w = new ShardedSafetensorsWeights(file);
      try {
        expect(w.names().sort()).to.deep.equal(['a', 'b']);
        expect(Array.from(w.read('b').data)).to.deep.equal(Array.from(a.data));
      } finally {
        w.close();
      }
    });
    it('a missing shard', function () {
      const file = shard(path.join(dir, 'sharded-missing'), { weight_map: { a: 's1.safetensors', b: 's9.safetensors' } }, { 's1.safetensors': { a } });
      expect(() => new ShardedSafetensorsWeights(file)).to.throw(/shard s9.safetensors \(holding 'b'\) is missing/);
    });
    it('a tensor that is not in its shard', function () {
      const file = shard(path.join(dir, 'sharded-wrong'), { weight_map: { a: 's1.safetensors', b: 's1.safetensors' } }, { 's1.safetensors': { a } });
      expect(() => new ShardedSafetensorsWeights(file)).to.throw(/tensor 'b' is not in its shard s1.safetensors/);
    });
    it('a shard path that escapes the folder', function () {
      const file = shard(path.join(dir, 'sharded-escape'), { weight_map: { a: '../../etc/passwd' } }, {});
      expect(() => new ShardedSafetensorsWeights(file)).to.throw(/names an invalid shard/);
    });
    it('an index without a weight_map', function () {
      const file = shard(path.join(dir, 'sharded-nomap'), { metadata: {} }, {});
      expect(() => new ShardedSafetensorsWeights(file)).to.throw(/has no 'weight_map' object/);
    });
  });

  forEachBackend('loading weights into a block tree', function () {
    it('converts layouts and dtypes (Linear [out,in] -> [in,out], Conv2d OIHW -> HWIO, F16 -> F32)', function () {
      const d = makeComponent(path.join(dir, `toy-ok-${tf.getBackend()}`));
      const toy = new Toy();
      const w = readComponentFolder(d, 'toy').openWeights();
      try {
        loadWeights(toy, w);
      } finally {
        w.close();
      }
      expect(toy.proj.kernel.read().shape).to.deep.equal([3, 2]);
      expect(Array.from(toy.proj.kernel.read().dataSync()).map((v) => +v.toFixed(4))).to.deep.equal([0, 0.3, 0.1, 0.4, 0.2, 0.5]);
      expect(Array.from(toy.proj.bias!.read().dataSync())).to.deep.equal([1, 1.099609375]); // 1.1 in float16
      const k = toy.conv.kernel.read();
      expect(k.shape).to.deep.equal([3, 3, 2, 4]);
      // PyTorch [o=1, i=0, h=2, w=1] is element 1*18 + 0*9 + 2*3 + 1 = 25 -> 2.5; ours is [h=2, w=1, i=0, o=1].
      expect(+(k.arraySync() as number[][][][])[2]![1]![0]![1]!.toFixed(4)).to.equal(2.5);
      toy.disposeAll();
    });
    it('lists every missing, unexpected and mis-shaped tensor, and changes nothing', function () {
      const d = makeComponent(
        path.join(dir, `toy-bad-${tf.getBackend()}`),
        {},
        toyWeights({ 'conv.bias': null, 'proj.weight': { shape: [3, 2] }, 'extra.weight': { shape: [1] } }),
      );
      const toy = new Toy();
      const w = readComponentFolder(d, 'toy').openWeights();
      try {
        expect(() => loadWeights(toy, w)).to.throw(/do not match the Toy.*3 problems[\s\S]*'proj.weight' has shape \[3, 2\], expected \[2, 3\][\s\S]*missing tensor 'conv.bias'[\s\S]*unexpected tensor 'extra.weight'/);
      } finally {
        w.close();
      }
      expect(Array.from(toy.proj.bias!.read().dataSync())).to.deep.equal([0, 0]);
      toy.disposeAll();
    });
    it('applies a weight-name map and ignores buffers it names', function () {
      const tensors = Object.fromEntries(Object.entries(toyWeights()).map(([k, v]) => [`model.${k}`, v]));
      const d = makeComponent(path.join(dir, `toy-map-${tf.getBackend()}`), {}, { ...tensors, 'model.position_ids': { dtype: 'F32', shape: [3], data: f32(3) } });
      const toy = new Toy();
      const w = readComponentFolder(d, 'toy').openWeights();
      try {
        loadWeights(toy, w, { toCheckpoint: (n) => `model.${n}`, ignore: (n) => n.endsWith('position_ids') });
      } finally {
        w.close();
      }
      expect(toy.conv.bias!.read().dataSync()[3]).to.be.closeTo(0.3, 1e-6);
      toy.disposeAll();
    });
    it('names weights as PyTorch state dicts do', function () {
      const toy = new Toy();
      expect([...toy.namedWeights().keys()]).to.deep.equal(['proj.weight', 'proj.bias', 'conv.weight', 'conv.bias']);
      expect(toy.parameterCount()).to.equal(6 + 2 + 72 + 4);
      toy.disposeAll();
    });
  });
});
