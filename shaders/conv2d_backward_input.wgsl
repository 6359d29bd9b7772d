// Conv2d backward to the input (the transposed conv) as an implicit GEMM, one stride phase at a time.
// dL/dx[n,c,iy,ix] = Σ_{k,ky,kx} dy[n,k,oy,ox] · w[k,c,ky,kx]
// over oy = (iy + padTop − ky)/sh, ox = (ix + padLeft − kx)/sw
// where those divide exactly and land inside OH×OW.
// N batch, C in-channels, K out-channels, H×W input, KH×KW kernel, sh×sw stride, OH×OW output;
// tensors NCHW row-major f32: dy [N,K,OH,OW], w [K,C,KH,KW], dx [N,C,H,W].
// Stride phases (lib/dx_phase.wgsl): phase (a, b) is a stride-1 correlation with no wasted zero terms.
// Per phase the GEMM is rows c, columns p = (n·ny + jy)·nx + jx,
// inner r = (k·tapsY + uy)·tapsX + ux. A phase with no taps (stride > kernel) writes zeros.
// The GEMM is lib/gemm.wgsl's (tile GEMM_BM × GEMM_BN, register blocks: src/ops/gemm.ts). Fetch
// order: weights 0 (thread li's r = k0 + li % 16, decoded once a step); dy 2 (column runs: thread li
// keeps columns col0 + li % BN + run·T, run < GEMM_RUNS, decoded once, and GEMM_RUN_LEN consecutive
// r of each, stepped by one).
// Entry points and bindings (uniform P: lib/conv.wgsl); phases = sh·sw, colsMax = N·⌈H/sh⌉·⌈W/sw⌉:
//   main         0 params, 1 dy, 2 w, 3 dx (overwritten, or added to when ACCUM).
//                Dispatch (grid(rowTiles · colTiles), phases) workgroups of GEMM_TX × GEMM_TY threads,
//                rowTiles = ceil(C/BM), colTiles = ceil(colsMax/BN) (the largest phase); wg.z is the
//                phase a·sw + b.
//   main_split   split-K: wg.z = phase + phases·z, z < splits, multiplies r in [z·chunk, (z+1)·chunk)
//                of its phase into parts[z][phase·C + c][colsMax]: 0 params, 1 dy, 2 w, 3 parts.
//   reduce_splits  the partials summed in a fixed order, then written to dx (lib/gemm.wgsl):
//                0 params, 1 parts, 2 unused, 3 dx.
// Each value goes out through dx_put: lib/conv_dx_out.wgsl (module conv2d_backward_input), or
// lib/conv_dx_chain.wgsl (module conv2d_backward_input_chain: the backward chain below this conv run as
// the values are stored, lib/chain_store.wgsl; its bindings 6 counter, 7 saved, 8 argmax or term).

override ACCUM: bool = false;

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<storage, read_write> gemm_parts_out: array<f32>;
@group(0) @binding(1) var<storage, read> gemm_parts_in: array<f32>;

// The phase this thread works on (or stores to, in reduce_splits: kept from its last store).
var<private> dx_f: u32 = 0xffffffffu;
var<private> dx_py: Phase;
var<private> dx_px: Phase;
// This thread's tile row origin and its dy columns (one a run): output origin, image offset, in range.
var<private> dx_row0: u32;
var<private> dx_oy0: vec2<i32>;
var<private> dx_ox0: vec2<i32>;
var<private> dx_dybase: vec2<u32>;
var<private> dx_ok: vec2<bool>;

fn set_phase(f: u32) {
  if (f == dx_f) { return; }
  dx_f = f;
  dx_py = phase_y(f);
  dx_px = phase_x(f);
}

fn cols_max() -> u32 {
  return P.n * ((P.h + P.sh - 1u) / P.sh) * ((P.w + P.sw - 1u) / P.sw);
}

fn gemm_fetch(k0: u32, k_end: u32, li: u32) {
  let taps = dx_py.taps * dx_px.taps;
  let ohw = P.oh * P.ow;
  // Weights: this thread's r = k0 + li % 16 (fetch order 0), decoded once for all its rows.
  let ra = k0 + li % GEMM_BK;
  let ok_a = !GEMM_CHECKED || ra < k_end;
  var wbase = 0u;
  if (ok_a) {
    let t = ra % taps;
    let ky = dx_py.a + (t / dx_px.taps) * P.sh;
    let kx = dx_px.a + (t % dx_px.taps) * P.sw;
    wbase = (ra / taps) * P.c * P.kh * P.kw + ky * P.kw + kx;
  }
  for (var j = 0u; j < GEMM_LA; j++) {
    let m = dx_row0 + gemm_a_coord(j, li).y;
    var v = 0.0;
    if (ok_a && (!GEMM_CHECKED || m < P.c)) { v = wt[wbase + m * P.kh * P.kw]; }
    gemm_pa[j] = v;
  }
  // dy: each of this thread's columns, r0 … r0 + GEMM_RUN_LEN − 1, r0 decoded once and stepped.
  let r0 = k0 + gemm_b_coord(0u, li).x; // this thread's first k of a step (lib/gemm.wgsl order 2)
  var koff0 = 0u;
  var uy0 = 0u;
  var ux0 = 0u;
  if (taps > 0u) {
    koff0 = (r0 / taps) * ohw;
    uy0 = (r0 % taps) / dx_px.taps;
    ux0 = r0 % dx_px.taps;
  }
  for (var run = 0u; run < GEMM_RUNS; run++) {
    var koff = koff0;
    var uy = uy0;
    var ux = ux0;
    for (var j = 0u; j < GEMM_RUN_LEN; j++) {
      let oy = dx_oy0[run] - i32(uy);
      let ox = dx_ox0[run] - i32(ux);
      var v = 0.0;
      let ok = !GEMM_CHECKED || (dx_ok[run] && r0 + j < k_end);
      if (ok && oy >= 0 && oy < i32(P.oh) && ox >= 0 && ox < i32(P.ow)) {
        v = dy[dx_dybase[run] + koff + u32(oy) * P.ow + u32(ox)];
      }
      gemm_pb[run * GEMM_RUN_LEN + j] = v;
      ux++;
      if (ux == dx_px.taps) {
        ux = 0u;
        uy++;
        if (uy == dx_py.taps) { uy = 0u; koff += ohw; }
      }
    }
  }
}

