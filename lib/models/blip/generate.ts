/**
 * Caption generation as transformers' `BlipForConditionalGeneration.generate()` does it (transformers 5.x):
 * greedy search, or beam search with `num_beams`, `min_length`, `max_new_tokens`, `repetition_penalty`,
 * `length_penalty` and `early_stopping`, ending at the decoder's `sep_token_id`. The decoder keeps a key/value
 * cache, so each new token costs one position; beam search reorders the cache rows after every step.
 *
 * Scores are handled in float32 as PyTorch does (`Math.fround`), so that ties and the -1e9 sentinels order alike.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type DecoderCache, disposeCache } from './kv-cache.js';
import type { BlipForConditionalGeneration } from './model.js';

/** Options of {@link generateCaptionIds} (transformers' names in brackets). */
export interface GenerateOptions {
  /** Beams (`num_beams`, default 1: greedy). */
  readonly numBeams?: number;
  /** New tokens at most (`max_new_tokens`); default: up to 20 tokens in all, prompt included (`max_length=20`). */
  readonly maxNewTokens?: number;
  /** The end token is forbidden while the sequence, prompt included, is shorter than this (`min_length`, default 0). */
  readonly minLength?: number;
  /** Penalty of tokens already in the sequence (`repetition_penalty`, default 1: none). */
  readonly repetitionPenalty?: number;
  /** Beam scores are divided by length ** lengthPenalty (`length_penalty`, default 1). */
  readonly lengthPenalty?: number;
  /** Beam search stopping (`early_stopping`, default false). */
  readonly earlyStopping?: boolean | 'never';
}

const NEG = -1e9;
const f32 = Math.fround;

function checkOptions(o: GenerateOptions): void {
  const int = (name: string, v: number | undefined, min: number): void => {
    if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new Error(`caption generation: ${name} must be an integer >= ${min}, got ${v}`);
  };
  int('numBeams', o.numBeams, 1);
  int('maxNewTokens', o.maxNewTokens, 1);
  int('minLength', o.minLength, 0);
  if (o.repetitionPenalty !== undefined && !(o.repetitionPenalty > 0)) {
    throw new Error(`caption generation: repetitionPenalty must be a positive number, got ${o.repetitionPenalty}`);
  }
  if (o.lengthPenalty !== undefined && !Number.isFinite(o.lengthPenalty)) throw new Error(`caption generation: lengthPenalty must be a finite number, got ${o.lengthPenalty}`);
}

/** The logits processors transformers runs for these options: repetition penalty, then min length. */
function process(scores: Float32Array, seq: readonly number[], o: GenerateOptions, eos: number): void {
  const p = o.repetitionPenalty ?? 1;
  if (p !== 1) {
    for (const t of new Set(seq)) {
      const s = scores[t]!;
      scores[t] = s < 0 ? f32(s * p) : f32(s / p);
    }
  }
  if (seq.length < (o.minLength ?? 0)) scores[eos] = -Infinity;
}

function logSoftmax(row: Float32Array): Float32Array {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return row.map((v) => f32(v - lse));
}

/** Runs the decoder on `rows` of ids [B, L]; returns the last position's logits per row and the new cache. */
function decode(model: BlipForConditionalGeneration, rows: number[][], cache: DecoderCache): { last: Float32Array[]; cache: DecoderCache } {
  const ids = tf.tensor2d(rows, [rows.length, rows[0]!.length], 'int32');
  const out = model.textDecoder.step(ids, cache);
  ids.dispose();
  const [b, l, v] = out.logits.shape;
  const lastT = tf.tidy(() => tf.reshape(tf.slice(out.logits, [0, l - 1, 0], [b, 1, v]), [b, v]));
  const data = lastT.dataSync() as Float32Array;
  tf.dispose([lastT, out.logits]);
  return { last: Array.from({ length: b }, (_, i) => data.slice(i * v, (i + 1) * v)), cache: out.cache };
}

/**
 * The token ids of the caption of one image, prompt included, as `generate()` returns them.
 * @param imageEmbeds the vision features of one image, [1, patches + 1, hidden].
 * @param promptIds the decoder's start: `[bos]`, or `[bos, ...prompt tokens]` (BLIP replaces the tokenizer's
 *   `[CLS]` with `bos` and drops the final `[SEP]`).
 */
export function generateCaptionIds(
  model: BlipForConditionalGeneration,
  imageEmbeds: tf.Tensor3D,
  promptIds: readonly number[],
  options: GenerateOptions = {},
): number[] {
  checkOptions(options);
  if (imageEmbeds.rank !== 3 || imageEmbeds.shape[0] !== 1) throw new Error(`caption generation: image features must be [1, tokens, hidden], got [${imageEmbeds.shape.join(', ')}]`);
  if (promptIds.length === 0) throw new Error('caption generation: the prompt ids are empty (expected at least the bos token)');
  const cfg = model.config.text;
  const vocab = cfg.vocabSize;
  for (const id of promptIds) if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new Error(`caption generation: prompt id ${id} is outside the vocabulary (${vocab})`);
  const eos = cfg.sepTokenId;
  const promptLen = promptIds.length;
  const maxLength = options.maxNewTokens !== undefined ? promptLen + options.maxNewTokens : 20;
  if (maxLength > cfg.maxPositionEmbeddings) {
    throw new Error(`caption generation: ${maxLength} tokens exceed the decoder's max_position_embeddings (${cfg.maxPositionEmbeddings})`);
  }
  if (promptLen >= maxLength) return [...promptIds];
  const k = options.numBeams ?? 1;
  return k === 1 ? greedy(model, imageEmbeds, promptIds, options, maxLength, eos) : beam(model, imageEmbeds, promptIds, options, maxLength, eos, k);
}

