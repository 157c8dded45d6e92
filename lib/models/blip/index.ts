/** BLIP captioning: the model, its preprocessing, generation and tokenizer (the captioner service is editing's). */
export { type BlipConfig, type BlipTextConfig, type BlipVisionConfig, parseBlipConfig, parseBlipTextConfig, parseBlipVisionConfig } from './config.js';
export { BlipForConditionalGeneration, BlipTextLMHeadModel, BlipVisionModel, type DecoderCache, disposeCache, selectCacheRows } from './model.js';
export { type GenerateOptions, generateCaptionIds } from './generate.js';
export { type BlipImageProcessorConfig, blipPixelValues, parseBlipImageProcessorConfig, tensorToRgb } from './processor.js';
export { BLIP_WEIGHT_MAP, loadBlipModel, loadBlipWeights } from './weights.js';
export { BertTokenizer, bertTokenizerJson } from '../../tokenizers/bert-tokenizer.js';
