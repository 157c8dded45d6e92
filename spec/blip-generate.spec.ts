/**
 * BLIP caption generation against transformers' generate() (fixtures from tools/reference/blip_outputs.py): greedy
 * and beam search with min_length, max_new_tokens, repetition_penalty, length_penalty and early stopping, with and
 * without the text prefix, on the tiny BLIP and on its copy whose end token is likelier (so that captions end early);
 * and the BERT tokenizer's ids and decodings.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { readBlipFolder } from '../lib/io/model-folder.js';
import { type GenerateOptions, generateCaptionIds, topK } from '../lib/models/blip/generate.js';
import { BlipForConditionalGeneration } from '../lib/models/blip/model.js';
import { BertTokenizer } from '../lib/tokenizers/bert-tokenizer.js';
import { FIXTURES, forEachBackend, readReference } from './helpers/tensors.js';

const REF = path.join(FIXTURES, 'reference', 'blip');
const TINY_BLIP = path.join(FIXTURES, 'models', 'tiny-blip');
interface Result { ids: number[]; caption: string }
interface Gen {
  prompt: string;
  prompt_ids: number[];
  cases: Record<string, { num_beams: number; max_new_tokens: number; min_length?: number; repetition_penalty?: number; length_penalty?: number; early_stopping?: boolean }>;
  results: Record<string, Record<string, Result>>;
  eos: Record<string, Record<string, Result>>;
}
const GEN = JSON.parse(fs.readFileSync(path.join(REF, 'generate.json'), 'utf8')) as Gen;

function options(c: Gen['cases'][string]): GenerateOptions {
  return { numBeams: c.num_beams, maxNewTokens: c.max_new_tokens, minLength: c.min_length, repetitionPenalty: c.repetition_penalty, lengthPenalty: c.length_penalty, earlyStopping: c.early_stopping };
}

forEachBackend('BLIP generate() matches transformers', () => {
  let tokenizer: BertTokenizer;
  let ref: Record<string, tf.Tensor>;
  before(function () {
    tokenizer = BertTokenizer.fromFiles(readBlipFolder(TINY_BLIP).tokenizer);
    ref = readReference(path.join('reference', 'blip', 'outputs.safetensors'));
  });
  after(function () {
    if (ref !== undefined) for (const t of Object.values(ref)) t.dispose();
  });

  for (const [modelName, dir, results] of [
    ['tiny-blip', TINY_BLIP, GEN.results],
    ['tiny-blip-eos', path.join(REF, 'tiny-blip-eos'), GEN.eos],
  ] as const) {
    describe(modelName, function () {
      let model: BlipForConditionalGeneration;
      before(function () {
        model = BlipForConditionalGeneration.fromFolder(dir);
      });
      after(function () {
        model?.disposeAll();
      });
      for (const [image, cases] of Object.entries(results)) {
        it(`${image}: ${Object.keys(cases).length} cases, ids identical, captions decoded alike`, function () {
          const prompt = tokenizer.encode(GEN.prompt);
          expect(prompt).to.deep.equal(GEN.prompt_ids);
          const withPrompt = [model.config.text.bosTokenId, ...prompt.slice(1, -1)];
          const before = tf.memory().numTensors;
          const feats = tf.tidy(() => model.encodeImage(tf.transpose(ref[`pixel_values.${image}`]!, [0, 2, 3, 1]) as tf.Tensor4D));
          for (const [key, expected] of Object.entries(cases)) {
            const [caseName, p] = key.split('.');
            const ids = generateCaptionIds(model, feats, p === 'prompt' ? withPrompt : [model.config.text.bosTokenId], options(GEN.cases[caseName!]!));
            expect(ids, key).to.deep.equal(expected.ids);
            expect(tokenizer.decode(ids), key).to.equal(expected.caption);
          }
          feats.dispose();
          expect(tf.memory().numTensors).to.equal(before);
        });
      }
    });
  }
});

describe('BERT tokenizer matches transformers', function () {
  const cases = JSON.parse(fs.readFileSync(path.join(REF, 'tokenizer.json'), 'utf8')) as { text: string; ids: number[]; decoded: string }[];
  for (const [what, make] of [
    ['tokenizer.json', () => BertTokenizer.fromFiles(readBlipFolder(TINY_BLIP).tokenizer)],
    ['vocab.txt', () => BertTokenizer.fromVocab(path.join(TINY_BLIP, 'vocab.txt'), readBlipFolder(TINY_BLIP).tokenizer.config)],
  ] as const) {
    it(`from ${what}: ids and decodings of ${cases.length} sentences`, function () {
      const tok = make();
      for (const c of cases) {
        expect(tok.encode(c.text), c.text).to.deep.equal(c.ids);
        expect(tok.decode(c.ids), c.text).to.equal(c.decoded);
      }
    });
  }
});

describe("beam search's topK", function () {
  it('is a stable descending sort, cut to n, on random values with many ties', function () {
    let seed = 7;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (const n of [1, 3, 6, 50]) {
      const values = Array.from({ length: 500 }, () => Math.floor(rand() * 40) - (rand() < 0.05 ? Infinity : 0));
      const sorted = values.map((_, i) => i).sort((a, b) => values[b]! - values[a]! || a - b);
      expect(topK(values, n)).to.deep.equal(sorted.slice(0, n));
    }
    expect(topK([1, 2], 5)).to.deep.equal([1, 0]);
    expect(topK([NaN, 1, NaN, 0], 3)).to.deep.equal([1, 3, 0]);
  });
});
