/**
 * Where an edit direction comes from on the command line (`edit`, `direction`): `--task a2b`, `--source/--target`
 * with sentence files or a chat endpoint, or a saved `--direction`, and `--direction-scale`.
 */
import { readSentenceFile, chatSentences } from '../editing/sentences.js';
import type { Concept } from '../editing/services.js';
import { Direction, type Pix2PixZero } from '../pix2pix-zero.js';
import { UsageError } from './command.js';
import type { ProgressReporter } from './progress.js';
import { type OptionValues as Values, conceptWords, missingConcept, stringValue as str } from '../options/edit-options.js';

/** The options that say where a direction comes from. */
export const DIRECTION_OPTIONS = {
  task: { type: 'string' },
  source: { type: 'string' },
  target: { type: 'string' },
  'source-sentences': { type: 'string' },
  'target-sentences': { type: 'string' },
  'chat-url': { type: 'string' },
  'chat-model': { type: 'string' },
  direction: { type: 'string' },
  'direction-scale': { type: 'string' },
} as const;

/** The two concepts of a direction from `--task a2b`, `--source/--target` and sentence files or a chat endpoint. */
async function concepts(v: Values): Promise<[Concept, Concept]> {
  const { source, target } = conceptWords(v);
  const chatUrl = str(v, 'chat-url');
  const make = async (word: string | undefined, file: string | undefined, which: 'source' | 'target'): Promise<Concept> => {
    if (file !== undefined) return { name: word ?? file, sentences: readSentenceFile(file) };
    if (word === undefined) throw missingConcept(which);
    if (chatUrl !== undefined) {
      const model = str(v, 'chat-model');
      if (model === undefined) throw new UsageError('--chat-url needs --chat-model');
      return { name: word, sentences: await chatSentences(word, { baseUrl: chatUrl, model, apiKey: process.env.OPENAI_API_KEY }) };
    }
    return word;
  };
  return [await make(source, str(v, 'source-sentences'), 'source'), await make(target, str(v, 'target-sentences'), 'target')];
}

/** The direction the options name (loaded, or computed with progress), scaled by `k` when given. */
export async function directionFrom(p2p: Pix2PixZero, v: Values, progress: ProgressReporter, k: number | undefined): Promise<Direction> {
  const file = str(v, 'direction');
  let d: Direction;
  if (file !== undefined) {
    d = Direction.load(file, p2p.embeddingShape);
  } else {
    const [source, target] = await concepts(v);
    progress.start('direction');
    d = await p2p.direction(source, target, { onProgress: progress.onProgress });
    progress.finish();
  }
  if (k === undefined) return d;
  const scaled = d.scaled(k);
  d.dispose();
  return scaled;
}
