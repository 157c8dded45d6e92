/**
 * `pix2pix-zero embed`: text embeddings from a Stable Diffusion model's CLIP text encoder, written as safetensors
 * (`embeddings`: [n, 77, d], or their mean [1, 77, d] with `--mean`).
 */
import * as path from 'node:path';
import { readSentenceFile } from '../editing/sentences.js';
import { assertFiniteValues } from '../io/finite.js';
import { writeSafetensors } from '../io/safetensors.js';
import { Pix2PixZero } from '../pix2pix-zero.js';
import { BACKEND_HELP, COMMON_OPTIONS, type Command, EXIT, UsageError, backendOption, intOption, refuseTogether } from './command.js';
import { preflightOutputs } from './outputs.js';
import { defineCommand } from './run-command.js';

/** `pix2pix-zero embed`. */
export const embedCommand: Command = defineCommand({
  name: 'embed',
  summary: 'encode prompts or a sentence file with the model\'s CLIP text encoder (to safetensors)',
  usage: `Usage: pix2pix-zero embed [--model <folder | checkpoint.safetensors>] [--variant fp16] (--text "..." [--text "..."] | --file sentences.txt)
                          --out out.safetensors [--mean] [--batch-size N] [--clip-skip N] [--cache-dir d | --no-cache]
                          [--json] [--quiet]

Writes the text encoder's last_hidden_state for each text as the tensor 'embeddings' ([n, 77, d] float32),
or with --mean their mean ([1, 77, d]), the form edit directions are made of.
  --model       a Stable Diffusion pipeline folder (text_encoder/ and tokenizer/; default: the shipped model), or a
                single-file SD 1.x/2.x checkpoint (*.safetensors, original layout; converted once into the cache)
  --variant     read the text encoder's variant weights, as diffusers' variant= (fp16: model.fp16.safetensors);
                a folder with only variant weights is read without it (said on stderr)
  --text        a prompt (repeat for several)
  --file        a sentence file: one sentence a line, trimmed; blank lines and lines starting with # are skipped
  --out         the safetensors file to write
  --cache-dir   where a checkpoint given as --model is converted once (default $PIX2PIX_ZERO_CACHE or
                ~/.cache/pix2pix-zero); --no-cache: a temporary folder, removed once the weights are read
  --mean        write the mean embedding instead of one per text
  --batch-size  texts per forward pass (default 16)
  --clip-skip   skip the last N layers of the text encoder, as diffusers' clip_skip (default 0)
  ${BACKEND_HELP}
  --json        print a machine-readable summary on stdout
  --quiet, -q   no progress bar on stderr`,
  options: {
    ...COMMON_OPTIONS,
    model: { type: 'string' },
    variant: { type: 'string' },
    'cache-dir': { type: 'string' },
    'no-cache': { type: 'boolean', default: false },
    text: { type: 'string', multiple: true },
    file: { type: 'string' },
    out: { type: 'string' },
    mean: { type: 'boolean', default: false },
    'batch-size': { type: 'string' },
    'clip-skip': { type: 'string' },
    quiet: { type: 'boolean', short: 'q', default: false },
  },
  async run({ values, positionals, io, progress }) {
    if (positionals.length > 0) throw new UsageError(`embed takes no positional arguments (got '${positionals[0]}'); pass texts with --text`);
    const texts = values.text ?? [];
    if (texts.length > 0 && values.file !== undefined) throw new UsageError('give either --text or --file, not both');
    if (texts.length === 0 && values.file === undefined) throw new UsageError('nothing to embed: give --text "..." or --file sentences.txt');
    if (values.out === undefined) throw new UsageError('--out <file.safetensors> is required');
    refuseTogether(values, [['no-cache', ['cache-dir']]]);
    const backendChoice = backendOption(values.backend, values.debug);
    const batchSize = intOption(values['batch-size'], 'batch-size', 16, 1, 4096);
    const clipSkip = intOption(values['clip-skip'], 'clip-skip', 0, 0, 1000);
    const out = values.out;
    preflightOutputs([{ option: '--out', path: out, kind: 'safetensors' }]);

    const sentences = values.file !== undefined ? readSentenceFile(values.file) : texts;
    const embedder = await Pix2PixZero.loadTextEmbedder({
      model: values.model,
      variant: values.variant,
      cacheDir: values['no-cache'] ? false : values['cache-dir'],
      onNotice: (m) => io.err(`pix2pix-zero: ${m}`),
      ...backendChoice,
    });
    const started = Date.now();
    try {
      const layers = embedder.numHiddenLayers;
      if (clipSkip > layers) throw new UsageError(`--clip-skip ${clipSkip} is more than the text encoder's ${layers} layers`);
      progress.start('embed');
      const result = await embedder.embed(sentences, { mean: values.mean, batchSize, clipSkip, onProgress: progress.onProgress });
      const shape = [...result.shape];
      try {
        const data = result.dataSync() as Float32Array;
        assertFiniteValues(data, `cannot write ${out}: the embeddings`);
        writeSafetensors(
          out,
          { embeddings: { dtype: 'F32', shape, data } },
          {
            model: path.resolve(embedder.folder.dir),
            texts: String(sentences.length),
            mean: String(values.mean),
            clip_skip: String(clipSkip),
          },
        );
      } finally {
        result.dispose();
      }
      progress.finish();
      const summary = { out, shape, texts: sentences.length, mean: values.mean, clipSkip, backend: embedder.backend.name, seconds: (Date.now() - started) / 1000 };
      io.out(values.json ? JSON.stringify(summary, null, 2) : `wrote ${out}: embeddings [${shape.join(', ')}] from ${sentences.length} text${sentences.length === 1 ? '' : 's'}${values.mean ? ' (mean)' : ''}`);
      return EXIT.ok;
    } finally {
      progress.close();
      embedder.dispose();
    }
  },
});