function greedy(model: BlipForConditionalGeneration, embeds: tf.Tensor3D, prompt: readonly number[], o: GenerateOptions, maxLength: number, eos: number): number[] {
  const seq = [...prompt];
  let { last, cache } = decode(model, [seq], model.textDecoder.startCache(embeds));
  try {
    for (;;) {
      const scores = last[0]!;
      process(scores, seq, o, eos);
      let best = 0;
      for (let i = 1; i < scores.length; i++) if (scores[i]! > scores[best]!) best = i;
      seq.push(best);
      if (best === eos || seq.length >= maxLength) return seq;
      ({ last, cache } = decode(model, [[best]], cache));
    }
  } finally {
    disposeCache(cache);
  }
}

/**
 * Indices of the `n` largest values, largest first (stable for ties: lower index first), by one pass that keeps the
 * best `n` in order (the beams' candidates: n = 2 x beams of beams x vocabulary values, where a full sort took
 * tens of milliseconds a step). NaN counts as the smallest value.
 */
export function topK(values: ArrayLike<number>, n: number): number[] {
  const best: number[] = [];
  const better = (i: number, j: number): boolean => values[i]! > values[j]! || (Number.isNaN(values[j]!) && !Number.isNaN(values[i]!));
  for (let i = 0; i < values.length; i++) {
    if (best.length === n && !better(i, best[n - 1]!)) continue;
    let pos = Math.min(best.length, n - 1);
    while (pos > 0 && better(i, best[pos - 1]!)) pos--;
    if (best.length === n) best.pop();
    best.splice(pos, 0, i);
  }
  return best;
}

function beam(
  model: BlipForConditionalGeneration,
  embeds: tf.Tensor3D,
  prompt: readonly number[],
  o: GenerateOptions,
  maxLength: number,
  eos: number,
  k: number,
): number[] {
  const lp = o.lengthPenalty ?? 1;
  const early = o.earlyStopping ?? false;
  const keep = 2 * k;
  let running: number[][] = Array.from({ length: k }, () => [...prompt]);
  let runScores: number[] = Array.from({ length: k }, (_, i) => (i === 0 ? 0 : NEG));
  let finished: number[][] = Array.from({ length: k }, () => []);
  let finScores: number[] = Array.from({ length: k }, () => NEG);
  let finFlags = Array.from({ length: k }, () => false);
  let unsatisfied = true;
  let curLen = prompt.length;

  let cache: DecoderCache = model.textDecoder.startCache(embeds, k);
  let last: Float32Array[];
  ({ last, cache } = decode(model, running, cache));
  try {
    for (;;) {
      const vocab = last[0]!.length;
      const acc = new Float32Array(k * vocab);
      running.forEach((seq, b) => {
        const lpRow = logSoftmax(last[b]!);
        process(lpRow, seq, o, eos);
        for (let t = 0; t < vocab; t++) acc[b * vocab + t] = f32(lpRow[t]! + runScores[b]!);
      });
      const cand = topK(acc, keep).map((i) => {
        const src = Math.floor(i / vocab);
        const token = i % vocab;
        const seq = [...running[src]!, token];
        return { src, seq, score: acc[i]!, hits: token === eos || seq.length >= maxLength };
      });
      // The next running beams: the best candidates that did not stop.
      const runCand = cand.map((c) => f32(c.score + (c.hits ? NEG : 0)));
      const next = topK(runCand, k);
      const sources = next.map((j) => cand[j]!.src);
      running = next.map((j) => cand[j]!.seq);
      runScores = next.map((j) => runCand[j]!);
      // The finished hypotheses: the best of those kept and the candidates among the top k that just stopped.
      const full = finFlags.every(Boolean) && early === true;
      const norm = (curLen + 1 - prompt.length) ** lp;
      const candFin = cand.map((c, j) => {
        let s = f32(c.score / norm);
        if (full) s = f32(s + NEG);
        if (!unsatisfied) s = f32(s + NEG);
        if (!(c.hits && j < k)) s = f32(s + NEG);
        return s;
      });
      const mergedScores = [...finScores, ...candFin];
      const mergedSeqs = [...finished, ...cand.map((c) => c.seq)];
      const mergedFlags = [...finFlags, ...cand.map((c, j) => c.hits && j < k)];
      const best = topK(mergedScores, k);
      finished = best.map((j) => mergedSeqs[j]!);
      finScores = best.map((j) => mergedScores[j]!);
      finFlags = best.map((j) => mergedFlags[j]!);
      curLen += 1;
      // Early-stop heuristic (transformers' _check_early_stop_heuristic).
      const bestLen = early === 'never' && lp > 0 ? maxLength - prompt.length : curLen - prompt.length;
      const bestPossible = f32(runScores[0]! / bestLen ** lp);
      const worst = Math.min(...finScores);
      unsatisfied = unsatisfied && finFlags.some((f) => !f || bestPossible > worst);
      const allDone = finFlags.every(Boolean) && early === true;
      if (!unsatisfied || allDone || cand.every((c) => c.hits)) break;
      // Reorder the self-attention cache rows to the chosen beams, then feed their last tokens.
      const idx = tf.tensor1d(sources, 'int32');
      const self = cache.self.map((kv) => ({ k: tf.gather(kv.k, idx), v: tf.gather(kv.v, idx) }));
      idx.dispose();
      for (const kv of cache.self) tf.dispose([kv.k, kv.v]);
      cache = { length: cache.length, self, cross: cache.cross };
      ({ last, cache } = decode(model, running.map((s) => [s[s.length - 1]!]), cache));
    }
  } finally {
    disposeCache(cache);
  }
  return finished[0]!;
}
