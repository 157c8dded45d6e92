/**
 * A random generator that reproduces PyTorch's CPU `torch.Generator` for the draws this library needs, so that a
 * seed gives the same numbers here as in the reference implementations: the Mersenne Twister (MT19937) seeded as
 * `torch.Generator().manual_seed(seed)` does, and `torch.randint(high, (1,), generator=g)`.
 */

const N = 624;
const M = 397;

export class TorchGenerator {
  private readonly mt = new Uint32Array(N);
  private index = N;

  /** Seeds like `manual_seed(seed)`: the low 32 bits initialise the twister. */
  constructor(readonly seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`seed must be a non-negative integer, got ${seed}`);
    this.mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = this.mt[i - 1]! ^ (this.mt[i - 1]! >>> 30);
      // 1812433253 * prev + i, modulo 2^32, without losing bits to float rounding.
      this.mt[i] = (((((prev & 0xffff0000) >>> 16) * 1812433253) << 16) + (prev & 0x0000ffff) * 1812433253 + i) >>> 0;
    }
  }

  private twist(): void {
    const mt = this.mt;
    for (let i = 0; i < N; i++) {
      const y = (mt[i]! & 0x80000000) | (mt[(i + 1) % N]! & 0x7fffffff);
      mt[i] = mt[(i + M) % N]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    this.index = 0;
  }

  /** The next 32-bit output (PyTorch's `generator->random()`). */
  random32(): number {
    if (this.index >= N) this.twist();
    let y = this.mt[this.index++]!;
    y ^= y >>> 11;
    y = (y ^ ((y << 7) & 0x9d2c5680)) >>> 0;
    y = (y ^ ((y << 15) & 0xefc60000)) >>> 0;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /**
   * `torch.randint(high, (1,), generator=g).item()`: an integer in [0, high), from one 32-bit output modulo
   * `high`. Limited to high <= 2^24 (PyTorch draws larger ranges differently; this library needs small ones).
   */
  randint(high: number): number {
    if (!Number.isInteger(high) || high <= 0 || high > 2 ** 24) throw new Error(`randint: high must be an integer in [1, 2^24], got ${high}`);
    return this.random32() % high;
  }
}
