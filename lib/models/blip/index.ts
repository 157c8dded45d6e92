/** BLIP captioning: the model, its preprocessing, generation, tokenizer and the captioner service. */
export { type BlipConfig, type BlipTextConfig, type BlipVisionConfig, parseBlipConfig, parseBlipTextConfig, parseBlipVisionConfig } from './config.js';
export { BlipForConditionalGeneration, BlipTextLMHeadModel, BlipVisionModel, type DecoderCache, disposeCache, selectCacheRows } from './model.js';
export { type GenerateOptions, generateCaptionIds } from './generate.js';
export { type BlipImageProcessorConfig, blipPixelValues, parseBlipImageProcessorConfig, tensorToRgb } from './processor.js';
export { BLIP_WEIGHT_MAP, loadBlipModel, loadBlipWeights } from './weights.js';
export { BertTokenizer, bertTokenizerJson } from '../../tokenizers/bert-tokenizer.js';
export { AUTHORS_CAPTION_OPTIONS, BlipCaptioner, blipCaptionerFactory, type CaptionOptions, type CaptionResult } from '../../editing/captioner.js';
