/**
 * Reusable artefacts, saved as safetensors so that Python tools can read them too:
 *
 * - an edit direction: tensor `direction`, [1, tokens, width], with its source, target and model in the metadata;
 * - an inversion: tensor `latent` (x_T, NCHW as diffusers has it) and tensor `trajectory` (z_0..z_T,
 *   [T + 1, c, h, w], for Direct Inversion; files of earlier versions lack it), tensor `image` (the input as the
 *   model saw it, [1, 3, H, W] in [-1, 1], for local blending's overlay; files of earlier versions lack it) with
 *   the caption, the settings, the image size and the UNet's fingerprint, so one image can be edited many times
 *   without inverting it again.
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertFiniteValues } from '../io/finite.js';
import { SafetensorsFile, writeSafetensors } from '../io/safetensors.js';
import { SETTINGS, inRange, isStepCount, rangeText } from '../settings.js';

/** Format tag written into every artefact's metadata. */
const FORMAT = 'pix2pix-zero';

/**
 * The largest magnitude a valid artefact holds: text embeddings, their differences and diffusion latents stay
 * within tens; anything this large is a corrupt (bit-flipped) or diverged tensor.
 */
export const MAX_ARTEFACT_ABS = 1e4;

/** What a direction file records besides the tensor. */
export interface DirectionMeta {
  source: string;
  target: string;
  /** Fingerprint of the text encoder that embedded the sentences. */
  model?: string;
  sourceSentences?: number;
  targetSentences?: number;
}

/** Saves an edit direction [1, tokens, width] to `file` (atomically). */
export function saveDirection(file: string, direction: tf.Tensor, meta: DirectionMeta): void {
  if (direction.rank !== 3 || direction.shape[0] !== 1) throw new Error(`a direction must be [1, tokens, width], got [${direction.shape.join(', ')}]`);
  const data = direction.dataSync() as Float32Array;
  assertFiniteValues(data, `cannot write ${file}: the direction`, MAX_ARTEFACT_ABS);
  writeSafetensors(
    file,
    { direction: { dtype: 'F32', shape: direction.shape, data } },
    { format: FORMAT, kind: 'direction', meta: JSON.stringify(meta) },
  );
}

/**
 * Loads an edit direction. With `expect`, its shape must be [1, tokens, width] of the model it is used with.
 * @throws Error naming the file when it holds no `direction` tensor or its shape does not fit.
 */
export function loadDirection(file: string, expect?: { tokens: number; width: number }): { direction: tf.Tensor3D; meta: DirectionMeta | undefined } {
  const f = SafetensorsFile.open(file);
  try {
    if (!f.tensors.has('direction')) {
      throw new Error(`${file} holds no 'direction' tensor (it has ${f.names().slice(0, 5).join(', ') || 'no tensors'})`);
    }
    const t = f.read('direction');
    const [one, tokens, width] = t.shape;
    if (t.shape.length !== 3 || one !== 1) throw new Error(`${file}: direction has shape [${t.shape.join(', ')}], expected [1, tokens, width]`);
    if (expect !== undefined && (tokens !== expect.tokens || width !== expect.width)) {
      throw new Error(
        `${file}: direction is [1, ${tokens}, ${width}] but the model's text embeddings are [1, ${expect.tokens}, ${expect.width}] (a direction from another text encoder?)`,
      );
    }
    assertFiniteValues(t.data, `${file}: direction`, MAX_ARTEFACT_ABS);
    let meta: DirectionMeta | undefined;
    if (f.metadata.meta !== undefined) {
      try {
        meta = JSON.parse(f.metadata.meta) as DirectionMeta;
      } catch {
        meta = undefined;
      }
    }
    return { direction: tf.tensor3d(t.data as Float32Array, [1, tokens!, width!]), meta };
  } finally {
    f.close();
  }
}

/** The settings an inversion was made with (enough to check it fits a later edit). */
export interface InversionMeta {
  caption: string;
  steps: number;
  /** [height, width] of the image that was inverted. */
  imageSize: [number, number];
  /** Fingerprint of the UNet used. */
  model: string;
  /** Every other setting, for the record (regularisation, VAE mode, seed...). */
  settings: Record<string, unknown>;
}

