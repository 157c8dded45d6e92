/** `pix2pix-zero invert`: an image inverted to noise and saved, to edit it many times without inverting again. */
import { SETTINGS as S, flagWithDefault as dflt } from '../settings.js';
import { IMAGE_LIMITS, type Command, UsageError } from './command.js';
import { MODEL_OPTIONS, loadForCommand, refuseModelConflicts } from './model-options.js';
import { preflightOutputs } from './outputs.js';
import { defineCommand } from './run-command.js';
import { INVERT_OPTIONS, type OptionValues as Values, invertOptions, stringValue as str } from '../options/edit-options.js';

/** `pix2pix-zero invert`. */
export const invertCommand: Command = defineCommand({
  name: 'invert',
  summary: 'invert an image to noise and save it, to edit it many times without inverting again',
  usage: `Usage: pix2pix-zero invert <image> --out inversion.safetensors [--model d [--variant fp16]] [--captioner d | --caption "..."]
       [${dflt(S.steps)}] [${dflt(S.numRegSteps)}] [${dflt(S.numAutoCorrRolls)}] [${dflt(S.lambdaAc)}] [${dflt(S.lambdaKl)}] [--min-shift ${S.minShift.min}|${S.minShift.max}]
       [${dflt(S.vaeEncode)}] [${dflt(S.seed)}] [--size <model's>] [${dflt(S.fit)}] [--json] [--quiet]
Ranges as edit's (pix2pix-zero edit --help). ${IMAGE_LIMITS}`,
  options: { ...MODEL_OPTIONS, ...INVERT_OPTIONS, out: { type: 'string' } },
  async run({ values, positionals, io, progress }) {
    if (positionals.length !== 1) throw new UsageError('invert takes one image');
    const v = values as Values;
    const out = str(v, 'out');
    if (out === undefined) throw new UsageError('--out <file.safetensors> is required');
    refuseModelConflicts(v);
    const opts = invertOptions(v);
    preflightOutputs([{ option: '--out', path: out, kind: 'safetensors' }]);
    const { p2p, report } = await loadForCommand(v, io, progress);
    try {
      const inv = await p2p.invert(positionals[0]!, { ...opts, onProgress: progress.onProgress });
      try {
        inv.save(out);
        return report({ out, caption: inv.caption, steps: inv.meta.steps }, [`wrote ${out} (caption: "${inv.caption}")`]);
      } finally {
        inv.dispose();
      }
    } finally {
      p2p.dispose();
    }
  },
});
