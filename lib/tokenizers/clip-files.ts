/**
 * The files a CLIP BPE tokenizer is read from: `merges.txt`, `vocab.json`, a `tokenizer.json`'s BPE model, and
 * OpenAI/open_clip's `bpe_simple_vocab_16e6.txt.gz`. Each parser checks what it reads and names the file and the
 * line or entry that is wrong.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { type JsonObject, isJsonObject } from '../io/json.js';
import { CLIP_NUM_MERGES, type Merge } from './clip-vocab.js';

/**
 * Parses a `merges.txt` as the Rust tokenizers library reads it: lines starting with `#version` are skipped,
 * every other non-empty line is two symbols separated by one space.
 * @throws Error naming `source` and the line of the first malformed merge.
 */
export function parseMerges(text: string, source = 'merges.txt'): Merge[] {
  const merges: Merge[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.length === 0 || line.startsWith('#version')) return;
    const parts = line.split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw new Error(`${source}: line ${i + 1} is not a merge of two symbols separated by one space: ${JSON.stringify(line.slice(0, 80))}`);
    }
    merges.push([parts[0]!, parts[1]!]);
  });
  return merges;
}

/**
 * Reads the merges of OpenAI/open_clip's `bpe_simple_vocab_16e6.txt.gz` as CLIP does: the first line is a
 * header, the next {@link CLIP_NUM_MERGES} lines are used, each split on white space.
 */
export function readOpenClipBpe(file: string): Merge[] {
  let text: string;
  try {
    const raw = fs.readFileSync(file);
    text = (file.endsWith('.gz') ? zlib.gunzipSync(raw) : raw).toString('utf8');
  } catch (err) {
    throw new Error(`cannot read the CLIP BPE file ${file}: ${(err as Error).message}`);
  }
  const lines = text.split('\n').slice(1, CLIP_NUM_MERGES + 1);
  return lines.map((line, i) => {
    const parts = line.split(/\s+/).filter((p) => p.length > 0);
    if (parts.length !== 2) throw new Error(`${file}: line ${i + 2} is not a merge of two symbols`);
    return [parts[0]!, parts[1]!] as const;
  });
}

/** A vocabulary object (`vocab.json`, or a `tokenizer.json` model's `vocab`): token -> non-negative integer id. */
export function vocabFromJson(json: JsonObject, source: string): Map<string, number> {
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(json)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new Error(`${source}: token ${JSON.stringify(token)} has id ${JSON.stringify(id)}, expected a non-negative integer`);
    }
    vocab.set(token, id);
  }
  if (vocab.size === 0) throw new Error(`${source}: the vocabulary is empty`);
  return vocab;
}

/** The vocabulary and merges of a `tokenizer.json` whose model is BPE. */
export function bpeFromTokenizerJson(json: JsonObject, source: string): { vocab: Map<string, number>; merges: Merge[] } {
  const model = json.model;
  if (!isJsonObject(model) || (model.type !== undefined && model.type !== 'BPE') || !isJsonObject(model.vocab) || !Array.isArray(model.merges)) {
    throw new Error(`${source}: not a BPE tokenizer (expected model.type "BPE" with a vocab object and a merges list)`);
  }
  const merges = model.merges.map((m, i): Merge => {
    const parts = typeof m === 'string' ? m.split(' ') : Array.isArray(m) ? m : [];
    if (parts.length !== 2 || typeof parts[0] !== 'string' || typeof parts[1] !== 'string') {
      throw new Error(`${source}: merge ${i} is not two symbols: ${JSON.stringify(m)}`);
    }
    return [parts[0], parts[1]];
  });
  return { vocab: vocabFromJson(model.vocab, source), merges };
}
