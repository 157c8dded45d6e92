/**
 * A small differentiable stand-in for the UNet: latents -> per-pixel tokens -> one cross-attention layer over the
 * context (our shared `Attention`) -> back to latent channels. It has real attention maps and real gradients, so
 * the pipeline's bookkeeping (lock-step, CFG, guidance step, memory) can be tested without a full model.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Attention } from '../../lib/models/layers/attention.js';
import type { AttentionMaps, DenoiserPort } from '../../lib/editing/ports.js';

export class FakeDenoiser implements DenoiserPort {
  readonly latentChannels = 4;
  readonly attn: Attention;
  calls = 0;

  constructor(contextDim: number) {
    this.attn = new Attention({ queryDim: 4, crossAttentionDim: contextDim, heads: 2, dimHead: 2 });
    let seed = 1;
    for (const w of this.attn.namedWeights().values()) {
      const n = w.variable.shape.reduce((a, b) => (a ?? 1) * (b ?? 1), 1) as number;
      w.variable.write(tf.tensor(Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 1.5), w.variable.shape as number[]));
    }
  }

  private run(latents: tf.Tensor4D, timestep: number | readonly number[], context: tf.Tensor3D, onProbs?: (p: tf.Tensor3D) => void): tf.Tensor4D {
    this.calls++;
    return tf.tidy(() => {
      const [b, h, w, c] = latents.shape;
      const tokens = tf.reshape(latents, [b, h * w, c]);
      const out = this.attn.forward([tokens, context], { onProbs });
      const factor = typeof timestep === 'number' ? 0.5 + timestep / 2000 : tf.tensor3d(timestep.map((t) => 0.5 + t / 2000), [b, 1, 1]);
      return tf.reshape(tf.add(tf.mul(out, factor), tf.mul(tokens, 0.1)), [b, h, w, c]) as tf.Tensor4D;
    });
  }

  predict(latents: tf.Tensor4D, timestep: number, context: tf.Tensor3D): tf.Tensor4D {
    return this.run(latents, timestep, context);
  }

  predictWithMaps(latents: tf.Tensor4D, timestep: number | readonly number[], context: tf.Tensor3D): { output: tf.Tensor4D; maps: AttentionMaps } {
    const maps: AttentionMaps = new Map();
    const output = this.run(latents, timestep, context, (p) => maps.set('attn2', tf.keep(tf.clone(p))));
    return { output, maps };
  }

  crossAttentionLoss(latents: tf.Tensor4D, timestep: number, context: tf.Tensor3D, reference: AttentionMaps): tf.Scalar {
    // Per-layer losses are made inside the attention's tidy, so they are kept, summed, and the parts freed
    // (backpropagating through a sum needs only its gradient, not the parts).
    const parts: tf.Scalar[] = [];
    const out = this.run(latents, timestep, context, (p) => {
      const ref = reference.get('attn2');
      if (ref === undefined) throw new Error('no reference map');
      parts.push(tf.keep(tf.mean(tf.sum(tf.square(tf.sub(p, ref)), [1, 2])) as tf.Scalar));
    });
    out.dispose();
    if (parts.length === 0) throw new Error('no attention map');
    const loss = tf.addN(parts) as tf.Scalar;
    tf.dispose(parts);
    return loss;
  }

  dispose(): void {
    this.attn.disposeAll();
  }
}
