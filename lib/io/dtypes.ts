/**
 * The safetensors element types, their sizes, and conversion of their raw little-endian bytes to the
 * typed arrays TensorFlow.js works with (float32 for floats, int32 for integers and booleans).
 */

/** A safetensors dtype name as it appears in a file's header. */
export type SafetensorsDType =
  | 'F64' | 'F32' | 'F16' | 'BF16'
  | 'I64' | 'I32' | 'I16' | 'I8'
  | 'U64' | 'U32' | 'U16' | 'U8'
  | 'BOOL';

/** Bytes per element of every dtype this library reads. */
export const DTYPE_SIZE: Readonly<Record<SafetensorsDType, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2,
  I64: 8, I32: 4, I16: 2, I8: 1,
  U64: 8, U32: 4, U16: 2, U8: 1,
  BOOL: 1,
};

/** Whether a header's dtype string is one this library reads. */
export function isDType(s: unknown): s is SafetensorsDType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s);
}

/** Whether values of this dtype become float32 (true) or int32 (false) on reading. */
export function isFloatDType(d: SafetensorsDType): boolean {
  return d === 'F64' || d === 'F32' || d === 'F16' || d === 'BF16';
}

// float16 -> float32 by table: 65,536 entries computed once (256 KiB), then a lookup per element.
let f16Table: Float32Array | undefined;

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function f16ToF32Table(): Float32Array {
  if (f16Table === undefined) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = halfToFloat(i);
  }
  return f16Table;
}

/**
 * float32 values as float16 bit patterns, rounded to nearest, ties to even, as PyTorch and NumPy do; values beyond
 * the float16 range become infinities, NaN stays NaN. Works on the bits of the whole array at once.
 */
export function floatsToHalfBits(data: Float32Array): Uint16Array {
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const out = new Uint16Array(data.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    const mant = x & 0x7fffff;
    let h: number;
    if (exp === 0xff) {
      h = sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
    } else if (exp > 142) {
      h = sign | 0x7c00; // 2^16 and above
    } else if (exp >= 113) {
      // normal float16: drop 13 mantissa bits, round half to even (a carry into the exponent is correct, up to
      // infinity for 65520 and above)
      const rest = mant & 0x1fff;
      h = ((exp - 112) << 10) | (mant >>> 13);
      if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++;
      h |= sign;
    } else if (exp >= 102) {
      // subnormal float16: q x 2^-24
      const m = mant | 0x800000;
      const shift = 126 - exp;
      const rest = m & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      let q = m >>> shift;
      if (rest > half || (rest === half && (q & 1) === 1)) q++;
      h = sign | q;
    } else {
      h = sign; // below half the smallest subnormal: zero
    }
    out[i] = h;
  }
  return out;
}

/** Rounds one float32 to the nearest float16 bit pattern (see {@link floatsToHalfBits}). */
export function floatToHalfBits(value: number): number {
  return floatsToHalfBits(Float32Array.of(value))[0]!;
}

/** Rounds a float32 to the nearest bfloat16 bit pattern (round half to even), as PyTorch does. */
export function floatToBFloat16Bits(value: number): number {
  const x = new Uint32Array(new Float32Array([value]).buffer)[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/**
 * Converts the raw bytes of `count` elements of `dtype` to float32 (floats) or int32 (integers, booleans).
 * 64-bit integers outside the int32 range cannot be represented and raise an error naming `what`.
 * `bytes` must start at an offset aligned to the element size (the reader allocates it so).
 */
export function decodeElements(
  bytes: Uint8Array,
  dtype: SafetensorsDType,
  count: number,
  what: string,
): Float32Array | Int32Array {
  const buf = bytes.buffer;
  const off = bytes.byteOffset;
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf, off, count);
    case 'F64':
      return Float32Array.from(new Float64Array(buf, off, count));
    case 'F16': {
      const src = new Uint16Array(buf, off, count);
      const table = f16ToF32Table();
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = table[src[i]!]!;
      return out;
    }
    case 'BF16': {
      const src = new Uint16Array(buf, off, count);
      const out = new Uint32Array(count);
      for (let i = 0; i < count; i++) out[i] = src[i]! << 16;
      return new Float32Array(out.buffer);
    }
    case 'I32':
      return new Int32Array(buf, off, count);
    case 'I16':
      return Int32Array.from(new Int16Array(buf, off, count));
    case 'I8':
      return Int32Array.from(new Int8Array(buf, off, count));
    case 'U16':
      return Int32Array.from(new Uint16Array(buf, off, count));
    case 'U8':
    case 'BOOL':
      return Int32Array.from(new Uint8Array(buf, off, count));
    case 'U32': {
      const src = new Uint32Array(buf, off, count);
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        if (src[i]! > 0x7fffffff) throw new Error(`${what}: U32 value ${src[i]} does not fit in int32`);
        out[i] = src[i]!;
      }
      return out;
    }
    case 'I64':
    case 'U64': {
      const src = dtype === 'I64' ? new BigInt64Array(buf, off, count) : new BigUint64Array(buf, off, count);
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const v = src[i]!;
        if (v > 2147483647n || v < -2147483648n) throw new Error(`${what}: ${dtype} value ${v} does not fit in int32`);
        out[i] = Number(v);
      }
      return out;
    }
  }
}
