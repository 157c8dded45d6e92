/** `pix2pix-zero caption <image> --captioner <blip folder>`: the BLIP caption of an image. */
import { readImage } from '../io/image.js';
import { Pix2PixZero } from '../pix2pix-zero.js';
import { BACKEND_HELP, COMMON_OPTIONS, IMAGE_LIMITS, type Command, EXIT, UsageError, backendOption, intOption, numberOption } from './command.js';
import { defineCommand } from './run-command.js';

/** `pix2pix-zero caption`. */
export const captionCommand: Command = defineCommand({
  name: 'caption',
  summary: 'write the BLIP caption of an image',
  usage: `Usage: pix2pix-zero caption <image> --captioner <blip folder> [options]

Captions an image with a transformers BLIP captioning model (BlipForConditionalGeneration), as its generate()
does: greedy by default, beam search with --beams.
  --captioner <dir>           the BLIP folder (config.json, model.safetensors, preprocessor and tokenizer files)
  --prompt "a picture of"     a text the caption continues (it is part of the caption)
  --beams N                   beams (default 1: greedy)
  --max-new-tokens N          new tokens at most (default: 20 tokens in all)
  --min-length N              the caption, prompt included, has at least N tokens before it may end (default 0)
  --repetition-penalty X      penalty of repeated tokens (default 1: none)
  --length-penalty X          beam length penalty (default 1)
  ${BACKEND_HELP}
  --quiet, -q                 no progress bar on stderr (there is none either when stderr is not a terminal)
  --json                      machine-readable output: {"caption", "ids", "image", "backend", "seconds"}
${IMAGE_LIMITS}`,
  options: {
    ...COMMON_OPTIONS,
    captioner: { type: 'string' },
    prompt: { type: 'string' },
    beams: { type: 'string' },
    'max-new-tokens': { type: 'string' },
    'min-length': { type: 'string' },
    'repetition-penalty': { type: 'string' },
    'length-penalty': { type: 'string' },
    quiet: { type: 'boolean', short: 'q', default: false },
  },
  async run({ values, positionals, io, progress }) {
    if (positionals.length !== 1) throw new UsageError(`caption takes exactly one image (got ${positionals.length})`);
    if (values.captioner === undefined || values.captioner === '') throw new UsageError('--captioner <blip folder> is required');
    const backendChoice = backendOption(values.backend, values.debug);
    const numBeams = intOption(values.beams, 'beams', 1, 1, 64);
    const maxNewTokens = values['max-new-tokens'] === undefined ? undefined : intOption(values['max-new-tokens'], 'max-new-tokens', 20, 1, 512);
    const minLength = intOption(values['min-length'], 'min-length', 0, 0, 512);
    const repetitionPenalty = numberOption(values['repetition-penalty'], 'repetition-penalty', 1, 1e-6, 1e6);
    const lengthPenalty = numberOption(values['length-penalty'], 'length-penalty', 1, -1e6, 1e6);
    const image = positionals[0]!;
    const rgb = await readImage(image);
    const started = Date.now();
    const captioner = await Pix2PixZero.loadCaptioner({ captioner: values.captioner, ...backendChoice });
    progress.start('caption');
    try {
      const result = await captioner.caption(rgb, { prompt: values.prompt, numBeams, maxNewTokens, minLength, repetitionPenalty, lengthPenalty, onProgress: progress.onProgress });
      progress.close();
      if (values.json) {
        io.out(JSON.stringify({ caption: result.caption, ids: result.ids, image, backend: captioner.backend.name, seconds: (Date.now() - started) / 1000 }, null, 2));
      } else {
        io.out(result.caption);
      }
      return EXIT.ok;
    } finally {
      progress.close();
      captioner.dispose();
    }
  },
});
