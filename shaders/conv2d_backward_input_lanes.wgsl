// Conv2d backward to the input for CPU adapters: the transposed conv of conv2d_backward_input.wgsl,
// tiled for SIMD lanes (lib/lanes.wgsl) instead of a GPU workgroup.
// dL/dx[n,c,iy,ix] = Σ_{k,ky,kx} dy[n,k,oy,ox] · w[k,c,ky,kx]
// over oy = (iy + padTop − ky)/sh, ox = (ix + padLeft − kx)/sw
// where those divide exactly and land inside OH×OW.
// N batch, C in-channels, K out-channels, H×W input, KH×KW kernel, sh×sw stride, OH×OW output;
// tensors NCHW row-major f32: dy [N,K,OH,OW], w [K,C,KH,KW], dx [N,C,H,W].
// One stride phase at a time (lib/dx_phase.wgsl), as the GPU kernel: phase (a, b) is a stride-1
// correlation over its inputs iy = first_y + sh·jy, ix = first_x + sw·jx, each meeting only its taps
// ky = a + sh·uy, kx = b + sw·ux (no masked terms; stride 1 is one phase, every input and tap).
// Per phase the GEMM rows are in-channels c (shuffled from the lane that loaded them); columns: the
// phase's inputs p = (n·ny + jy)·nx + jx (one per lane); inner: r = (k·tapsY + uy)·tapsX + ux.
// Bindings: 0 params (P: lib/conv.wgsl), 1 dy, 2 w, 3 dx (overwritten, or added to when ACCUM).
// Each value goes out through dx_put: lib/conv_dx_out.wgsl, or lib/conv_dx_chain.wgsl (the chain below
// run as the values are stored; module conv2d_backward_input_lanes_chain, bindings 6 counter, 7 saved, 8 argmax
// or term).
// Dispatch: (grid(rowTiles · colTiles), sh·sw) workgroups of LANES, rowTiles = ceil(C / (ROW_GROUPS·LANES)),
// colTiles = ceil(N·⌈H/sh⌉·⌈W/sw⌉ / (COLS·LANES)) (the largest phase); wg.z is the phase a·sw + b; tile
// t = wg.x + wg.y·nwg.x is row tile t / colTiles, column tile t % colTiles (past a smaller phase's columns:
// nothing). A phase with no taps (stride > kernel) writes zeros.
// Uses lib/lanes.wgsl, prepended by the loader, and lanes_step() (src/gpu/lane-step.ts), appended.

override ACCUM: bool = false;

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(LANES)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(subgroup_invocation_id) lane: u32) {
  let origin = lanes_origin(wg, nwg, P.col_tiles, P.c);
  let py = phase_y(wg.z);
  let px = phase_x(wg.z);
  let plane = py.count * px.count;
  let cols = P.n * plane;
  if (origin.x >= P.c || origin.y >= cols) { return; }
  let row0 = origin.x;
  let col0 = origin.y + lane;
  let khw = P.kh * P.kw;
  let hw = P.h * P.w;
  let ohw = P.oh * P.ow;
  let inner = P.k * py.taps * px.taps;
  let ckk = P.c * khw;

  // Each column's output met by its phase's tap 0 (o = q + j; tap u meets o − u), the start of its
  // image's dy and its input position, computed once. A column past the end repeats the last one and is
  // never stored.
  var oy0: array<i32, 8>;
  var ox0: array<i32, 8>;
  var dybase: array<u32, 8>;
  // Its input position (n, iy, ix), for the store (dx_put_at).
  var at: array<vec3u, 8>;
  for (var j = 0u; j < COLS; j++) {
    let p = min(col0 + j * LANES, cols - 1u);
    let n = p / plane;
    let s = p - n * plane;
    let jy = s / px.count;
    let jx = s - jy * px.count;
    oy0[j] = i32(py.q + jy);
    ox0[j] = i32(px.q + jx);
    dybase[j] = n * P.k * ohw;
    at[j] = vec3u(n, py.first + P.sh * jy, px.first + P.sw * jx);
  }
  // This lane's weight rows w[·, c, ·, ·] (clamped: a row past C is computed and never stored).
  var wrow: array<u32, 8>;
  for (var g = 0u; g < ROW_GROUPS; g++) { wrow[g] = min(row0 + g * LANES + lane, P.c - 1u) * khw; }

  // r decoded as (k, uy, ux): k·C·KH·KW into the weights, k·OH·OW into dy; advanced, not divided.
  // LANE_DEPTH indices a step (lib/lanes.wgsl), zeros past the end (selected: a `break` there
  // gave wrong sums on lavapipe).
  var kw_off = 0u;
  var kdy_off = 0u;
  var uy = 0u;
  var ux = 0u;
  var acc: array<f32, LANE_ACC>;
  for (var r0 = 0u; r0 < inner; r0 += LANE_DEPTH) {
    var ag: array<f32, 8 * LANE_DEPTH>;
    var bv: array<f32, 8 * LANE_DEPTH>;
    for (var d = 0u; d < LANE_DEPTH; d++) {
      let live = r0 + d < inner;
      let tap = select(0u, (py.a + P.sh * uy) * P.kw + px.a + P.sw * ux, live);
      let w_off = select(0u, kw_off, live);
      for (var g = 0u; g < ROW_GROUPS; g++) { ag[8u * d + g] = select(0.0, wt[w_off + wrow[g] + tap], live); }
      for (var j = 0u; j < COLS; j++) {
        let oy = oy0[j] - i32(uy);
        let ox = ox0[j] - i32(ux);
        let ok = live && oy >= 0 && ox >= 0 && oy < i32(P.oh) && ox < i32(P.ow);
        let v = dy[select(0u, dybase[j] + kdy_off + u32(oy) * P.ow + u32(ox), ok)];
        bv[8u * d + j] = select(0.0, v, ok);
      }
      if (lanes_next_tap(&uy, &ux, py.taps, px.taps)) { kw_off += ckk; kdy_off += ohw; }
    }
    lanes_step(&acc, &ag, &bv);
  }

  for (var i = 0u; i < ROW_GROUPS * LANES; i++) {
    let row = row0 + i;
    if (row >= P.c) { break; }
    for (var j = 0u; j < COLS; j++) {
      if (col0 + j * LANES < cols) {
        let plane = at[j].x * P.c + row;
        dx_put_at(plane * hw + at[j].y * P.w + at[j].z, plane, at[j].y, at[j].z, acc[i * COLS + j]);
      }
    }
  }
}
