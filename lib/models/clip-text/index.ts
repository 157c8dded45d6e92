/**
 * The public API of Stable Diffusion's text side: the CLIP tokenizer, the CLIP text model (config, blocks,
 * weight loading), the tokenizer + model pair, and the text-embedding service built on them.
 */
export { parseClipTextConfig, type ClipTextConfig } from './config.js';
export {
  CLIPTextModel,
  CLIPTextEmbeddings,
  CLIPAttention,
  CLIPMLP,
  CLIPEncoderLayer,
  causalMask,
  endTokenPositions,
  type ClipTextEncodeOptions,
  type ClipTextOutput,
} from './model.js';
export { clipTextWeightMap, loadClipTextWeights, loadClipTextModel, TEXT_MODEL_PREFIX } from './weights.js';
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
export {
  ClipTextEmbedder,
  TEXT_ENCODER_SOURCE,
  TEXT_EMBEDDER_OPTIONS,
  DEFAULT_BATCH_SIZE,
  type TextEncoderSource,
  type TextEmbedderOptions,
  type EmbedOptions,
} from '../../editing/text-embedder.js';
