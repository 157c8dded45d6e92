/** BLIP captioning: the model, its preprocessing, generation and tokenizer (the captioner service is editing's). */
export { type BlipConfig, type BlipTextConfig, type BlipVisionConfig, parseBlipConfig, parseBlipTextConfig, parseBlipVisionConfig } from './config.js';
export { BlipForConditionalGeneration, loadBlipModel } from './model.js';
export { BlipVisionModel } from './vision-model.js';
export { BlipTextLMHeadModel } from './text-decoder.js';
export { type DecoderCache, type KeyValues, disposeCache, selectCacheRows } from './kv-cache.js';
export { type GenerateOptions, generateCaptionIds } from './generate.js';
export { type BlipImageProcessorConfig, blipPixelValues, parseBlipImageProcessorConfig, tensorToRgb } from './processor.js';
export { BLIP_WEIGHT_MAP, loadBlipWeights } from './weights.js';
export { BertTokenizer, bertTokenizerJson } from '../../tokenizers/bert-tokenizer.js';
