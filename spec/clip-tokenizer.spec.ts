/**
 * The CLIP tokenizer against transformers' CLIPTokenizer (fixtures from tools/reference/clip_outputs.py): the real
 * 49,408-token vocabulary rebuilt from CLIP's merges, >= 300 sentences, several tokenizer configs (SD 1.x, SD 2.x
 * with pad "!", none, an added_tokens_decoder, as transformers 5 saves it), and the tiny-sd tokenizer.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { expect } from 'chai';
import { readTokenizerFolder } from '../lib/io/model-folder.js';
import type { JsonObject } from '../lib/io/json.js';
import {
  CLIP_NUM_MERGES,
  ClipTokenizer,
  bytesToUnicode,
  clipNormalize,
  clipVocabFromMerges,
  parseMerges,
  readOpenClipBpe,
  resolveClipSpecialTokens,
} from '../lib/tokenizers/clip-tokenizer.js';
import { fitToLength, parseSpecialToken } from '../lib/tokenizers/common.js';
import { FIXTURES, ROOT } from './helpers/tensors.js';

interface TokenizerCase {
  tokenizer_config?: JsonObject;
  special_tokens_map?: JsonObject;
  folder?: string;
  pad_id: number;
  max_length: number;
  indices?: number[];
  ids?: number[][];
  ids77: number[][];
}
interface Cases {
  transformers: string;
  merges_sha256: string;
  sentences: string[];
  cases: Record<string, TokenizerCase>;
}

const DIR = path.join(FIXTURES, 'tokenizers', 'clip');
const cases = JSON.parse(fs.readFileSync(path.join(DIR, 'cases.json'), 'utf8')) as Cases;
const mergesText = zlib.gunzipSync(fs.readFileSync(path.join(DIR, 'merges.txt.gz'))).toString('utf8');

/** Compares a tokenizer with one case; returns the number of sentences checked. */
function checkCase(name: string, tok: ClipTokenizer, c: TokenizerCase): number {
  const indices = c.indices ?? cases.sentences.map((_, i) => i);
  expect(c.ids77.length).to.equal(indices.length);
  expect(tok.padTokenId, `${name}: pad id`).to.equal(c.pad_id);
  const wrong: string[] = [];
  indices.forEach((si, k) => {
    const text = cases.sentences[si]!;
    const enc = tok.encode(text);
    const expected = c.ids77[k]!;
    const padded = [...expected, ...new Array<number>(77 - expected.length).fill(c.pad_id)];
    const mask = [...expected.map(() => 1), ...new Array<number>(77 - expected.length).fill(0)];
    if (JSON.stringify(enc.ids) !== JSON.stringify(padded) || JSON.stringify(enc.attentionMask) !== JSON.stringify(mask)) {
      wrong.push(`#${si} ${JSON.stringify(text).slice(0, 60)}: got ${JSON.stringify(enc.ids.slice(0, expected.length + 1))}, expected ${JSON.stringify(expected)}`);
    }
    const full = c.ids?.[k];
    if (full !== undefined && JSON.stringify(tok.encodeUnpadded(text)) !== JSON.stringify(full)) {
      wrong.push(`#${si} ${JSON.stringify(text).slice(0, 60)} (untruncated): got ${JSON.stringify(tok.encodeUnpadded(text))}, expected ${JSON.stringify(full)}`);
    }
  });
  expect(wrong, `${name}: ${wrong.length} of ${indices.length} sentences differ from transformers:\n${wrong.slice(0, 8).join('\n')}`).to.deep.equal([]);
  return indices.length;
}

