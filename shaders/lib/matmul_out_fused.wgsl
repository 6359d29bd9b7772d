// C's store of a dense layer's forward with its dropout in the epilogue (the planner's fusion,
// src/graph/fuse.ts), prepended in place of lib/matmul_out.wgsl: at element i = m·N + n, C as the plain
// kernel writes it, and epi[i] = C[i] · keep(i) / (1 − rate), keep(i) = rand01(seed, counter[0], i) ≥ rate:
// bit for bit shaders/dropout.wgsl run on C.
// Bindings 6 counter (u32, word 0 the step) and 7 epi (the dropped output, written).

@group(0) @binding(6) var<storage, read> counter: array<u32>;
@group(0) @binding(7) var<storage, read_write> epi: array<f32>;

fn mm_store(i: u32, col: u32, v: f32) {
  let x = mm_value(i, col, v);
  c[i] = x;
  epi[i] = dropout(P.seed, counter[0], i, P.rate, P.scale, x);
}
