// CPU mirror of shaders/lib/random.wgsl: the same numbers, bit for bit, for references and tests.

export function pcgHash(x: number): number {
  const state = (Math.imul(x >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

export function randU32(seed: number, counter: number, index: number): number {
  return pcgHash((pcgHash((pcgHash(seed) ^ counter) >>> 0) ^ index) >>> 0);
}

/** Uniform in [0, 1), as the shader computes it. */
export function rand01(seed: number, counter: number, index: number): number {
  return (randU32(seed, counter, index) >>> 8) / 16777216;
}
