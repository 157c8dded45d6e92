/**
 * Local blending (Hertz et al., Prompt-to-Prompt, §3.2 "local editing"; its `LocalBlend`) as a step hook of the
 * guided sampler: after every step the edit keeps the reference pass's latent outside a mask of the edited
 * object, so that the background and the other objects stay as in the reference pass. pix2pix-zero adds its
 * direction to every token, which moves the whole scene; with Direct Inversion the reference pass is the
 * inversion trajectory itself, so outside the mask the edit ends on the input's own latents.
 *
 * The mask comes from the reference pass's cross-attention maps of the caption tokens that name the edited
 * object, with classifier-free guidance the conditional half's. At step i:
 *
 *     A_i   = mean over cross-attention layers and heads of sum_{k in tokens} M_ref(t_i)[q, k], each layer's
 *             [r_h, r_w] map resized bilinearly to the latent's [h, w]
 *     S_i   = A_0 + ... + A_i                                 (the maps so far, as Prompt-to-Prompt's store)
 *     mask  = maxpool_{2k+1}(S_i) / max(...) > threshold      (k, the dilation: by default max(1, round(min(h, w) /
 *                                                              16)), Prompt-to-Prompt's 3 x 3 at 16 x 16, in latent
 *                                                              pixels; 0: no max-pool)
 *     edit <- reference + mask * (edit - reference)       (from step floor(start * T) on: the first steps form the
 *                                                          new object freely, Prompt-to-Prompt's `start_blend`)
 *
 * No extra UNet call; the maps are those the sampler computes for the cross-attention guidance.
 */
import * as tf from '@tensorflow/tfjs-core';
import { SETTINGS, inRange, rangeText } from '../settings.js';
import type { StepEndHook } from './services.js';

/** Options of {@link localBlend}. */
export interface LocalBlendOptions {
  /** Positions in the caption's token sequence (0 is the start token) of the words naming the edited object. */
  readonly tokens: readonly number[];
  /** A latent pixel is edited where the normalised map exceeds this (default `SETTINGS.blendThreshold`: 0.3, Prompt-to-Prompt's). */
  readonly threshold?: number;
  /**
   * How far the mask reaches past the map's own extent, in latent pixels (the max-pool's radius k): room for a new
   * shape. Default `defaultBlendDilation` of the latent (Prompt-to-Prompt's); 0 turns the max-pool off.
   */
  readonly dilation?: number;
  /**
   * The fraction of the first steps left unblended (Prompt-to-Prompt's `start_blend`): steps i < floor(start * T)
   * keep the edit as it is, their maps still count in the mask. Default `SETTINGS.blendStart` (0: every step).
   */
  readonly start?: number;
  /** Called with each blended step's mask [1, h, w, 1] of 0 / 1 (borrowed; tests and visualisation). */
  readonly onMask?: (step: number, mask: tf.Tensor4D) => void;
}

/** Checks a blend threshold against `SETTINGS.blendThreshold`, naming it when it is out of range. */
export function assertBlendThreshold(threshold: number): void {
  if (!inRange(SETTINGS.blendThreshold, threshold)) {
    throw new Error(`the local blend threshold must be ${rangeText(SETTINGS.blendThreshold)}, got ${threshold}`);
  }
}

/** Checks a blend dilation against `SETTINGS.blendDilation`, naming it when it is out of range. */
export function assertBlendDilation(dilation: number): void {
  if (!inRange(SETTINGS.blendDilation, dilation)) {
    throw new Error(`the local blend dilation must be ${rangeText(SETTINGS.blendDilation)} latent pixels, got ${dilation}`);
  }
}

/** Checks a blend start against `SETTINGS.blendStart`, naming it when it is out of range. */
export function assertBlendStart(start: number): void {
  if (!inRange(SETTINGS.blendStart, start)) {
    throw new Error(`the local blend start must be ${rangeText(SETTINGS.blendStart)} (a fraction of the steps), got ${start}`);
  }
}

/** Prompt-to-Prompt's mask dilation (a 3 x 3 max-pool on 16 x 16 maps) in latent pixels of an h x w latent. */
export function defaultBlendDilation(h: number, w: number): number {
  return Math.max(1, Math.round(Math.min(h, w) / 16));
}

/**
 * The local-blend hook. It keeps the accumulated map as numbers on the host between steps (no tensor outlives a
 * step, whatever the sampler does), and expects the sampler to end each step on the reference latent it blends
 * towards (Direct Inversion's correction, when chained before it, has then been applied).
 * @throws Error for an empty token list, a position outside the maps or a bad threshold.
 */
