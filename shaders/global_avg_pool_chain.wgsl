// Global average pooling's backward running the backward chain of the layers below it as it stores
// (src/graph/fuse.ts: a chain whose reader is this pooling; src/ops/global_pool.ts): the value at element
// i of dX, dy[i / HW] / HW as shaders/global_avg_pool.wgsl backward writes it, is the chain's output
// gradient there, and dz (binding 2) is the chain's input gradient, which chain_store (lib/chain_store.wgsl)
// writes; dX itself is never written. No accumulation.
// Bindings: 1 dy (read), 2 dz (written); 6 counter, 7 saved, 8 argmax or term as lib/chain_store.wgsl lists.
// Dispatch: one thread per element of dX, 64 per workgroup, Gpu.spread(planes·HW) workgroups; grid-stride
// loops over i (lib/stride.wgsl). Uses lib/random.wgsl, lib/activation.wgsl, lib/pool_geom.wgsl and
// lib/chain_store.wgsl, prepended by the loader.

struct Params {
  planes: u32, hw: u32, seed: u32, rate: f32, scale: f32,
  pool_h: u32, pool_w: u32, pool_oh: u32, pool_ow: u32, pool_kh: u32, pool_kw: u32,
  pool_sh: u32, pool_sw: u32, pool_pad_top: u32, pool_pad_left: u32,
}
@group(0) @binding(0) var<uniform> P: Params;

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dz: array<f32>;

fn chain_put(k: u32, v: f32) {
  dz[k] = v;
}

@compute @workgroup_size(64)
fn backward_chain(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) li: u32) {
  for (var i = element0(wg, nwg, li); i < P.planes * P.hw; i += stride(nwg)) {
    chain_store(i, dy[i / P.hw] / f32(P.hw));
  }
}
