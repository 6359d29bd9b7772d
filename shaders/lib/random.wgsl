// Counter-based random numbers: a pure function of (seed, counter, index), so a kernel and its
// backward (or a re-run with the same seed) draw the same values with no state kept.
// CPU mirror: src/util/hash.ts. Prepended by the loader to the shaders that use it.

// PCG-style 32-bit permutation (one LCG step and an xorshift-multiply output).
fn pcg_hash(x: u32) -> u32 {
  let state = x * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn rand_u32(seed: u32, counter: u32, index: u32) -> u32 {
  return pcg_hash(pcg_hash(pcg_hash(seed) ^ counter) ^ index);
}

// Uniform in [0, 1) with 24 random bits (exactly representable in f32).
fn rand01(seed: u32, counter: u32, index: u32) -> f32 {
  return f32(rand_u32(seed, counter, index) >> 8u) * (1.0 / 16777216.0);
}
