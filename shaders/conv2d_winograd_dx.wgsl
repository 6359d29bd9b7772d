// Conv2d backward to the input of a 3×3, stride-1 conv by Winograd's F(2×2, 3×3), fused whole
// (lib/winograd_conv.wgsl):
//   dL/dx[n,c,iy,ix] = Σ_{k,ky,kx} dy[n,k,iy + padTop − ky, ix + padLeft − kx] · w[k,c,ky,kx],
// the correlation of dy (CIN = K, IH×IW = OH×OW) with the flipped, transposed filters
// g[c, k, a, b] = w[k, c, 2 − a, 2 − b] (COUT = C, output H×W), padded 2 − padTop and 2 − padLeft before.
// dy [N,K,OH,OW], w [K,C,3,3], dx [N,C,H,W], NCHW row-major f32 (lib/conv.wgsl P, the conv's shape).
// Each value goes out through dx_put: lib/conv_dx_out.wgsl (module conv2d_winograd_dx: overwritten,
// or added to when ACCUM), or lib/conv_dx_chain.wgsl (module conv2d_winograd_dx_chain: the backward
// chain below this conv run as the values are stored, lib/chain_store.wgsl; its bindings 6 counter,
// 7 saved, 8 argmax or term).
// Entry main: 0 params, 1 dy, 2 w, 3 dx. Dispatch: lib/winograd_conv.wgsl's, COUT = C.

override ACCUM: bool = false;

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

fn wino_geom() -> WinoGeom {
  return WinoGeom(P.k, P.c, P.oh, P.ow, P.h, P.w, 2u - P.pad_top, 2u - P.pad_left);
}

fn wino_in(i: u32) -> f32 {
  return dy[i];
}

// g[c, k, ky, 0 … 2] = w[k, c, 2 − ky, 2 … 0].
fn wino_filter_row(c: u32, k: u32, ky: u32) -> vec3<f32> {
  let base = (k * P.c + c) * 9u + 3u * (2u - ky);
  return vec3(wt[base + 2u], wt[base + 1u], wt[base]);
}

fn wino_store(c: u32, n: u32, iy: u32, ix: u32, v: vec4<f32>) {
  let plane = (n * P.c + c) * P.h;
  for (var ry = 0u; ry < 2u; ry++) {
    for (var rx = 0u; rx < 2u; rx++) {
      if (iy + ry < P.h && ix + rx < P.w) { dx_put((plane + iy + ry) * P.w + ix + rx, v[2u * ry + rx]); }
    }
  }
}

@compute @workgroup_size(WINO_THREADS)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  wino_main(wg, nwg, li);
}
