/**
 * pix2pix-zero's cross-attention guidance loss, as a UNet cross-attention hook (`models/unet/hooks.ts`): during
 * the edit pass, how far each layer's attention maps are from the reference pass's maps at the same step.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { SegmentedLossHook } from '../models/unet/hooks.js';

/**
 * Accumulates the pix2pix-zero cross-attention loss during a forward pass: for each layer, the mean over
 * (batch * heads) of the sum over (query, key) of (M - M_ref)^2, summed over layers (diffusers'
 * `Pix2PixZeroL2Loss`). Differentiable: call the forward and {@link loss} inside `tf.grad`.
 */
export class CrossAttentionLoss implements SegmentedLossHook {
  private readonly parts: tf.Scalar[] = [];

  constructor(private readonly reference: ReadonlyMap<string, tf.Tensor3D>) {}

  fork(): CrossAttentionLoss {
    return new CrossAttentionLoss(this.reference);
  }

  /** Like {@link loss}, but 0 when no layer reported (a segment without cross-attention); frees the parts too. */
  segmentLoss(): tf.Scalar {
    return this.parts.length === 0 ? tf.scalar(0) : this.loss();
  }

  absorb(loss: tf.Scalar): void {
    this.parts.push(tf.keep(loss));
  }

  crossAttention(layer: string, probs: tf.Tensor3D): void {
    const ref = this.reference.get(layer);
    if (ref === undefined) throw new Error(`CrossAttentionLoss: no reference map for layer ${layer}`);
    if (!ref.shape.every((d, i) => d === probs.shape[i])) {
      throw new Error(`CrossAttentionLoss: layer ${layer} has maps [${probs.shape.join(', ')}] but the reference is [${ref.shape.join(', ')}]`);
    }
    this.parts.push(tf.keep(tf.mean(tf.sum(tf.square(tf.sub(probs, ref)), [1, 2])) as tf.Scalar));
  }

  /**
   * The summed loss. The per-layer parts are freed (backpropagating through a sum needs only its gradient), so
   * call it once, after the forward pass.
   */
  loss(): tf.Scalar {
    if (this.parts.length === 0) throw new Error('CrossAttentionLoss: the forward pass had no cross-attention layer');
    const total = tf.addN(this.parts) as tf.Scalar;
    tf.dispose(this.parts.splice(0));
    return total;
  }
}
