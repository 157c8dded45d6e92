/** float16 storage of float32 weights, refusing values beyond float16's range instead of storing infinities. */
import { floatsToHalfBits } from '../dtypes.js';

/** The largest float16 value; anything larger rounds to infinity. */
const F16_MAX = 65504;

/**
 * float32 values as float16 bit patterns ({@link floatsToHalfBits}); a finite value beyond the float16 range is an
 * error naming `what`, never a silent infinity.
 */
export function float16BitsInRange(data: Float32Array, what = 'tensor'): Uint16Array {
  const out = floatsToHalfBits(data);
  for (let i = 0; i < out.length; i++) {
    if ((out[i]! & 0x7fff) === 0x7c00 && Number.isFinite(data[i]!)) {
      throw new Error(`${what}: value ${data[i]} is beyond the float16 range (±${F16_MAX}); convert with --dtype float32`);
    }
  }
  return out;
}