/**
 * What a latent file holds: an inversion (x_T, editable) or `latents` (an edit's x_0, written by
 * `--save-latents` for the record, which cannot be edited).
 */
export type LatentKind = 'inversion' | 'latents';

/**
 * Saves an inverted latent ([1, h, w, c], NHWC) with its metadata, and the inversion trajectory z_0..z_T and the
 * input image ([1, H, W, 3] in [-1, 1]) when given; stored NCHW like diffusers' tensors. `kind` `latents` marks an
 * edit's x_0, which {@link loadInversion} refuses.
 */
export function saveInversion(
  file: string,
  latent: tf.Tensor4D,
  meta: InversionMeta,
  trajectory?: readonly tf.Tensor4D[],
  kind: LatentKind = 'inversion',
  image?: tf.Tensor4D,
): void {
  const nchw = tf.tidy(() => tf.transpose(latent, [0, 3, 1, 2]));
  const traj = trajectory === undefined ? undefined : tf.tidy(() => tf.transpose(tf.concat(trajectory as tf.Tensor4D[], 0), [0, 3, 1, 2]));
  const img = image === undefined ? undefined : tf.tidy(() => tf.transpose(image, [0, 3, 1, 2]));
  try {
    const data = nchw.dataSync() as Float32Array;
    assertFiniteValues(data, `cannot write ${file}: the latent`, MAX_ARTEFACT_ABS);
    const trajData = traj?.dataSync() as Float32Array | undefined;
    if (trajData !== undefined) assertFiniteValues(trajData, `cannot write ${file}: the trajectory`, MAX_ARTEFACT_ABS);
    const imgData = img?.dataSync() as Float32Array | undefined;
    if (imgData !== undefined) assertFiniteValues(imgData, `cannot write ${file}: the image`, MAX_IMAGE_ABS);
    writeSafetensors(
      file,
      {
        latent: { dtype: 'F32', shape: nchw.shape, data },
        ...(traj !== undefined && trajData !== undefined ? { trajectory: { dtype: 'F32', shape: traj.shape, data: trajData } } : {}),
        ...(img !== undefined && imgData !== undefined ? { image: { dtype: 'F32', shape: img.shape, data: imgData } } : {}),
      },
      { format: FORMAT, kind, meta: JSON.stringify(meta) },
    );
  } finally {
    tf.dispose([nchw, ...(traj !== undefined ? [traj] : []), ...(img !== undefined ? [img] : [])]);
  }
}

/** An image tensor's values are in [-1, 1] (with float rounding). */
const MAX_IMAGE_ABS = 1 + 1e-5;

const isSize = (v: unknown): v is number => inRange(SETTINGS.size, v);

/** The inversion metadata of `file`, checked field by field. */
function parseInversionMeta(file: string, text: string | undefined): InversionMeta {
  let meta: InversionMeta;
  try {
    meta = JSON.parse(text ?? '') as InversionMeta;
  } catch {
    throw new Error(`${file}: the inversion metadata is not valid JSON`);
  }
  if (typeof meta !== 'object' || meta === null || typeof meta.caption !== 'string' || typeof meta.model !== 'string' || !Array.isArray(meta.imageSize)) {
    throw new Error(`${file}: the inversion metadata lacks caption, model or imageSize`);
  }
  if (!isStepCount(meta.steps)) {
    throw new Error(`${file}: the inversion metadata says steps ${JSON.stringify(meta.steps)}, expected ${rangeText(SETTINGS.steps)}`);
  }
  if (meta.imageSize.length !== 2 || !meta.imageSize.every(isSize)) {
    throw new Error(`${file}: the inversion metadata says imageSize ${JSON.stringify(meta.imageSize)}, expected [height, width], multiples of ${SETTINGS.size.multipleOf} in [${SETTINGS.size.min}, ${SETTINGS.size.max}]`);
  }
  return meta;
}

