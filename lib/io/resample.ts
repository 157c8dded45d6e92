/**
 * Image resampling that reproduces Pillow's `Image.resize` for 8-bit images bit for bit: separable
 * convolution with the filter stretched by the scale when reducing (antialiasing), Pillow's support and
 * centre rules, fixed-point coefficients with 22 fractional bits, a horizontal pass rounded to 8 bits, then a
 * vertical pass. The reference pipelines resize with Pillow (Lanczos for the input image, bicubic in BLIP's
 * image processor), so matching it keeps our inputs identical to theirs.
 */

/** A resampling filter, by Pillow's name. */
export type ResampleFilter = 'nearest' | 'bilinear' | 'bicubic' | 'lanczos';

interface Filter {
  support: number;
  fn: (x: number) => number;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

const FILTERS: Record<Exclude<ResampleFilter, 'nearest'>, Filter> = {
  bilinear: { support: 1, fn: (x) => (x < 0 ? -x : x) < 1 ? 1 - Math.abs(x) : 0 },
  bicubic: {
    support: 2,
    fn: (x0) => {
      const a = -0.5;
      const x = Math.abs(x0);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  lanczos: { support: 3, fn: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

const PRECISION_BITS = 32 - 8 - 2;

/** Per output pixel: the first input index and the fixed-point weights of the inputs it reads. */
interface Coefficients {
  start: Int32Array;
  count: Int32Array;
  weights: Int32Array;
  ksize: number;
}

function coefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterScale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? k[x]! / ww : k[x]!;
      // C's (int) truncates toward zero after the +-0.5.
      weights[xx * ksize + x] = Math.trunc(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
    }
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return { start, count, weights, ksize };
}

function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** An interleaved 8-bit image: `channels` values per pixel, rows top to bottom. */
export interface PixelBuffer {
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  readonly data: Uint8Array;
}

function horizontal(src: PixelBuffer, outW: number, c: Coefficients): PixelBuffer {
  const { height, width, channels: ch, data } = src;
  const out = new Uint8Array(outW * height * ch);
  for (let y = 0; y < height; y++) {
    const row = y * width * ch;
    for (let xx = 0; xx < outW; xx++) {
      const s = c.start[xx]!;
      const n = c.count[xx]!;
      const kb = xx * c.ksize;
      for (let b = 0; b < ch; b++) {
        let acc = 1 << (PRECISION_BITS - 1);
        for (let x = 0; x < n; x++) acc += data[row + (s + x) * ch + b]! * c.weights[kb + x]!;
        out[(y * outW + xx) * ch + b] = clip8(acc);
      }
    }
  }
  return { width: outW, height, channels: ch, data: out };
}

function vertical(src: PixelBuffer, outH: number, c: Coefficients): PixelBuffer {
  const { width, channels: ch, data } = src;
  const stride = width * ch;
  const out = new Uint8Array(outH * stride);
  for (let yy = 0; yy < outH; yy++) {
    const s = c.start[yy]!;
    const n = c.count[yy]!;
    const kb = yy * c.ksize;
    for (let i = 0; i < stride; i++) {
      let acc = 1 << (PRECISION_BITS - 1);
      for (let y = 0; y < n; y++) acc += data[(s + y) * stride + i]! * c.weights[kb + y]!;
      out[yy * stride + i] = clip8(acc);
    }
  }
  return { width, height: outH, channels: ch, data: out };
}

function nearest(src: PixelBuffer, outW: number, outH: number): PixelBuffer {
  const { width, height, channels: ch, data } = src;
  const out = new Uint8Array(outW * outH * ch);
  for (let y = 0; y < outH; y++) {
    const sy = Math.min(Math.floor((y + 0.5) * (height / outH)), height - 1);
    for (let x = 0; x < outW; x++) {
      const sx = Math.min(Math.floor((x + 0.5) * (width / outW)), width - 1);
      for (let b = 0; b < ch; b++) out[(y * outW + x) * ch + b] = data[(sy * width + sx) * ch + b]!;
    }
  }
  return { width: outW, height: outH, channels: ch, data: out };
}

/** Resizes `src` to `width` x `height` with Pillow's algorithm for `filter` (default Lanczos). */
export function resample(src: PixelBuffer, width: number, height: number, filter: ResampleFilter = 'lanczos'): PixelBuffer {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new Error(`resize: target size ${width}x${height} must be positive integers`);
  }
  if (width === src.width && height === src.height) return src;
  if (filter === 'nearest') return nearest(src, width, height);
  const f = FILTERS[filter];
  let img = src;
  if (width !== src.width) img = horizontal(img, width, coefficients(src.width, width, f));
  if (height !== src.height) img = vertical(img, height, coefficients(src.height, height, f));
  return img;
}
