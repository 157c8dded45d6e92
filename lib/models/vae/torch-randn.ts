/**
 * `torch.randn` of PyTorch's CPU generator, for float32 tensors, so that a seed draws the same standard normal
 * noise here as `torch.randn(shape, generator=torch.Generator().manual_seed(seed))` does in the reference
 * (diffusers' `DiagonalGaussianDistribution.sample(generator)` draws its noise that way on the CPU).
 *
 * PyTorch (ATen `normal_kernel`, CPU): a contiguous tensor of >= 16 elements is filled with float uniforms
 * `(random32 & (2^24 - 1)) / 2^24`, then transformed 16 at a time by Box-Muller (`u1 = 1 - x[j]`, `u2 = x[j + 8]`,
 * `x[j] = r cos(2 pi u2)`, `x[j + 8] = r sin(2 pi u2)`, `r = sqrt(-2 log u1)`), and when the size is not a
 * multiple of 16 the last 16 values are redrawn from 16 new uniforms. Smaller tensors draw each value in double
 * precision from two 53-bit uniforms (`r = sqrt(-2 log1p(-u2))`, `theta = 2 pi u1`, cos first, sin cached for
 * the next value).
 *
 * Values agree with PyTorch's to float32 rounding (its vectorised log/sin/cos differ from JavaScript's in the last
 * bit or two), not bit for bit. One difference: PyTorch keeps the cached second value of the small-tensor path in
 * the generator for its next draw; here it lives only within one call.
 */
import type { TorchGenerator } from '../../random/torch-generator.js';

const TWO_PI_F = Math.fround(2 * Math.PI);
const F24 = 2 ** -24;

/** A double uniform in [0, 1) from 53 bits of `random64()` (two 32-bit outputs, the first the high half). */
function uniform53(gen: TorchGenerator): number {
  const hi = gen.random32();
  const lo = gen.random32();
  return ((hi & 0x1fffff) * 2 ** 32 + lo) * 2 ** -53;
}

function boxMuller16(data: Float32Array, at: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = Math.fround(1 - data[at + j]!);
    const u2 = data[at + j + 8]!;
    const radius = Math.fround(Math.sqrt(Math.fround(-2 * Math.fround(Math.log(u1)))));
    const theta = Math.fround(TWO_PI_F * u2);
    data[at + j] = Math.fround(radius * Math.fround(Math.cos(theta)));
    data[at + j + 8] = Math.fround(radius * Math.fround(Math.sin(theta)));
  }
}

/**
 * `count` standard normal float32 values, in the order `torch.randn` fills a contiguous tensor of that many
 * elements (for an NCHW shape: batch, channel, row, column), advancing `gen` as PyTorch advances its generator.
 */
export function torchRandn(gen: TorchGenerator, count: number): Float32Array {
  if (!Number.isSafeInteger(count) || count < 0) throw new Error(`torchRandn: count must be a non-negative integer, got ${count}`);
  const data = new Float32Array(count);
  if (count >= 16) {
    for (let i = 0; i < count; i++) data[i] = (gen.random32() & 0xffffff) * F24;
    for (let i = 0; i + 16 <= count; i += 16) boxMuller16(data, i);
    if (count % 16 !== 0) {
      const at = count - 16;
      for (let j = 0; j < 16; j++) data[at + j] = (gen.random32() & 0xffffff) * F24;
      boxMuller16(data, at);
    }
    return data;
  }
  let cached: number | undefined;
  for (let i = 0; i < count; i++) {
    if (cached !== undefined) {
      data[i] = cached;
      cached = undefined;
      continue;
    }
    const u1 = uniform53(gen);
    const u2 = uniform53(gen);
    const r = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = 2 * Math.PI * u1;
    cached = r * Math.sin(theta);
    data[i] = r * Math.cos(theta);
  }
  return data;
}
