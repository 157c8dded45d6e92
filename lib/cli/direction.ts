/** `pix2pix-zero direction`: an edit direction computed from two concepts and saved. */
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs-core';
import { type Command, EXIT, UsageError, parseCommandLine } from './command.js';
import { DIRECTION_OPTIONS, directionFrom } from './direction-options.js';
import { MODEL_OPTIONS, cacheOutput, finish, load, refuseModelConflicts } from './model-options.js';
import { preflightOutputs } from './outputs.js';
import { ProgressReporter } from './progress.js';
import { type OptionValues as Values, directionScale, refuseDirectionConflicts, stringValue as str } from '../options/edit-options.js';

export const directionCommand: Command = {
  name: 'direction',
  summary: 'compute an edit direction (mean target - mean source sentence embedding) and save it',
  usage: `Usage: pix2pix-zero direction (--task cat2dog | --source cat --target dog | --source-sentences a.txt
       --target-sentences b.txt) --out direction.safetensors [--model d [--variant fp16]] [--chat-url u --chat-model m]
       [--direction-scale k] [--cache-dir d | --no-cache] [--json] [--quiet]`,
  async run(argv, io) {
    const { values, positionals } = parseCommandLine(argv, { ...MODEL_OPTIONS, ...DIRECTION_OPTIONS, out: { type: 'string' } });
    if (values.help) {
      io.out(this.usage);
      return EXIT.ok;
    }
    if (positionals.length > 0) throw new UsageError(`direction takes no positional arguments (got '${positionals[0]}')`);
    const v = values as Values;
    const out = str(v, 'out');
    if (out === undefined) throw new UsageError('--out <file.safetensors> is required');
    if (str(v, 'direction') !== undefined) throw new UsageError('--direction is an input of edit, not of direction');
    refuseModelConflicts(v);
    refuseDirectionConflicts(v);
    const scale = directionScale(v);
    preflightOutputs([{ option: '--out', path: out, kind: 'safetensors' }, cacheOutput(v)]);
    const t0 = performance.now();
    const progress = new ProgressReporter(io, io.isTTY && !values.quiet && !values.json);
    progress.start('load');
    const p2p = await load(v, io, true);
    progress.finish();
    try {
      const d = await directionFrom(p2p, v, progress, scale);
      try {
        d.save(out);
        const norm = Math.sqrt(tf.sum(tf.square(d.tensor)).dataSync()[0]!);
        return finish(io, values.json, { out, source: d.meta.source, target: d.meta.target, shape: d.tensor.shape, norm }, [`wrote ${out} (${d.meta.source} -> ${d.meta.target}, norm ${norm.toFixed(3)})`], progress, t0);
      } finally {
        d.dispose();
      }
    } finally {
      progress.close();
      p2p.dispose();
    }
  },
};