fn gemm_out_dims() -> vec2u {
  return vec2u(P.sh * P.sw * P.c, cols_max());
}

fn gemm_store(row: u32, col: u32, v: f32) {
  gemm_store4(row, col, vec4(v, 0.0, 0.0, 0.0), 1u);
}

// Row phase·C + c, columns col … col + count − 1 of that phase's plane: one decode, then stepped.
fn gemm_store4(row: u32, col: u32, v: vec4<f32>, count: u32) {
  set_phase(row / P.c);
  let c = row % P.c;
  let plane = dx_py.count * dx_px.count;
  if (plane == 0u) { return; }
  var n = col / plane;
  let j = col % plane;
  var jy = j / dx_px.count;
  var jx = j % dx_px.count;
  for (var i = 0u; i < 4u; i++) {
    if (i < count && n < P.n) {
      let idx = ((n * P.c + c) * P.h + dx_py.first + jy * P.sh) * P.w + dx_px.first + jx * P.sw;
      dx_put(idx, v[i]);
    }
    jx++;
    if (jx == dx_px.count) {
      jx = 0u;
      jy++;
      if (jy == dx_py.count) { jy = 0u; n++; }
    }
  }
}

/** Inner indices of phase f: K · its taps. */
fn inner_of(f: u32) -> u32 { return P.k * phase_y(f).taps * phase_x(f).taps; }

/** Columns of phase f's GEMM: N · its plane. */
fn cols_of(f: u32) -> u32 { return P.n * phase_y(f).count * phase_x(f).count; }

/** Whether workgroup wg has a tile in phase f: the largest phase's grid, less the spare tiles. */
fn has_tile(wg: vec3u, nwg: vec3u, f: u32) -> bool {
  let tile = wg.x + wg.y * nwg.x;
  return tile < P.col_tiles * ((P.c + GEMM_BM - 1u) / GEMM_BM) && (tile % P.col_tiles) * GEMM_BN < cols_of(f);
}

/** The tile of workgroup wg in phase f, and this thread's dy columns. */
fn tile_of(wg: vec3u, nwg: vec3u, f: u32, li: u32) -> GemmTile {
  let tile = wg.x + wg.y * nwg.x;
  set_phase(f);
  let plane = dx_py.count * dx_px.count;
  let col0 = (tile % P.col_tiles) * GEMM_BN;
  dx_row0 = (tile / P.col_tiles) * GEMM_BM;
  for (var run = 0u; run < GEMM_RUNS; run++) {
    let p = col0 + gemm_b_coord(run * GEMM_RUN_LEN, li).y;
    dx_ok[run] = p < P.n * plane;
    let pj = p % plane;
    dx_oy0[run] = i32(dx_py.q + pj / dx_px.count);
    dx_ox0[run] = i32(dx_px.q + pj % dx_px.count);
    dx_dybase[run] = (p / plane) * P.k * P.oh * P.ow;
  }
  return GemmTile(dx_row0, col0, P.c, P.n * plane, f * P.c);
}

@compute @workgroup_size(GEMM_TX, GEMM_TY)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  if (!has_tile(wg, nwg, wg.z)) { return; }
  let t = tile_of(wg, nwg, wg.z, li);
  gemm_run(t, 0u, inner_of(wg.z), lid, li);
  gemm_emit_store(t, lid, li);
}

@compute @workgroup_size(GEMM_TX, GEMM_TY)
fn main_split(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let phases = P.sh * P.sw;
  let f = wg.z % phases;
  if (!has_tile(wg, nwg, f)) { return; }
  let t = tile_of(wg, nwg, f, li);
  let z = wg.z / phases;
  let k0 = z * P.chunk;
  gemm_run(t, k0, min(inner_of(f), k0 + P.chunk), lid, li);
  let dims = gemm_out_dims();
  gemm_emit_parts(t, lid, li, z * dims.x * dims.y, dims.y);
}
