/** `pix2pix-zero direction`: an edit direction computed from two concepts and saved. */
import * as tf from '@tensorflow/tfjs-core';
import { type Command, UsageError } from './command.js';
import { DIRECTION_OPTIONS, directionFrom } from './direction-options.js';
import { MODEL_OPTIONS, cacheOutput, loadForCommand, refuseModelConflicts } from './model-options.js';
import { preflightOutputs } from './outputs.js';
import { defineCommand } from './run-command.js';
import { type OptionValues as Values, directionScale, refuseDirectionConflicts, stringValue as str } from '../options/edit-options.js';

/** `pix2pix-zero direction`. */
export const directionCommand: Command = defineCommand({
  name: 'direction',
  summary: 'compute an edit direction (mean target - mean source sentence embedding) and save it',
  usage: `Usage: pix2pix-zero direction (--task cat2dog | --source cat --target dog | --source-sentences a.txt
       --target-sentences b.txt) --out direction.safetensors [--model d [--variant fp16]] [--chat-url u --chat-model m]
       [--direction-scale k] [--cache-dir d | --no-cache] [--json] [--quiet]`,
  options: { ...MODEL_OPTIONS, ...DIRECTION_OPTIONS, out: { type: 'string' } },
  async run({ values, positionals, io, progress }) {
    if (positionals.length > 0) throw new UsageError(`direction takes no positional arguments (got '${positionals[0]}')`);
    const v = values as Values;
    const out = str(v, 'out');
    if (out === undefined) throw new UsageError('--out <file.safetensors> is required');
    if (str(v, 'direction') !== undefined) throw new UsageError('--direction is an input of edit, not of direction');
    refuseModelConflicts(v);
    refuseDirectionConflicts(v);
    const scale = directionScale(v);
    preflightOutputs([{ option: '--out', path: out, kind: 'safetensors' }, cacheOutput(v)]);
    const { p2p, report } = await loadForCommand(v, io, progress);
    try {
      const d = await directionFrom(p2p, v, progress, scale);
      try {
        d.save(out);
        const norm = Math.sqrt(tf.sum(tf.square(d.tensor)).dataSync()[0]!);
        return report({ out, source: d.meta.source, target: d.meta.target, shape: d.tensor.shape, norm }, [`wrote ${out} (${d.meta.source} -> ${d.meta.target}, norm ${norm.toFixed(3)})`]);
      } finally {
        d.dispose();
      }
    } finally {
      p2p.dispose();
    }
  },
});