/**
 * Loads an inversion saved by {@link saveInversion}, returning the latent NHWC and, when the file has one (files
 * of earlier versions hold x_T only), the trajectory z_0..z_T as NHWC latents. The metadata must agree with the
 * tensor (the image is a power-of-two multiple of the latent, the same on both sides) and every value must be
 * finite and plausible.
 * @throws Error naming the file when it is not an inversion, or is inconsistent or corrupt.
 */
export function loadInversion(file: string): { latent: tf.Tensor4D; meta: InversionMeta; trajectory?: tf.Tensor4D[]; image?: tf.Tensor4D } {
  const f = SafetensorsFile.open(file);
  try {
    let meta: InversionMeta | undefined;
    if (f.metadata.kind === 'inversion' && f.tensors.has('latent')) meta = parseInversionMeta(file, f.metadata.meta);
    const edited = f.metadata.kind === 'latents' || (meta?.settings as { kind?: unknown } | undefined)?.kind === 'edited x_0';
    if (edited) throw new Error(`${file} holds an edit's x_0 latents (written by --save-latents), not an inversion: give the file --save-inversion wrote`);
    if (meta === undefined) throw new Error(`${file} is not a pix2pix-zero inversion (no 'latent' tensor with inversion metadata)`);
    const t = f.read('latent');
    if (t.shape.length !== 4 || t.shape[0] !== 1) throw new Error(`${file}: latent has shape [${t.shape.join(', ')}], expected [1, channels, h, w]`);
    const [, , lh, lw] = t.shape as [number, number, number, number];
    const [h, w] = meta.imageSize;
    const factor = h / lh;
    if (w / lw !== factor || !Number.isInteger(Math.log2(factor))) {
      throw new Error(`${file}: the metadata's image size ${h}x${w} does not fit the ${lh}x${lw} latent (the file was altered or is from another tool)`);
    }
    assertFiniteValues(t.data, `${file}: latent`, MAX_ARTEFACT_ABS);
    let trajectory: tf.Tensor4D[] | undefined;
    if (f.tensors.has('trajectory')) {
      const z = f.read('trajectory');
      const [n, c, zh, zw] = z.shape;
      if (z.shape.length !== 4 || c !== t.shape[1] || zh !== t.shape[2] || zw !== t.shape[3] || n !== meta.steps + 1) {
        throw new Error(`${file}: trajectory has shape [${z.shape.join(', ')}], expected [${meta.steps + 1}, ${t.shape.slice(1).join(', ')}] (steps + 1 latents of the latent's shape)`);
      }
      assertFiniteValues(z.data, `${file}: trajectory`, MAX_ARTEFACT_ABS);
      trajectory = tf.tidy(() => tf.split(tf.transpose(tf.tensor4d(z.data as Float32Array, [n!, c!, zh!, zw!]), [0, 2, 3, 1]), n!, 0) as tf.Tensor4D[]);
    }
    let image: tf.Tensor4D | undefined;
    if (f.tensors.has('image')) {
      const m = f.read('image');
      if (m.shape.length !== 4 || m.shape[0] !== 1 || m.shape[1] !== 3 || m.shape[2] !== h || m.shape[3] !== w) {
        tf.dispose(trajectory);
        throw new Error(`${file}: image has shape [${m.shape.join(', ')}], expected [1, 3, ${h}, ${w}] (the metadata's image size)`);
      }
      try {
        assertFiniteValues(m.data, `${file}: image`, MAX_IMAGE_ABS);
      } catch (err) {
        tf.dispose(trajectory);
        throw err;
      }
      image = tf.tidy(() => tf.transpose(tf.tensor4d(m.data as Float32Array, [1, 3, h, w]), [0, 2, 3, 1]) as tf.Tensor4D);
    }
    const latent = tf.tidy(() => tf.transpose(tf.tensor4d(t.data as Float32Array, t.shape as [number, number, number, number]), [0, 2, 3, 1])) as tf.Tensor4D;
    return { latent, meta, ...(trajectory !== undefined ? { trajectory } : {}), ...(image !== undefined ? { image } : {}) };
  } finally {
    f.close();
  }
}
