/**
 * Sentence sources for direction discovery: the built-in banks (`assets/sentences/<concept>.txt`), a user's
 * sentence file, or an OpenAI-compatible chat endpoint that writes sentences for any concept (the template
 * generator of `sentence-generator.ts` writes them offline).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readTextFile } from '../io/text-file.js';
import { SENTENCE_BANKS } from '../paths.js';

/** The most sentences read from one file or bank. */
export const MAX_SENTENCES = 100_000;

/**
 * Parses sentence text by the one rule of sentence files (user files, the built-in banks, a chat endpoint's
 * answer):
 * - one sentence a line; lines end at `\n` or `\r\n`;
 * - each line is trimmed of white space at both ends (JavaScript's `trim()`: Unicode white space, and so a
 *   leading byte-order mark too); white space inside a line is kept as it is;
 * - a line that is then empty is skipped, and so is a line that then starts with `#` (a comment); a `#` later in
 *   a line is part of the sentence;
 * - every other line is one sentence, in file order; repeats are kept.
 */
export function parseSentences(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('#'));
}

/**
 * Reads a sentence file by the rule of {@link parseSentences}: a regular UTF-8 file of at most `MAX_TEXT_BYTES`
 * (64 MiB) holding at least one and at most {@link MAX_SENTENCES} sentences. What `--source-sentences`,
 * `--target-sentences` and `embed --file` read.
 * @throws Error naming the file when it cannot be read, has no sentences or too many.
 */
export function readSentenceFile(file: string): string[] {
  const sentences = parseSentences(readTextFile(file, 'sentence file'));
  if (sentences.length === 0) throw new Error(`sentence file ${file} has no sentences (one per line expected)`);
  if (sentences.length > MAX_SENTENCES) throw new Error(`sentence file ${file} has ${sentences.length} sentences, more than ${MAX_SENTENCES}`);
  return sentences;
}

/** The concepts that have a built-in sentence bank. */
export function builtinConcepts(dir = SENTENCE_BANKS): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.txt'))
    .map((f) => f.slice(0, -4))
    .sort();
}

/** Whether `concept` has a built-in sentence bank. */
export function hasBuiltinBank(concept: string, dir = SENTENCE_BANKS): boolean {
  const name = concept.trim().toLowerCase();
  return /^[a-z][a-z0-9 _-]*$/.test(name) && builtinConcepts(dir).includes(name);
}

/**
 * The built-in sentences about `concept`.
 * @throws Error for a concept without a bank, listing the known ones and the other ways to give sentences.
 */
export function builtinSentences(concept: string, dir = SENTENCE_BANKS): string[] {
  const name = concept.trim().toLowerCase();
  if (!hasBuiltinBank(name, dir)) {
    throw new Error(
      `unknown concept '${concept}': built-in sentence banks exist for ${builtinConcepts(dir).join(', ')}; ` +
        'give sentences instead (a file with one sentence per line, generated ones, or a chat endpoint that writes them)',
    );
  }
  return readSentenceFile(path.join(dir, `${name}.txt`));
}

/** Options of {@link chatSentences}. */
export interface ChatSentenceOptions {
  /** Base URL of an OpenAI-compatible API (e.g. `http://localhost:8000/v1`). */
  baseUrl: string;
  model: string;
  apiKey?: string;
  /** How many sentences to ask for (default 100). */
  count?: number;
  /** Request timeout in milliseconds (default 120 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Cleans a model-written sentence as the authors do: list numbering, digits and stray punctuation removed. */
export function cleanSentence(line: string): string {
  return line
    .replace(/^\s*(?:[-*•]|\d+[.)])\s*/, '')
    .replace(/[0-9]/g, '')
    .replace(/["“”]/g, '')
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * Asks an OpenAI-compatible chat endpoint for sentences about `concept` ("Provide many captions for images
 * containing {concept}.", the authors' prompt) and returns the cleaned lines that mention it.
 */
export async function chatSentences(concept: string, options: ChatSentenceOptions): Promise<string[]> {
  const count = options.count ?? 100;
  const url = `${options.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 120_000);
  const signal = options.signal !== undefined ? AbortSignal.any([options.signal, timeout]) : timeout;
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(options.apiKey !== undefined ? { authorization: `Bearer ${options.apiKey}` } : {}) },
      body: JSON.stringify({
        model: options.model,
        temperature: 1,
        messages: [
          { role: 'system', content: 'You write short, varied image captions, one per line, with no numbering.' },
          { role: 'user', content: `Provide ${count} captions for images containing ${concept}.` },
        ],
      }),
      signal,
    });
  } catch (err) {
    throw new Error(`chat endpoint ${url} could not be reached: ${(err as Error).message}`);
  }
  if (!res.ok) throw new Error(`chat endpoint ${url} answered ${res.status} ${res.statusText}`);
  const body = (await res.json()) as { choices?: { message?: { content?: unknown } }[] };
  const content = body.choices?.[0]?.message?.content;
  if (typeof content !== 'string') throw new Error(`chat endpoint ${url} returned no message content`);
  const word = concept.toLowerCase();
  const lines = parseSentences(content)
    .map(cleanSentence)
    .filter((l) => l.length > 0 && l.toLowerCase().includes(word));
  if (lines.length === 0) throw new Error(`chat endpoint ${url} wrote no sentences that mention '${concept}'`);
  return [...new Set(lines)];
}
