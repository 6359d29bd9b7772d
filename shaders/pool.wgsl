// Max and average pooling, Keras/TF 'same'/'valid' windows (geometry: src/ops/geometry.ts).
// N batch, C channels, planes = N·C; H×W input, OH×OW output, KH×KW window, SH×SW stride,
// pad_top/pad_left the padding before (TF: the smaller half). x, dx are [N,C,H,W]; y, dy, argmax are
// [N,C,OH,OW]; NCHW row-major f32 (argmax u32).
// Output (p, oy, ox) covers input rows oy·SH − pad_top + [0, KH) and columns ox·SW − pad_left + [0, KW),
// clipped to the real input: padded cells never win the max and never count in the average. Every
// window keeps ≥ 1 real cell ('same': pad_top < KH and (OH − 1)·SH < H).
//   max_forward:  y = max of the real cells; argmax = iy·W + ix, the index within the input plane of
//                 the first maximum in row-major window order (ties: the earliest cell wins).
//   max_backward: dL/dx[p,iy,ix] = Σ dy[p,o] over the windows o whose argmax is (iy, ix)
//   max_backward_blocks: the same when windows do not overlap (SH ≥ KH, SW ≥ KW, as in `pool 2`):
//                 one thread per output o writes its block of the input, rows
//                 [block_start(oy), block_start(oy + 1)) (from 0 for the first, to H for the last;
//                 columns alike), which holds its window: dy[p,o] at the argmax, 0 elsewhere
//                 (only the argmax, added, when P.accumulate ≠ 0). The blocks partition the plane,
//                 so every cell is written once with no search and no division per input element.
//   avg_forward:  y = (Σ real cells) / cnt, cnt = number of real cells in the window (TF 'same')
//   avg_backward: dL/dx[p,iy,ix] = Σ dy[p,o] / cnt(o) over the windows o that contain (iy, ix)
// max_backward and avg_backward are gathers (per input element, its windows visited in a fixed
// order): exact and deterministic with overlapping windows (stride < window), no atomics.
// Bindings: 1 src (x or dy, read), 2 dst (y or dx, written; backwards add into it when
//   P.accumulate ≠ 0), 3 argmax (u32: max_forward writes it, max_backward and max_backward_blocks
//   read it; avg_* omit it).
// Dispatch: 64 threads per workgroup, Gpu.spread(count) workgroups; grid-stride loops over the
//   output elements (forwards, max_backward_blocks) or input elements (the other backwards)
//   (lib/stride.wgsl, prepended by the loader).

struct Params {
  planes: u32, h: u32, w: u32, oh: u32, ow: u32, kh: u32, kw: u32,
  sh: u32, sw: u32, pad_top: u32, pad_left: u32, accumulate: u32,
}
@group(0) @binding(0) var<uniform> P: Params;

@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read_write> argmax: array<u32>;

// window(oy, ox): lib/pool_window.wgsl; window_max(p, oy, ox), window_mean(p, oy, ox): lib/pool_reduce.wgsl.

// Output element i as (plane, oy, ox).
fn out_coords(i: u32) -> vec3u {
  let ohw = P.oh * P.ow;
  let p = i / ohw;
  let q = i - p * ohw;
  return vec3u(p, q / P.ow, q % P.ow);
}

// span(i, pad, k, s, out): lib/pool_geom.wgsl.

@compute @workgroup_size(64)
fn max_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) li: u32) {
  let ohw = P.oh * P.ow;
  for (var i = element0(wg, nwg, li); i < P.planes * ohw; i += stride(nwg)) {
    let o = out_coords(i);
    let m = window_max(o.x, o.y, o.z);
    dst[i] = m.value;
    argmax[i] = m.arg;
  }
}

@compute @workgroup_size(64)
fn max_backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) li: u32) {
  let hw = P.h * P.w;
  for (var i = element0(wg, nwg, li); i < P.planes * hw; i += stride(nwg)) {
    let p = i / hw;
    let k = i - p * hw;
    let iy = k / P.w;
    let ix = k - iy * P.w;
    let ry = span(iy, P.pad_top, P.kh, P.sh, P.oh);
    let rx = span(ix, P.pad_left, P.kw, P.sw, P.ow);
    var s = 0.0;
    for (var oy = ry.x; oy < ry.y; oy++) {
      for (var ox = rx.x; ox < rx.y; ox++) {
        let o = (p * P.oh + oy) * P.ow + ox;
        if (argmax[o] == k) { s += src[o]; }
      }
    }
    if (P.accumulate != 0u) { s += dst[i]; }
    dst[i] = s;
  }
}

// block_of(oy, ox): lib/pool_window.wgsl.

@compute @workgroup_size(64)
fn max_backward_blocks(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                       @builtin(local_invocation_index) li: u32) {
  let ohw = P.oh * P.ow;
  for (var i = element0(wg, nwg, li); i < P.planes * ohw; i += stride(nwg)) {
    let o = out_coords(i);
    let p = o.x;
    let oy = o.y;
    let ox = o.z;
    let blk = block_of(oy, ox);
    let base = p * P.h * P.w;
    let arg = argmax[i];
    let g = src[i];
    if (P.accumulate != 0u) {
      dst[base + arg] += g;
    } else {
      for (var iy = blk.x; iy < blk.y; iy++) {
        for (var ix = blk.z; ix < blk.w; ix++) {
          let k = iy * P.w + ix;
          dst[base + k] = select(0.0, g, k == arg);
        }
      }
    }
  }
}

@compute @workgroup_size(64)
fn avg_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) li: u32) {
  let ohw = P.oh * P.ow;
  for (var i = element0(wg, nwg, li); i < P.planes * ohw; i += stride(nwg)) {
    let o = out_coords(i);
    dst[i] = window_mean(o.x, o.y, o.z);
  }
}

@compute @workgroup_size(64)
fn avg_backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) li: u32) {
  let hw = P.h * P.w;
  for (var i = element0(wg, nwg, li); i < P.planes * hw; i += stride(nwg)) {
    let p = i / hw;
    let iy = (i - p * hw) / P.w;
    let ix = i - p * hw - iy * P.w;
    let ry = span(iy, P.pad_top, P.kh, P.sh, P.oh);
    let rx = span(ix, P.pad_left, P.kw, P.sw, P.ow);
    var s = 0.0;
    for (var oy = ry.x; oy < ry.y; oy++) {
      for (var ox = rx.x; ox < rx.y; ox++) {
        let r = window(oy, ox);
        s += src[(p * P.oh + oy) * P.ow + ox] / f32((r.y - r.x) * (r.w - r.z));
      }
    }
    if (P.accumulate != 0u) { s += dst[i]; }
    dst[i] = s;
  }
}
