/**
 * Images in and out: decoding PNG/JPEG (and the other formats jimp reads) to 8-bit RGB, resizing to the model's
 * size with Pillow-exact resampling, conversion to and from the [-1, 1] float tensors the VAE takes, and PNG
 * output. Grey, grey+alpha, RGBA and palette images become RGB the way Pillow's `convert("RGB")` does (alpha is
 * dropped, not composited). EXIF orientation is applied (as image viewers show the picture).
 *
 * The image's dimensions are read from its header before it is decoded, so an absurdly large image is refused
 * without allocating its pixels.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Jimp } from 'jimp';
import { type ResampleFilter, resample } from './resample.js';
import { ensureDir } from './folders.js';
import { SETTINGS, inRange } from '../settings.js';

/** The most pixels an input image may have (64 megapixels). */
export const MAX_IMAGE_PIXELS = 64 * 1024 * 1024;
/** The largest image file read (256 MiB). */
export const MAX_IMAGE_BYTES = 256 * 1024 * 1024;

/**
 * The JPEG decoder's own limits, aligned with {@link MAX_IMAGE_PIXELS}: jpeg-js refuses images over 100 MP and
 * decodes that it counts as needing over 512 MB (coefficient blocks, component planes and the RGBA output: about
 * 18 bytes a pixel), which a 64-megapixel JPEG needs. With 24 bytes a pixel allowed, every JPEG under the pixel
 * limit decodes.
 */
const JPEG_DECODER_LIMITS = {
  maxResolutionInMP: Math.ceil(MAX_IMAGE_PIXELS / 1e6),
  maxMemoryUsageInMB: Math.ceil((MAX_IMAGE_PIXELS * 24) / (1024 * 1024)),
};

/** An 8-bit RGB image, rows top to bottom, 3 bytes per pixel. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

/** How an image is brought to the model's size. */
export interface PrepareOptions {
  /** Target size: one number for a square, or [width, height]; each a multiple of 8. Default 512. */
  size?: number | [number, number];
  /**
   * `resize` stretches to the size (what the pix2pix-zero authors do); `crop` scales the shorter side to fit
   * and cuts the centre. Default `resize`.
   */
  fit?: 'resize' | 'crop';
  /** Resampling filter (default Lanczos, as the authors). */
  filter?: ResampleFilter;
}

/** Reads width and height from a PNG, JPEG, GIF or BMP header; undefined if the format is not recognised. */
export function probeImageSize(buf: Uint8Array): { width: number; height: number; format: string } | undefined {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = buf.length;
  if (n >= 24 && buf[0] === 0x89 && buf[1] === 0x50 && buf[2] === 0x4e && buf[3] === 0x47) {
    return { width: dv.getUint32(16), height: dv.getUint32(20), format: 'png' };
  }
  if (n >= 10 && buf[0] === 0x47 && buf[1] === 0x49 && buf[2] === 0x46) {
    return { width: dv.getUint16(6, true), height: dv.getUint16(8, true), format: 'gif' };
  }
  if (n >= 26 && buf[0] === 0x42 && buf[1] === 0x4d) {
    return { width: Math.abs(dv.getInt32(18, true)), height: Math.abs(dv.getInt32(22, true)), format: 'bmp' };
  }
  if (n >= 4 && buf[0] === 0xff && buf[1] === 0xd8) {
    let i = 2;
    while (i + 9 < n) {
      if (buf[i] !== 0xff) return undefined;
      const marker = buf[i + 1]!;
      if (marker === 0xff) {
        i++;
        continue;
      }
      const len = dv.getUint16(i + 2);
      const isSOF = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isSOF) return { width: dv.getUint16(i + 7), height: dv.getUint16(i + 5), format: 'jpeg' };
      i += 2 + len;
    }
    return undefined;
  }
  return undefined;
}

/**
 * Decodes an image file's bytes to RGB. `name` names the image in errors.
 * @throws Error when the bytes are not a readable image, or the image is empty or over {@link MAX_IMAGE_PIXELS}.
 */
export async function decodeImage(bytes: Uint8Array, name: string): Promise<RgbImage> {
  if (bytes.length === 0) throw new Error(`image ${name} is an empty file`);
  const probe = probeImageSize(bytes);
  if (probe === undefined) {
    throw new Error(`image ${name} is not a PNG, JPEG, GIF or BMP file (unrecognised header)`);
  }
  if (probe.width === 0 || probe.height === 0) throw new Error(`image ${name} has zero size (${probe.width}x${probe.height})`);
  if (probe.width * probe.height > MAX_IMAGE_PIXELS) {
    throw new Error(
      `image ${name} is ${probe.width}x${probe.height} (${((probe.width * probe.height) / 1e6).toFixed(0)} megapixels), over the limit of ${MAX_IMAGE_PIXELS / (1024 * 1024)} Mi pixels`,
    );
  }
  let decoded: Awaited<ReturnType<typeof Jimp.fromBuffer>>;
  try {
    decoded = await Jimp.fromBuffer(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { 'image/jpeg': JPEG_DECODER_LIMITS });
  } catch (err) {
    throw new Error(`image ${name} could not be decoded as ${probe.format}: ${(err as Error).message}`);
  }
  const { width, height, data } = decoded.bitmap;
  if (width === 0 || height === 0) throw new Error(`image ${name} has zero size`);
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    rgb[i] = data[j]!;
    rgb[i + 1] = data[j + 1]!;
    rgb[i + 2] = data[j + 2]!;
  }
  return { width, height, data: rgb };
}

