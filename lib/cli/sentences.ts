/**
 * `pix2pix-zero sentences <concept> [--count N] [--seed S]`: prints a bank of generated sentences about a concept,
 * one a line (every one contains it), to read, edit and give back with `--source-sentences`/`--target-sentences`.
 * `--builtin` prints the shipped bank instead.
 */
import { DEFAULT_GENERATED_SENTENCES, MAX_GENERATED_SENTENCES, generateSentences } from '../editing/sentence-generator.js';
import { builtinConcepts, builtinSentences } from '../editing/sentences.js';
import { type Command, EXIT, UsageError, intOption } from './command.js';
import { defineCommand } from './run-command.js';

/** `pix2pix-zero sentences`. */
export const sentencesCommand: Command = defineCommand({
  name: 'sentences',
  summary: 'print sentences about a concept (generated from templates, or the built-in bank), one a line',
  usage: `Usage: pix2pix-zero sentences <concept> [--count ${DEFAULT_GENERATED_SENTENCES}] [--seed 0] [--builtin] [--json]

  <concept>  a word or short phrase ("lion", "red car", "scissors"); every sentence contains it
  --count    how many distinct sentences (1 to ${MAX_GENERATED_SENTENCES}; default ${DEFAULT_GENERATED_SENTENCES}, what directions use
             for a concept without a built-in bank)
  --seed     the generator's seed (default 0; the same concept, count and seed give the same sentences)
  --builtin  print the built-in bank instead (concepts: ${builtinConcepts().join(', ')})
  --json     a JSON array instead of one sentence a line

Save the output, edit it, and give it to edit/direction with --source-sentences / --target-sentences.`,
  options: {
    help: { type: 'boolean', short: 'h', default: false },
    debug: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    count: { type: 'string' },
    seed: { type: 'string' },
    builtin: { type: 'boolean', default: false },
  },
  async run({ values, positionals, io }) {
    if (positionals.length !== 1) throw new UsageError(`sentences takes one concept (got ${positionals.length} arguments; quote a phrase: "red car")`);
    if (values.builtin && (values.count !== undefined || values.seed !== undefined)) throw new UsageError('--builtin prints the shipped bank as it is: give it without --count and --seed');
    const concept = positionals[0]!;
    let sentences: string[];
    if (values.builtin) {
      sentences = builtinSentences(concept);
    } else {
      const count = intOption(values.count, 'count', DEFAULT_GENERATED_SENTENCES, 1, MAX_GENERATED_SENTENCES);
      const seed = intOption(values.seed, 'seed', 0, 0, 2 ** 32 - 1);
      try {
        sentences = generateSentences(concept, { count, seed });
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    }
    io.out(values.json ? JSON.stringify(sentences, null, 2) : sentences.join('\n'));
    return EXIT.ok;
  },
});
