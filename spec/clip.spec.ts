/**
 * CLIPTextModel against transformers (fixtures from tools/reference/clip_outputs.py) on two configurations: the
 * tiny-sd text encoder (quick_gelu, transformers 5 tensor names, legacy eos_token_id handling as its config says)
 * and a second one (gelu, 3 heads, 80 positions, `text_model.`-prefixed names with the position_ids buffer,
 * pooled at the first end token, SD 2.x tokenizer). last_hidden_state, pooled output and diffusers' clip_skip.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../lib/io/safetensors.js';
import { parseClipTextConfig } from '../lib/models/clip-text/config.js';
import { CLIPTextModel, causalMask, endTokenPositions } from '../lib/models/clip-text/model.js';
import { ClipTextEncoder } from '../lib/models/clip-text/text-encoder.js';
import { clipTextWeightMap } from '../lib/models/clip-text/weights.js';
import { FIXTURES, ROOT, expectClose, forEachBackend, readReference } from './helpers/tensors.js';

/** The reference models: name -> the folder the fixture was made from. */
const MODELS: Record<string, string> = {
  tiny_sd: path.join(ROOT, 'converted_models', 'tiny-sd'),
  gelu_sd2: path.join(FIXTURES, 'models', 'clip-gelu-sd2'),
};
const PROMPTS = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'reference', 'clip', 'prompts.json'), 'utf8')) as string[];
const TOL = 1e-4;

/** Largest errors seen, per backend and model (printed at the end, for the record). */
const measured: string[] = [];

forEachBackend('CLIP text encoder matches transformers', (backend) => {
  for (const [name, dir] of Object.entries(MODELS)) {
    describe(name, function () {
      let encoder: ClipTextEncoder;
      let ref: Record<string, tf.Tensor>;

      before(function () {
        encoder = ClipTextEncoder.fromFolder(dir);
        ref = readReference(path.join('reference', 'clip', `${name}.safetensors`));
      });
      after(function () {
        encoder?.dispose();
        if (ref !== undefined) for (const t of Object.values(ref)) t.dispose();
      });

      it(`tokenizes the ${PROMPTS.length} prompts as transformers`, function () {
        const ids = encoder.tokenize(PROMPTS);
        expect(Array.from(ids.dataSync())).to.deep.equal(Array.from(ref.input_ids!.dataSync()));
        ids.dispose();
      });

      it(`last_hidden_state and pooled output within ${TOL} (relative) for ${PROMPTS.length} prompts`, function () {
        expect(PROMPTS.length).to.be.at.least(20);
        const ids = tf.cast(ref.input_ids!, 'int32') as tf.Tensor2D;
        const out = encoder.model.encode(ids);
        const e1 = expectClose(out.lastHiddenState, ref.last_hidden_state!, TOL, 'last_hidden_state');
        const e2 = expectClose(out.pooledOutput!, ref.pooler_output!, TOL, 'pooler_output');
        measured.push(`${backend} ${name}: last_hidden_state ${e1.toExponential(2)}, pooled ${e2.toExponential(2)}`);
        tf.dispose([ids, out.lastHiddenState, out.pooledOutput!]);
      });

      it("clip skip as diffusers' encode_prompt (hidden_states[-(k+1)] then final_layer_norm)", function () {
        const skips = Object.keys(ref).filter((k) => k.startsWith('clip_skip_'));
        expect(skips.length).to.be.at.least(1);
        for (const key of skips) {
          const k = Number(key.slice('clip_skip_'.length));
          const expected = ref[key]!;
          const ids = tf.tidy(() => tf.cast(tf.slice(ref.input_ids!, [0, 0], [expected.shape[0]!, -1]), 'int32')) as tf.Tensor2D;
          for (const pooled of [false, true]) {
            const out = encoder.model.encode(ids, { clipSkip: k, pooled });
            const err = expectClose(out.lastHiddenState, expected, TOL, `${key} (pooled ${pooled})`);
            if (pooled) measured.push(`${backend} ${name}: ${key} ${err.toExponential(2)}`);
            tf.dispose([out.lastHiddenState, out.pooledOutput ?? []]);
          }
          ids.dispose();
        }
      });

      it('frees every intermediate tensor', function () {
        const ids = tf.cast(tf.slice(ref.input_ids!, [0, 0], [3, -1]), 'int32') as tf.Tensor2D;
        const run = (): void => {
          const out = encoder.model.encode(ids, { clipSkip: 1 });
          tf.dispose([out.lastHiddenState, out.pooledOutput!]);
        };
        run();
        const before = tf.memory().numTensors;
        run();
        run();
        expect(tf.memory().numTensors).to.equal(before);
        ids.dispose();
      });
    });
  }
});

