/**
 * `BlipImageProcessor` as transformers runs it (the PIL backend): convert to RGB, resize to the configured size with
 * Pillow's filter (bicubic for BLIP) on the 8-bit image, rescale (1/255), normalise with the configured mean and
 * std. The result is NHWC ([1, H, W, 3]), where transformers' `pixel_values` are NCHW.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigFields } from '../../io/config-fields.js';
import type { JsonObject } from '../../io/json.js';
import type { RgbImage } from '../../io/image.js';
import { resizeImage } from '../../io/image.js';
import type { ResampleFilter } from '../../io/resample.js';

/** The fields of a `preprocessor_config.json` that BLIP's processor uses. */
export interface BlipImageProcessorConfig {
  readonly doResize: boolean;
  readonly width: number;
  readonly height: number;
  readonly resample: ResampleFilter;
  readonly doRescale: boolean;
  readonly rescaleFactor: number;
  readonly doNormalize: boolean;
  readonly mean: readonly [number, number, number];
  readonly std: readonly [number, number, number];
}

/** PIL's resampling codes (`PIL.Image.Resampling`) that the resampler implements. */
const PIL_FILTERS: Record<number, ResampleFilter> = { 0: 'nearest', 1: 'lanczos', 2: 'bilinear', 3: 'bicubic' };

/**
 * Parses a BLIP `preprocessor_config.json` (missing fields take `BlipImageProcessor`'s defaults: 384 x 384,
 * bicubic, 1/255, OpenAI CLIP's mean and std). `source` names the file in errors.
 */
export function parseBlipImageProcessorConfig(json: JsonObject, source = 'BLIP preprocessor config'): BlipImageProcessorConfig {
  const r = new ConfigFields(json, source);
  const triple = (field: string, fallback: [number, number, number]): [number, number, number] => {
    const v = json[field] ?? fallback;
    const arr = typeof v === 'number' ? [v, v, v] : v;
    if (!Array.isArray(arr) || arr.length !== 3 || !arr.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw r.error(field, `must be 3 numbers, got ${JSON.stringify(v)}`);
    }
    return arr as [number, number, number];
  };
  const size = json.size ?? { height: 384, width: 384 };
  let width: number;
  let height: number;
  if (typeof size === 'number') {
    width = height = size;
  } else if (typeof size === 'object' && size !== null && !Array.isArray(size)) {
    const s = size as JsonObject;
    if (typeof s.height !== 'number' || typeof s.width !== 'number') {
      throw r.error('size', `must be {"height": H, "width": W} (BLIP resizes to a fixed size), got ${JSON.stringify(size)}`);
    }
    width = s.width;
    height = s.height;
  } else {
    throw r.error('size', `must be {"height": H, "width": W}, got ${JSON.stringify(size)}`);
  }
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) throw r.error('size', `must be positive integers, got ${JSON.stringify(size)}`);
  const code = json.resample ?? 3;
  const resample = typeof code === 'number' ? PIL_FILTERS[code] : undefined;
  if (resample === undefined) throw r.error('resample', `is ${JSON.stringify(code)}; supported: 0 (nearest), 1 (lanczos), 2 (bilinear), 3 (bicubic)`);
  const factor = r.positive('rescale_factor', 1 / 255);
  const std = triple('image_std', [0.26862954, 0.26130258, 0.27577711]);
  if (std.some((s) => s === 0)) throw r.error('image_std', 'must not contain 0');
  return {
    doResize: r.bool('do_resize', true),
    width,
    height,
    resample,
    doRescale: r.bool('do_rescale', true),
    rescaleFactor: factor,
    doNormalize: r.bool('do_normalize', true),
    mean: triple('image_mean', [0.48145466, 0.4578275, 0.40821073]),
    std,
  };
}

/**
 * The pixel values of an 8-bit RGB image, [1, height, width, 3] float32 (NHWC), as `BlipImageProcessor` computes
 * them (transformers' `pixel_values[0]` transposed to HWC).
 * @throws Error if the image does not have the configured size and `do_resize` is false.
 */
export function blipPixelValues(image: RgbImage, config: BlipImageProcessorConfig): tf.Tensor4D {
  const img = config.doResize ? resizeImage(image, config.width, config.height, config.resample) : image;
  const n = img.width * img.height;
  if (img.data.length !== n * 3) throw new Error(`BLIP processor: image data has ${img.data.length} bytes for ${img.width}x${img.height} RGB`);
  const out = new Float32Array(n * 3);
  for (let i = 0; i < n * 3; i++) {
    const c = i % 3;
    let v = img.data[i]!;
    if (config.doRescale) v *= config.rescaleFactor;
    if (config.doNormalize) v = (v - config.mean[c]!) / config.std[c]!;
    out[i] = v;
  }
  return tf.tensor4d(out, [1, img.height, img.width, 3]);
}

/**
 * An RGB image from a [H, W, 3] tensor of 0..255 values (RGB bytes as float32, what the pipeline passes), rounded
 * and clamped to bytes. `what` names the input in errors.
 */
export function tensorToRgb(image: tf.Tensor3D, what = 'image'): RgbImage {
  if (image.rank !== 3 || image.shape[2] !== 3) throw new Error(`${what}: expected a [height, width, 3] RGB tensor, got [${image.shape.join(', ')}]`);
  const [height, width] = image.shape;
  if (height === 0 || width === 0) throw new Error(`${what}: the image is empty (${width}x${height})`);
  const values = image.dataSync();
  const data = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isNaN(v)) throw new Error(`${what}: the image has NaN values (expected 0..255)`);
    data[i] = Math.min(255, Math.max(0, Math.round(v)));
  }
  return { width, height, data };
}
