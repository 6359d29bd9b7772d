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

// Inverted dropout of value v at element index of step `step`: v · scale where
// rand01(seed, step, index) ≥ rate (kept), else 0. scale = 1 / (1 − rate), computed on the CPU
// (src/ops/dropout.ts dropoutUniform); CPU reference: src/ops/dropout.ref.ts. The one mask of
// shaders/dropout.wgsl, chain.wgsl and the fused epilogues (lib/conv_out_pool.wgsl,
// lib/matmul_out_fused.wgsl, lib/chain_store.wgsl), so they all draw the same bits.
fn dropout(seed: u32, step: u32, index: u32, rate: f32, scale: f32, v: f32) -> f32 {
  var r = 0.0;
  if (rand01(seed, step, index) >= rate) { r = v * scale; }
  return r;
}
