/**
 * The input's own pixels outside the edited object, after decoding: the last local-blend mask (latent pixels),
 * resized bilinearly to the image, mixes the decoded edit with the input image,
 *
 *     M   = resize_bilinear(mask, [H, W])          (half-pixel centres: torch's interpolate, align_corners=False)
 *     out = input + M * (decoded - input)          (both in [-1, 1], before clamping and quantisation)
 *
 * as inpainting pipelines paste the unmasked input back (diffusers' `VaeImageProcessor.apply_overlay`; Blended
 * Latent Diffusion's background reconstruction). Local blending alone keeps the input's latents outside the mask,
 * so the background still changes by the VAE's round trip (its decoder's error): on the toy world that is about
 * half of what a plain pix2pix-zero edit changes. With the overlay the background is the input's own pixels.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * `input + M * (decoded - input)` with `M` the [1, h, w, 1] mask resized bilinearly to the images' [H, W].
 * @throws Error when the images differ in shape or the mask is not a one-channel map of the same batch.
 */
export function overlayOutsideMask(decoded: tf.Tensor4D, input: tf.Tensor4D, mask: tf.Tensor4D): tf.Tensor4D {
  const [b, H, W] = decoded.shape;
  if (input.shape.join() !== decoded.shape.join()) {
    throw new Error(`overlay: the input image is [${input.shape.join(', ')}] but the decoded edit is [${decoded.shape.join(', ')}]`);
  }
  if (mask.shape[0] !== b || mask.shape[3] !== 1) throw new Error(`overlay: the mask must be [${b}, h, w, 1], got [${mask.shape.join(', ')}]`);
  return tf.tidy(() => {
    const [, h, w] = mask.shape;
    const m = h === H && w === W ? mask : tf.image.resizeBilinear(mask, [H, W], false, true);
    return tf.add(input, tf.mul(m, tf.sub(decoded, input))) as tf.Tensor4D;
  });
}
