/**
 * The public API of Stable Diffusion's text side: the CLIP tokenizer, the CLIP text model (config, blocks,
 * weight loading) and the tokenizer + model pair. The text-embedding service built on them is editing's
 * (`editing/text-embedder.ts`).
 */
export { parseClipTextConfig, type ClipTextConfig } from './config.js';
export {
  CLIPTextModel,
  loadClipTextModel,
  CLIPTextEmbeddings,
  CLIPAttention,
  CLIPMLP,
  CLIPEncoderLayer,
  causalMask,
  endTokenPositions,
  type ClipTextEncodeOptions,
  type ClipTextOutput,
} from './model.js';
export { clipTextWeightMap, loadClipTextWeights, TEXT_MODEL_PREFIX } from './weights.js';
export { ClipTextEncoder, readClipTextFolder, type ClipTextFolder } from './text-encoder.js';
export {
  ClipTokenizer,
  bytesToUnicode,
  clipVocabFromMerges,
  clipNormalize,
  parseMerges,
  readOpenClipBpe,
  resolveClipSpecialTokens,
  CLIP_BOS,
  CLIP_EOS,
  CLIP_NUM_MERGES,
  END_OF_WORD,
  type ClipEncodeOptions,
  type ClipEncoding,
  type ClipSpecialTokens,
  type ClipTokenizerOptions,
  type Merge,
} from '../../tokenizers/clip-tokenizer.js';
