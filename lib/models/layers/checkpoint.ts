/**
 * Gradient checkpointing, as PyTorch's `torch.utils.checkpoint`: a function whose intermediate tensors are not kept
 * for the backward pass. Its forward runs off the tape (inside `tf.customGrad`, which keeps only the input); the
 * backward runs it again under its own `tf.grad` and backpropagates the upstream gradient through that, one
 * checkpointed segment at a time, freeing each segment's tape when it is done. So the whole backward holds the
 * segments' inputs plus one segment's activations, at the price of one more forward.
 *
 * tfjs has no such op, and its `customGrad` takes one output tensor: the outputs of `fn` are flattened into one
 * vector and split again (a copy of the outputs, small beside what is not kept).
 */
import * as tf from '@tensorflow/tfjs-core';

/** Whether ops are being recorded for a gradient now (inside `tf.grad`, outside a kernel). */
export function tapeIsOn(): boolean {
  return tf.engine().isTapeOn();
}

function pack(outputs: tf.Tensor[]): tf.Tensor1D {
  return tf.concat(outputs.map((o) => tf.reshape(o, [-1]))) as tf.Tensor1D;
}

/**
 * `fn(x, constants)` (one or more outputs) with its activations recomputed in the backward pass instead of kept.
 * Outside a gradient it is just `fn(x, constants)`. `fn` must be a function of `x`, of `constants` (tensors that need
 * no gradient, kept alive for the recomputation: the forward's own scopes have freed the originals by then) and of
 * weights: the gradient flows to `x` alone.
 */
export function checkpoint(fn: (x: tf.Tensor, constants: tf.Tensor[]) => tf.Tensor[], x: tf.Tensor, constants: tf.Tensor[] = []): tf.Tensor[] {
  if (!tapeIsOn()) return fn(x, constants);
  let shapes: number[][] = [];
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, save] = [args[0] as tf.Tensor, args[args.length - 1] as tf.GradSaveFunc];
    save([input, ...constants]);
    const value = tf.tidy(() => {
      const outs = fn(input, constants);
      shapes = outs.map((o) => o.shape);
      return pack(outs);
    });
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor => {
      // A gradient taken inside another one's backward pass: tfjs' engine starts a new tape for it and clears the
      // outer one's reference when it ends, so that reference is put back for the outer pass's own clean-up.
      const state = tf.engine().state;
      const outer = state.activeTape;
      try {
        const [savedInput, ...savedConstants] = saved;
        return tf.grad((v: tf.Tensor) => pack(fn(v, savedConstants)))(savedInput!, dy);
      } finally {
        state.activeTape = outer;
      }
    };
    return { value, gradFunc };
  });
  const packed = f(x);
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  const parts = sizes.length === 1 ? [packed] : tf.split(packed, sizes);
  return parts.map((p, i) => tf.reshape(p, shapes[i]!));
}