export function localBlend(options: LocalBlendOptions): StepEndHook {
  const threshold = options.threshold ?? SETTINGS.blendThreshold.default;
  assertBlendThreshold(threshold);
  if (options.dilation !== undefined) assertBlendDilation(options.dilation);
  const start = options.start ?? SETTINGS.blendStart.default;
  assertBlendStart(start);
  const tokens = [...options.tokens];
  if (tokens.length === 0) throw new Error('local blending needs at least one caption token naming the edited object');
  for (const k of tokens) {
    if (!(Number.isInteger(k) && k >= 0)) throw new Error(`local blend token positions must be non-negative integers, got ${k}`);
  }
  let sum: Float32Array | undefined;
  return ({ step, steps, reference, edit, referenceMaps, guidanceBatch }) => {
    const [, h, w] = reference.shape;
    const stepMap = tf.tidy(() => {
      const layers: tf.Tensor2D[] = [];
      for (const [path, maps] of referenceMaps) {
        const [rows, queries, length] = maps.shape;
        if (tokens.some((k) => k >= length)) throw new Error(`local blend: token position ${Math.max(...tokens)} is outside the ${length} tokens of ${path}'s maps`);
        const heads = rows / guidanceBatch;
        // the conditional half's heads (the last batch item), summed over the object's tokens: [queries]
        const own = tf.slice(maps, [rows - heads, 0, 0], [heads, queries, length]);
        const word = tf.sum(tf.gather(tf.mean(own, 0), tokens, 1), 1);
        const rw = Math.round(Math.sqrt((queries * w) / h));
        const rh = queries / rw;
        if (!Number.isInteger(rh)) throw new Error(`local blend: ${path}'s ${queries} queries are not a grid of the latent's aspect ${h} x ${w}`);
        const grid = tf.reshape(word, [1, rh, rw, 1]) as tf.Tensor4D;
        layers.push(tf.reshape(rh === h && rw === w ? grid : tf.image.resizeBilinear(grid, [h, w], false, true), [h, w]) as tf.Tensor2D);
      }
      if (layers.length === 0) throw new Error('local blend: the sampler gave no cross-attention maps');
      return tf.div(tf.addN(layers), layers.length) as tf.Tensor2D;
    });
    const values = stepMap.dataSync() as Float32Array;
    stepMap.dispose();
    if (sum === undefined || sum.length !== values.length) sum = new Float32Array(values.length);
    if (step === 0) sum.fill(0);
    for (let q = 0; q < values.length; q++) sum[q]! += values[q]!;
    const acc = sum;
    if (step < Math.floor(start * steps)) return;
    return tf.tidy(() => {
      const k = options.dilation ?? defaultBlendDilation(h, w);
      const map = tf.tensor4d(acc, [1, h, w, 1]);
      const pooled = k > 0 ? tf.maxPool(map, 2 * k + 1, 1, 'same') : map;
      const mask = tf.cast(tf.greater(tf.div(pooled, tf.max(pooled)), threshold), 'float32') as tf.Tensor4D;
      options.onMask?.(step, mask);
      return { edit: tf.add(reference, tf.mul(mask, tf.sub(edit, reference))) as tf.Tensor4D };
    });
  };
}

/** Options of {@link wordTokenPositions}. */
export interface WordTokenOptions {
  /** Also the token after each occurrence of the word. */
  readonly withNext?: boolean;
  /**
   * Instead of the word's own tokens, the token after each occurrence (the thing an attribute is said of: "ball" in
   * "a red ball"); an occurrence that ends the caption keeps its own tokens.
   */
  readonly nextOnly?: boolean;
  /** Positions from this one on are dropped (the text encoder's length). */
  readonly maxPositions?: number;
}

/**
 * The positions (0 = the start token) of `word`'s tokens wherever it occurs in `caption`'s tokens, with or instead of
 * the token after each occurrence (`withNext`, `nextOnly`). Positions from `maxPositions` on are dropped.
 */
export function wordTokenPositions(caption: readonly string[], word: readonly string[], options: WordTokenOptions = {}): number[] {
  const found = new Set<number>();
  const limit = options.maxPositions ?? Infinity;
  if (word.length === 0) return [];
  for (let j = 0; j + word.length <= caption.length; j++) {
    if (!word.every((t, o) => caption[j + o] === t)) continue;
    const hasNext = j + word.length < caption.length;
    if (!(options.nextOnly === true && hasNext)) for (let o = 0; o < word.length; o++) found.add(j + o + 1);
    if ((options.withNext === true || options.nextOnly === true) && hasNext) found.add(j + word.length + 1);
  }
  return [...found].filter((p) => p < limit).sort((a, b) => a - b);
}
