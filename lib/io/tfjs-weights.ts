/**
 * Model components in the TensorFlow.js weights format: a `model.json` holding the component's config (what its
 * `config.json` holds) and a standard tfjs `weightsManifest` (`[{paths, weights: [{name, shape, dtype,
 * quantization?}]}]`), and binary shard files (`group1-shard1of3.bin`, ...).
 *
 * As in tfjs, a group's tensors lie back to back in the concatenation of its shard files, in manifest order, and a
 * tensor may straddle two shards. float16 storage is tfjs's `quantization: {dtype: 'float16'}` on a float32
 * weight, dequantised to float32 on reading. Tensor names and shapes are the PyTorch ones of the source checkpoint,
 * so the weight-name maps and loaders read these folders exactly as they read safetensors.
 *
 * The reader validates the whole manifest (dtypes, shapes, unique names, shard files present and exactly as large
 * as the manifest implies) before it trusts any of it, then reads tensor by tensor at their offsets; the writer
 * streams tensor by tensor, so neither ever holds a whole shard or model in memory.
 *
 * One concept a file under `tfjs-weights/`: the manifest (`manifest.ts`), the reader (`reader.ts`), the writer
 * (`writer.ts`, with `shard-writer.ts`, `float16.ts` and `model-json-text.ts`); this module is their public face.
 */
export {
  MODEL_JSON,
  TFJS_WEIGHTS_FORMAT,
  TfjsWeightsError,
  parseTfjsModelJson,
  readTfjsModelJson,
  type TfjsDType,
  type TfjsWeightEntry,
  type TfjsWeightsGroup,
  type TfjsModelJson,
} from './tfjs-weights/manifest.js';
export { TfjsWeights } from './tfjs-weights/reader.js';
export { DEFAULT_SHARD_BYTES, writeTfjsWeights, type TfjsWriteOptions, type TfjsWriteResult } from './tfjs-weights/writer.js';
export { float16BitsInRange } from './tfjs-weights/float16.js';