/** Reads and decodes an image file to RGB, with errors that name the file. */
export async function readImage(file: string): Promise<RgbImage> {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new Error(`image not found: ${file}`);
  }
  if (!stat.isFile()) throw new Error(`image ${file} is not a file`);
  if (stat.size > MAX_IMAGE_BYTES) throw new Error(`image ${file} is ${stat.size} bytes, over the limit of ${MAX_IMAGE_BYTES}`);
  return decodeImage(fs.readFileSync(file), file);
}

/** Resizes an RGB image with Pillow's resampling (default Lanczos). */
export function resizeImage(img: RgbImage, width: number, height: number, filter: ResampleFilter = 'lanczos'): RgbImage {
  const out = resample({ ...img, channels: 3 }, width, height, filter);
  return { width: out.width, height: out.height, data: out.data };
}

/** Cuts the `width` x `height` rectangle at (`left`, `top`). */
export function cropImage(img: RgbImage, left: number, top: number, width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const src = ((top + y) * img.width + left) * 3;
    data.set(img.data.subarray(src, src + width * 3), y * width * 3);
  }
  return { width, height, data };
}

/** The target [width, height] of {@link PrepareOptions.size}, validated. */
export function targetSize(size: PrepareOptions['size'] = 512): [number, number] {
  const [w, h] = typeof size === 'number' ? [size, size] : size;
  for (const v of [w, h]) {
    if (!inRange(SETTINGS.size, v)) {
      const { multipleOf, min, max } = SETTINGS.size;
      throw new Error(`image size must be a multiple of ${multipleOf} between ${min} and ${max}, got ${v}`);
    }
  }
  return [w, h];
}

/** Brings an image to the model's size: stretched (default, as the authors) or scaled and centre-cropped. */
export function prepareImage(img: RgbImage, options: PrepareOptions = {}): RgbImage {
  const [w, h] = targetSize(options.size);
  const filter = options.filter ?? 'lanczos';
  if ((options.fit ?? 'resize') === 'resize') return resizeImage(img, w, h, filter);
  const scale = Math.max(w / img.width, h / img.height);
  const sw = Math.max(w, Math.round(img.width * scale));
  const sh = Math.max(h, Math.round(img.height * scale));
  const scaled = resizeImage(img, sw, sh, filter);
  return cropImage(scaled, Math.floor((sw - w) / 2), Math.floor((sh - h) / 2), w, h);
}

/** An RGB image as a [1, H, W, 3] float32 tensor in [-1, 1] (`x / 255 * 2 - 1`, as diffusers preprocesses). */
export function imageToTensor(img: RgbImage): tf.Tensor4D {
  const f = new Float32Array(img.data.length);
  for (let i = 0; i < f.length; i++) f[i] = (img.data[i]! / 255) * 2 - 1;
  return tf.tensor4d(f, [1, img.height, img.width, 3]);
}

/**
 * A [1, H, W, 3] or [H, W, 3] tensor in [-1, 1] as an RGB image: `round(clamp(x / 2 + 0.5, 0, 1) * 255)`,
 * as diffusers postprocesses. Non-finite values (NaN, infinities) become 0 and are counted in `nanCount`, so
 * callers can refuse a broken result.
 */
export function tensorToImage(t: tf.Tensor): RgbImage & { nanCount: number } {
  const shape = t.shape;
  const [h, w, c] = shape.length === 4 ? shape.slice(1) : shape;
  if ((shape.length !== 3 && !(shape.length === 4 && shape[0] === 1)) || c !== 3) {
    throw new Error(`expected an image tensor [1, H, W, 3] or [H, W, 3], got [${shape.join(', ')}]`);
  }
  const v = t.dataSync();
  const data = new Uint8Array(v.length);
  let nanCount = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (!Number.isFinite(x)) nanCount++;
    const u = Math.min(Math.max(x / 2 + 0.5, 0), 1);
    data[i] = Number.isFinite(x) ? Math.round(u * 255) : 0;
  }
  return { width: w!, height: h!, data, nanCount };
}

/** Encodes an RGB image as PNG bytes. */
export async function encodePng(img: RgbImage): Promise<Buffer> {
  const rgba = Buffer.alloc(img.width * img.height * 4);
  for (let i = 0, j = 0; i < img.data.length; i += 3, j += 4) {
    rgba[j] = img.data[i]!;
    rgba[j + 1] = img.data[i + 1]!;
    rgba[j + 2] = img.data[i + 2]!;
    rgba[j + 3] = 255;
  }
  const image = Jimp.fromBitmap({ width: img.width, height: img.height, data: rgba });
  return image.getBuffer('image/png');
}

/** Writes an RGB image as a PNG file, atomically (a temporary file renamed into place). */
export async function writePng(file: string, img: RgbImage): Promise<void> {
  const bytes = await encodePng(img);
  ensureDir(path.dirname(path.resolve(file)), `the folder of ${file}`);
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  try {
    fs.writeFileSync(tmp, bytes);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`cannot write ${file}: ${(err as Error).message}`);
  }
}

/** Reads an image file and prepares it as the pipeline's [1, H, W, 3] input tensor in [-1, 1]. */
export async function loadImageTensor(file: string, options: PrepareOptions = {}): Promise<tf.Tensor4D> {
  return imageToTensor(prepareImage(await readImage(file), options));
}