describe('CLIP text encoder: config, weights and inputs', function () {
  after(function () {
    if (measured.length > 0) console.log(`      measured: ${measured.join('; ')}`);
  });

  it('reads the config, with transformers defaults, and rejects unsupported values by name', function () {
    const c = parseClipTextConfig({ hidden_size: 24, num_attention_heads: 3, hidden_act: 'gelu' });
    expect(c).to.include({ vocabSize: 49408, maxPositionEmbeddings: 77, eosTokenId: 49407, layerNormEps: 1e-5, numHiddenLayers: 12 });
    expect(parseClipTextConfig({ eos_token_id: [2] }).eosTokenId).to.equal(2);
    expect(() => parseClipTextConfig({ hidden_size: 10, num_attention_heads: 3 }, 'cfg')).to.throw(/cfg: 'hidden_size' \(10\) is not a multiple/);
    expect(() => parseClipTextConfig({ hidden_act: 'swiglu' }, 'cfg')).to.throw(/hidden_act: unsupported activation 'swiglu'/);
    expect(() => parseClipTextConfig({ model_type: 'bert' }, 'cfg')).to.throw(/model_type/);
    expect(() => parseClipTextConfig({ model_type: 'clip', text_config: {} }, 'cfg')).to.throw(/full CLIP model config/);
    expect(() => parseClipTextConfig({ num_hidden_layers: 0 }, 'cfg')).to.throw(/'num_hidden_layers' must be an integer >= 1/);
    expect(() => parseClipTextConfig({ architectures: ['UNet2DConditionModel'] }, 'cfg')).to.throw(/architectures/);
    expect(() => parseClipTextConfig({ position_embedding_type: 'rotary' }, 'cfg')).to.throw(/position_embedding_type/);
  });

  it('maps names with and without the text_model. prefix and ignores the position_ids buffer', function () {
    const prefixed = clipTextWeightMap(['text_model.final_layer_norm.weight']);
    expect(prefixed.toCheckpoint!('final_layer_norm.weight')).to.equal('text_model.final_layer_norm.weight');
    expect(prefixed.ignore!('text_model.embeddings.position_ids')).to.equal(true);
    const plain = clipTextWeightMap(['final_layer_norm.weight']);
    expect(plain.toCheckpoint!('final_layer_norm.weight')).to.equal('final_layer_norm.weight');
    expect(plain.ignore!('embeddings.position_ids')).to.equal(true);
    expect(plain.ignore!('encoder.layers.0.mlp.fc1.weight')).to.equal(false);
  });

  it('finds the pooled position as transformers (legacy argmax for eos_token_id 2, else the first end token)', function () {
    const ids = [49406, 320, 49407, 49407, 1, 9, 3, 9];
    expect(endTokenPositions(ids, 2, 4, 2)).to.deep.equal([2, 1]); // first position of the largest id
    expect(endTokenPositions(ids, 2, 4, 3)).to.deep.equal([0, 2]); // first end token; none: 0, as torch's argmax
    const mask = causalMask(3);
    expect(Array.from(mask.dataSync())).to.deep.equal([0, -1e9, -1e9, 0, 0, -1e9, 0, 0, 0]);
    mask.dispose();
  });

  it('fails to load weights that do not match the config, listing the problems', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-bad-'));
    try {
      const src = path.join(FIXTURES, 'models', 'clip-gelu-sd2', 'text_encoder');
      const config = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8')) as Record<string, unknown>;
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: 2 }));
      fs.copyFileSync(path.join(src, 'model.safetensors'), path.join(dir, 'model.safetensors'));
      const before = tf.memory().numTensors;
      // The config is checked against the header shapes before the model is built, naming the key (issue 18).
      expect(() => CLIPTextModel.fromFolder(dir)).to.throw(/num_hidden_layers is 2, but .* also has 'text_model\.encoder\.layers\.2\./);
      expect(tf.memory().numTensors).to.equal(before);
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, hidden_size: 48, num_attention_heads: 3 }));
      expect(() => CLIPTextModel.fromFolder(dir)).to.throw(/hidden_size is 48, but 'text_model\.embeddings\.token_embedding\.weight' .* has 24 there/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads F16 checkpoints (converted to float32 on load)', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-f16-'));
    try {
      const src = path.join(FIXTURES, 'models', 'clip-gelu-sd2', 'text_encoder');
      fs.copyFileSync(path.join(src, 'config.json'), path.join(dir, 'config.json'));
      const f = SafetensorsFile.open(path.join(src, 'model.safetensors'));
      const tensors: Record<string, TensorToWrite> = {};
      for (const n of f.names()) {
        const t = f.read(n);
        tensors[n] = { dtype: t.dtype === 'float32' ? 'F16' : 'I64', shape: t.shape, data: t.data };
      }
      f.close();
      writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
      const model = CLIPTextModel.fromFolder(dir);
      expect(model).to.be.instanceOf(CLIPTextModel);
      expect(model.parameterCount()).to.be.greaterThan(10000);
      model.disposeAll();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects bad inputs: clip skip out of range, sequences longer than the positions, missing folders', function () {
    const encoder = ClipTextEncoder.fromFolder(MODELS.gelu_sd2!);
    try {
      const ids = encoder.tokenize(['a cat']);
      expect(() => encoder.model.encode(ids, { clipSkip: 4 })).to.throw(/clipSkip must be an integer in \[0, 3\]/);
      const long = tf.zeros([1, 81], 'int32') as tf.Tensor2D;
      expect(() => encoder.model.encode(long)).to.throw(/exceeds max_position_embeddings \(80\)/);
      tf.dispose([ids, long]);
    } finally {
      encoder.dispose();
    }
    expect(() => ClipTextEncoder.fromFolder(path.join(FIXTURES, 'models', 'no-such-model'))).to.throw(/model folder not found/);
    expect(() => ClipTextEncoder.fromFolder(FIXTURES)).to.throw(/no text_encoder\/ and no tokenizer\//);
  });
});
