/**
 * BLIP's BERT WordPiece tokenizer against transformers on the real uncased BERT vocabulary (30,522 tokens, BLIP's
 * "[DEC]"/"[ENC]" added after it): ids and decodings of every sentence of spec/fixtures/tokenizers/bert/cases.json
 * (tools/reference/bert_tokenizer_outputs.py), from tokenizer.json and from vocab.txt + tokenizer_config.json.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { expect } from 'chai';
import { readTokenizerFolder } from '../lib/io/model-folder.js';
import { BertTokenizer } from '../lib/tokenizers/bert-tokenizer.js';
import { FIXTURES } from './helpers/tensors.js';

const DIR = path.join(FIXTURES, 'tokenizers', 'bert');
const REF = JSON.parse(fs.readFileSync(path.join(DIR, 'cases.json'), 'utf8')) as {
  vocab_size: number;
  cases: { text: string; ids: number[]; decoded: string }[];
};

/** A tokenizer folder holding tokenizer_config.json and one gunzipped file (vocab.txt or tokenizer.json). */
function folderWith(tmp: string, file: 'vocab.txt' | 'tokenizer.json'): string {
  const dir = path.join(tmp, file);
  fs.mkdirSync(dir);
  fs.copyFileSync(path.join(DIR, 'tokenizer_config.json'), path.join(dir, 'tokenizer_config.json'));
  fs.writeFileSync(path.join(dir, file), gunzipSync(fs.readFileSync(path.join(DIR, `${file}.gz`))));
  return dir;
}

describe('BERT tokenizer on the real uncased vocabulary', function () {
  let tmp: string;
  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bert-tok-'));
  });
  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it(`has >= 300 reference sentences over ${REF.vocab_size} tokens`, function () {
    expect(REF.vocab_size).to.equal(30522);
    expect(REF.cases.length).to.be.at.least(300);
    // Sentences that reach past the plain vocabulary: unknown characters and the added [DEC] token.
    expect(REF.cases.some((c) => c.ids.includes(100))).to.equal(true);
    expect(REF.cases.some((c) => c.ids.includes(30522))).to.equal(true);
  });

  for (const file of ['tokenizer.json', 'vocab.txt'] as const) {
    it(`from ${file}: ids and decodings identical to transformers`, function () {
      const files = readTokenizerFolder(folderWith(tmp, file));
      const tok = file === 'vocab.txt' ? BertTokenizer.fromVocab(files.vocabTxt!, files.config) : BertTokenizer.fromFiles(files);
      let mismatches = 0;
      for (const c of REF.cases) {
        const ids = tok.encode(c.text);
        const decoded = tok.decode(c.ids);
        if (JSON.stringify(ids) !== JSON.stringify(c.ids) || decoded !== c.decoded) {
          mismatches++;
          expect(ids, JSON.stringify(c.text)).to.deep.equal(c.ids);
          expect(decoded, JSON.stringify(c.text)).to.equal(c.decoded);
        }
      }
      expect(mismatches).to.equal(0);
    });
  }
});