describe('CLIP tokenizer', function () {
  const merges = parseMerges(mergesText, 'merges.txt.gz');
  const vocab = clipVocabFromMerges(merges);

  it('rebuilds the real CLIP vocabulary (49,408 tokens) from the merges the fixture was made from', function () {
    expect(createHash('sha256').update(mergesText).digest('hex')).to.equal(cases.merges_sha256);
    expect(merges.length).to.equal(CLIP_NUM_MERGES);
    expect(vocab.size).to.equal(49408);
    expect(vocab.get('<|startoftext|>')).to.equal(49406);
    expect(vocab.get('<|endoftext|>')).to.equal(49407);
    expect(vocab.get('!')).to.equal(0);
    expect(vocab.get('a</w>')).to.equal(320);
    const bytes = bytesToUnicode();
    expect(bytes.length).to.equal(256);
    expect(new Set(bytes).size).to.equal(256);
  });

  it(`gives transformers' ids on ${cases.sentences.length} sentences with the real vocabulary, SD 1.x config`, function () {
    expect(cases.sentences.length).to.be.at.least(300);
    const c = cases.cases.sd1!;
    const tok = ClipTokenizer.fromVocabAndMerges(vocab, merges, c.tokenizer_config, c.special_tokens_map);
    expect(tok.modelMaxLength).to.equal(77);
    expect(checkCase('sd1', tok, c)).to.be.at.least(300);
    // The fixture holds prompts longer than 77 tokens, which are truncated keeping the end token.
    expect(c.ids!.filter((ids) => ids.length > 77).length).to.be.at.least(5);
  });

  for (const name of ['sd2', 'none', 'decoder', 'saved']) {
    it(`gives transformers' ids with the ${name} tokenizer config`, function () {
      const c = cases.cases[name]!;
      const tok = ClipTokenizer.fromVocabAndMerges(vocab, merges, c.tokenizer_config, c.special_tokens_map);
      checkCase(name, tok, c);
    });
  }

  it("gives transformers' ids with the tiny-sd tokenizer folder (vocab.json + merges.txt)", function () {
    const c = cases.cases.tiny_sd!;
    const dir = path.join(ROOT, c.folder!);
    const tok = ClipTokenizer.fromFolder(readTokenizerFolder(dir));
    checkCase('tiny_sd', tok, c);
  });

  it('reads a tokenizer.json folder (the SD 2.x-style fixture model, pad "!")', function () {
    const tok = ClipTokenizer.fromFolder(readTokenizerFolder(path.join(FIXTURES, 'models', 'clip-gelu-sd2', 'tokenizer')));
    expect(tok.padTokenId).to.equal(0);
    expect(tok.vocabSize).to.equal(256 * 2 + 300 + 2);
    const enc = tok.encode('a cat!');
    expect(enc.ids[0]).to.equal(tok.bosTokenId);
    expect(enc.ids.slice(-3)).to.deep.equal([0, 0, 0]);
    // "!" is the pad token, a special token matched in the text (as transformers does).
    expect(tok.encodeUnpadded('a cat!').slice(-2)).to.deep.equal([0, tok.eosTokenId]);
  });

  it('reads OpenAI/open_clip BPE files (header line, only the first 48,894 merges)', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-bpe-'));
    try {
      const lines = mergesText.split('\n').filter((l) => l.length > 0 && !l.startsWith('#version'));
      const file = path.join(dir, 'bpe_simple_vocab_16e6.txt.gz');
      fs.writeFileSync(file, zlib.gzipSync(['"bpe_simple_vocab_16e6.txt#version: 0.2', ...lines, 'extra merge', 'more merges', ''].join('\n')));
      const read = readOpenClipBpe(file);
      expect(read.length).to.equal(CLIP_NUM_MERGES);
      expect(read[0]).to.deep.equal(merges[0]);
      const tok = ClipTokenizer.fromOpenClipBpe(file);
      expect(tok.encodeUnpadded('a photo of a cat')).to.deep.equal([49406, 320, 1125, 539, 320, 2368, 49407]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('normalizes as the Rust library: NFC, white space runs, per-character lower case', function () {
    expect(clipNormalize('ΟΔΟΣ')).to.equal('οδοσ'); // no final sigma
    expect(clipNormalize('cafe\u0301')).to.equal('caf\u00e9');
    expect(clipNormalize('a\u00a0\u3000\t\n\u0085b\ufeffc')).to.equal('a b\ufeffc');
  });

  it('truncates keeping the end token and pads to the requested length', function () {
    const tok = ClipTokenizer.fromVocabAndMerges(vocab, merges);
    const long = Array.from({ length: 100 }, () => 'cat').join(' ');
    const enc = tok.encode(long);
    expect(enc.ids.length).to.equal(77);
    expect(enc.truncated).to.equal(true);
    expect(enc.ids[76]).to.equal(49407);
    const short = tok.encode('a cat', { maxLength: 6 });
    expect(short.ids).to.deep.equal([49406, 320, 2368, 49407, 49407, 49407]);
    expect(short.attentionMask).to.deep.equal([1, 1, 1, 1, 0, 0]);
    expect(tok.decode(short.ids)).to.equal('a cat');
    expect(() => fitToLength([1, 2], [0], [9], 1, 0)).to.throw(/no room/);
  });

  it('parses merges strictly and special tokens from configs', function () {
    expect(parseMerges('#version: 0.2\na b\n\nc d\n')).to.deep.equal([['a', 'b'], ['c', 'd']]);
    expect(() => parseMerges('a b\nabc\n', 'm.txt')).to.throw(/m\.txt: line 2/);
    expect(parseSpecialToken('!')).to.deep.include({ content: '!', normalized: false });
    expect(parseSpecialToken({ content: 'x', normalized: true })).to.deep.include({ content: 'x', normalized: true });
    expect(parseSpecialToken(5)).to.equal(undefined);
    const sd1 = resolveClipSpecialTokens(cases.cases.sd1!.tokenizer_config!, cases.cases.sd1!.special_tokens_map);
    expect(sd1.pad).to.equal('<|endoftext|>');
    // The pad token given as a string wins over the normalized end token of the same content (transformers).
    expect(sd1.added.find((t) => t.content === '<|endoftext|>')?.normalized).to.equal(false);
    expect(sd1.added.find((t) => t.content === '<|startoftext|>')?.normalized).to.equal(true);
    expect(resolveClipSpecialTokens({ pad_token: '!' }).pad).to.equal('!');
  });

  it('rejects folders without a CLIP vocabulary and vocabularies without the special tokens', function () {
    expect(() => ClipTokenizer.fromVocabAndMerges({ a: 0 }, [])).to.throw(/not in the vocabulary/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-tok-'));
    try {
      fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify({ model: { type: 'WordPiece', vocab: {} } }));
      expect(() => ClipTokenizer.fromFolder(readTokenizerFolder(dir))).to.throw(/not a BPE tokenizer/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
