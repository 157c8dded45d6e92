/**
 * Reusable artefacts, saved as safetensors so that Python tools can read them too:
 *
 * - an edit direction: tensor `direction`, [1, tokens, width], with its source, target and model in the metadata;
 * - an inversion: tensor `latent` (x_T, NCHW as diffusers has it) and tensor `trajectory` (z_0..z_T,
 *   [T + 1, c, h, w], for Direct Inversion; files of earlier versions lack it) with the caption, the settings,
 *   the image size and the UNet's fingerprint, so one image can be edited many times without inverting it again.
 */
import * as tf from '@tensorflow/tfjs-core';
import { SafetensorsFile, writeSafetensors } from '../io/safetensors.js';

/** Format tag written into every artefact's metadata. */
const FORMAT = 'pix2pix-zero';

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
  writeSafetensors(
    file,
    { direction: { dtype: 'F32', shape: direction.shape, data: direction.dataSync() as Float32Array } },
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
 * Saves an inverted latent ([1, h, w, c], NHWC) with its metadata, and the inversion trajectory z_0..z_T when
 * given; stored NCHW like diffusers' latents.
 */
export function saveInversion(file: string, latent: tf.Tensor4D, meta: InversionMeta, trajectory?: readonly tf.Tensor4D[]): void {
  const nchw = tf.tidy(() => tf.transpose(latent, [0, 3, 1, 2]));
  const traj = trajectory === undefined ? undefined : tf.tidy(() => tf.transpose(tf.concat(trajectory as tf.Tensor4D[], 0), [0, 3, 1, 2]));
  try {
    writeSafetensors(
      file,
      {
        latent: { dtype: 'F32', shape: nchw.shape, data: nchw.dataSync() as Float32Array },
        ...(traj !== undefined ? { trajectory: { dtype: 'F32', shape: traj.shape, data: traj.dataSync() as Float32Array } } : {}),
      },
      { format: FORMAT, kind: 'inversion', meta: JSON.stringify(meta) },
    );
  } finally {
    nchw.dispose();
    traj?.dispose();
  }
}

/**
 * Loads an inversion saved by {@link saveInversion}, returning the latent NHWC and, when the file has one (files
 * of earlier versions hold x_T only), the trajectory z_0..z_T as NHWC latents.
 * @throws Error naming the file when it is not an inversion or its trajectory does not fit its latent.
 */
export function loadInversion(file: string): { latent: tf.Tensor4D; meta: InversionMeta; trajectory?: tf.Tensor4D[] } {
  const f = SafetensorsFile.open(file);
  try {
    if (f.metadata.kind !== 'inversion' || !f.tensors.has('latent')) {
      throw new Error(`${file} is not a pix2pix-zero inversion (no 'latent' tensor with inversion metadata)`);
    }
    let meta: InversionMeta;
    try {
      meta = JSON.parse(f.metadata.meta ?? '') as InversionMeta;
    } catch {
      throw new Error(`${file}: the inversion metadata is not valid JSON`);
    }
    if (typeof meta.caption !== 'string' || typeof meta.model !== 'string' || !Array.isArray(meta.imageSize)) {
      throw new Error(`${file}: the inversion metadata lacks caption, model or imageSize`);
    }
    const t = f.read('latent');
    if (t.shape.length !== 4 || t.shape[0] !== 1) throw new Error(`${file}: latent has shape [${t.shape.join(', ')}], expected [1, channels, h, w]`);
    let trajectory: tf.Tensor4D[] | undefined;
    if (f.tensors.has('trajectory')) {
      const z = f.read('trajectory');
      const [n, c, h, w] = z.shape;
      if (z.shape.length !== 4 || c !== t.shape[1] || h !== t.shape[2] || w !== t.shape[3] || n !== meta.steps + 1) {
        throw new Error(`${file}: trajectory has shape [${z.shape.join(', ')}], expected [${meta.steps + 1}, ${t.shape.slice(1).join(', ')}] (steps + 1 latents of the latent's shape)`);
      }
      trajectory = tf.tidy(() => tf.split(tf.transpose(tf.tensor4d(z.data as Float32Array, [n!, c!, h!, w!]), [0, 2, 3, 1]), n!, 0) as tf.Tensor4D[]);
    }
    const latent = tf.tidy(() => tf.transpose(tf.tensor4d(t.data as Float32Array, t.shape as [number, number, number, number]), [0, 2, 3, 1])) as tf.Tensor4D;
    return { latent, meta, ...(trajectory !== undefined ? { trajectory } : {}) };
  } finally {
    f.close();
  }
}
