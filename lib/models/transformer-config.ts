/** The sizes that transformers' encoder configs share (CLIP's text model, BLIP's vision encoder and text decoder). */

/** A stack of transformer layers: width, MLP width, depth, heads, activation and LayerNorm epsilon. */
export interface TransformerStackConfig {
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numHiddenLayers: number;
  readonly numAttentionHeads: number;
  readonly hiddenAct: string;
  readonly layerNormEps: number;
}

/** A transformer stack over tokens: with a vocabulary and learned positions. */
export interface TokenTransformerConfig extends TransformerStackConfig {
  readonly vocabSize: number;
  readonly maxPositionEmbeddings: number;
}
