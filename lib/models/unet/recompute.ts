/**
 * Where the UNet checkpoints: each resnet and each transformer of its blocks is one recomputed segment when
 * `UNetBlockArgs.checkpoint` is set (`layers/checkpoint.ts`), as diffusers' `gradient_checkpointing` wraps each of
 * them. A transformer's cross-attention loss (the hook) is one of the segment's outputs, so it is differentiated
 * through the recomputation too.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { checkpoint } from '../layers/checkpoint.js';
import type { UNetBlockArgs } from './basic-transformer-block.js';
import { isSegmentedLossHook } from './hooks.js';

/** Runs one layer of a UNet block on `h`, as a recomputed segment when `args.checkpoint` asks for it. */
export function runLayer(args: UNetBlockArgs, h: tf.Tensor, layer: (x: tf.Tensor, args: UNetBlockArgs) => tf.Tensor): tf.Tensor {
  const hook = args.hook;
  if (args.checkpoint !== true) return layer(h, args);
  // The time embedding and the context are the segment's constants (kept for its recomputation).
  const withConstants = (c: tf.Tensor[], segmentHook?: UNetBlockArgs['hook']): UNetBlockArgs => ({ ...args, temb: c[0]!, context: c[1]!, hook: segmentHook });
  if (hook === undefined) return checkpoint((x, c) => [layer(x, withConstants(c))], h, [args.temb, args.context])[0]!;
  // A hook that only observes (a recorder) needs no gradient; one that accumulates a loss is forked per segment.
  if (!isSegmentedLossHook(hook)) return layer(h, args);
  const [y, loss] = checkpoint(
    (x, c) => {
      const local = hook.fork();
      return [layer(x, withConstants(c, local)), local.segmentLoss()];
    },
    h,
    [args.temb, args.context],
  );
  hook.absorb(loss as tf.Scalar);
  return y!;
}
