// Inverted dropout (Keras): dst = src · keep / (1 − rate), keep_i = rand01(seed, counter[0], i) ≥ rate.
// Backward is the same map on dy, the mask recomputed from (seed, counter, i) so none is stored:
//   dL/dx = dy · keep / (1 − rate)
// count elements in any layout: i is the flat element index. seed is per layer; counter[0] is the
// global training step, kept on the GPU so steps recorded in one submit draw different masks.
// Uses dropout() from lib/random.wgsl (CPU mirror: src/util/hash.ts), prepended by the loader.
// Bindings: 1 src (read), 2 counter (read, u32), 3 dst (read_write; += when P.accumulate ≠ 0).
//   src and dst must be different buffers (no in-place dropout).
// Dispatch: Gpu.spread(count) workgroups of 64; grid-stride loops over i (lib/stride.wgsl,
//   prepended by the loader).

struct Params { count: u32, seed: u32, rate: f32, scale: f32, accumulate: u32 }
@group(0) @binding(0) var<uniform> P: Params;

@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> counter: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  for (var i = element0(wg, nwg, li); i < P.count; i += stride(nwg)) {
    var v = dropout(P.seed, counter[0], i, P.rate, P.scale, src[i]);
    if (P.accumulate != 0u) { v += dst[i]; }
    dst[i] = v;
  }
}
