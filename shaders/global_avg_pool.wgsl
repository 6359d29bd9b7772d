// Global average pooling: x [N,C,H,W] → y [N,C], NCHW row-major f32; planes = N·C, HW = H·W,
// plane p = n·C + c holds x[p·HW, (p + 1)·HW).
//   forward:  y[p] = (Σ_j x[p·HW + j]) / HW
//   backward: dL/dx[p·HW + j] = dy[p] / HW
// Bindings: 1 src (x or dy, read), 2 dst (y or dx, written; backward adds into it when P.accumulate ≠ 0).
// Dispatch:
//   forward:  one workgroup of WG threads per plane (64 on a GPU, 16 on a CPU adapter: GpuTuning.treeThreads),
//             planes workgroups as a 2-D grid (grid() in runtime.ts), p = wg.x + wg.y·nwg.x. Thread t sums
//             j = t, t + WG, … in order, then a fixed tree: deterministic.
//   backward: one thread per element of x, 64 per workgroup, Gpu.spread(planes·HW) workgroups;
//             grid-stride loops over i (lib/stride.wgsl, prepended by the loader).

struct Params { planes: u32, hw: u32, accumulate: u32 }
@group(0) @binding(0) var<uniform> P: Params;

@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

// A power of two, at most the tree's 64 slots.
override WG: u32 = 64u;
var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) t: u32) {
  // p is uniform across the workgroup, so every thread reaches the barriers or none does.
  let p = wg.x + wg.y * nwg.x;
  if (p >= P.planes) { return; }
  let base = p * P.hw;
  var s = 0.0;
  for (var j = t; j < P.hw; j += WG) { s += src[base + j]; }
  red[t] = s;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (t < h) { red[t] += red[t + h]; }
    workgroupBarrier();
  }
  if (t == 0u) { dst[p] = red[0] / f32(P.hw); }
}

@compute @workgroup_size(64)
fn backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) li: u32) {
  for (var i = element0(wg, nwg, li); i < P.planes * P.hw; i += stride(nwg)) {
    var v = src[i / P.hw] / f32(P.hw);
    if (P.accumulate != 0u) { v += dst[i]; }
    dst[i] = v;
  }
}
