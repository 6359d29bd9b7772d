// Conv2d backward to the input (the transposed conv) as an implicit GEMM, one stride phase at a time.
// dL/dx[n,c,iy,ix] = Σ_{k,ky,kx} dy[n,k,oy,ox] · w[k,c,ky,kx]
// over oy = (iy + padTop − ky)/sh, ox = (ix + padLeft − kx)/sw
// where those divide exactly and land inside OH×OW.
// N batch, C in-channels, K out-channels, H×W input, KH×KW kernel, sh×sw stride, OH×OW output;
// tensors NCHW row-major f32: dy [N,K,OH,OW], w [K,C,KH,KW], dx [N,C,H,W].
// Stride phases: input rows with (iy + padTop) mod sh = a meet only taps ky = a + sh·u, so phase
// (a, b) (a < sh, b < sw) is a stride-1 correlation with no wasted zero terms: with iy = first + sh·j,
// oy = q + j − u (see phase()). Per phase the GEMM is rows c, columns p = (n·ny + jy)·nx + jx,
// inner r = (k·tapsY + uy)·tapsX + ux. A phase with no taps (stride > kernel) writes zeros.
// Bindings: 0 params (P: lib/conv.wgsl), 1 dy, 2 w, 3 dx (overwritten, or added to when ACCUM).
// Dispatch: (grid(rowTiles · colTiles), sh·sw) workgroups of GEMM_T×GEMM_T threads, rowTiles = ceil(C/BM),
// colTiles = ceil(N·ceil(H/sh)·ceil(W/sw)/64) (the largest phase); wg.z is the phase a·sw + b.
// Tiles BM×64×16: each thread owns (BM/GEMM_T)×(64/GEMM_T) outputs strided by GEMM_T (gemm_tile() from
// lib/gemm.wgsl, prepended by the loader).
// BM (override) is 64, or 32 when C ≤ 32 so that a narrow layer does not compute a half-empty tile.

override ACCUM: bool = false;
// Rows (in-channels) per tile: 64 or 32 (a multiple of 16, at most 64).
override BM: u32 = 64u;

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

const BN = 64u;
// As [BK][BM]: weights; Bs [BK][BN]: gathered dy (lib/gemm.wgsl).

// One axis of stride phase a: inputs i = first + s·j (j < count), taps a + s·u (u < taps),
// and the output they meet, o = q + j − u.
struct Phase { a: u32, first: u32, count: u32, taps: u32, q: u32 }

fn phase(a: u32, s: u32, pad: u32, size: u32, ksize: u32) -> Phase {
  let first = (a + s - pad % s) % s;
  var count = 0u;
  if (first < size) { count = (size - first + s - 1u) / s; }
  var taps = 0u;
  if (a < ksize) { taps = (ksize - a + s - 1u) / s; }
  // first + pad ≡ a (mod s) and first + pad ≥ a, so q is exact and ≥ 0.
  return Phase(a, first, count, taps, (first + pad - a) / s);
}

@compute @workgroup_size(GEMM_T, GEMM_T)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let tile = wg.x + wg.y * nwg.x;
  if (tile >= P.col_tiles * ((P.c + BM - 1u) / BM)) { return; }
  let py = phase(wg.z / P.sw, P.sh, P.pad_top, P.h, P.kh);
  let px = phase(wg.z % P.sw, P.sw, P.pad_left, P.w, P.kw);
  let plane = py.count * px.count;
  let cols = P.n * plane;
  let col0 = (tile % P.col_tiles) * BN;
  if (col0 >= cols) { return; }
  let row0 = (tile / P.col_tiles) * BM;
  let taps = py.taps * px.taps;
  let inner = P.k * taps;
  let ohw = P.oh * P.ow;
  let ckhw = P.c * P.kh * P.kw;

  // Thread li gathers column col0 + li % 64 of every dy tile, so its output origin is computed
  // once, and GEMM_SLICE_ROWS of the tile's 16 inner rows from q·GEMM_SLICE_ROWS, q = li / 64 (the same
  // for a whole warp).
  let cb = li % BN;
  let q4 = (li / BN) * GEMM_SLICE_ROWS;
  let p = col0 + cb;
  let p_ok = p < cols;
  let pj = p % plane;
  let oy0 = i32(py.q + pj / px.count);
  let ox0 = i32(px.q + pj % px.count);
  let dybase = (p / plane) * P.k * ohw;
  // Weights: thread li always loads inner index k0 + li % 16 of rows li / 16 + GEMM_LOAD_STRIDE·i.
  let ka = li % BK;
  let ma = li / BK;

  // r = k0 decoded as (k·OH·OW, uy, ux); advanced by one per gathered element instead of divided,
  // since integer division is slow on every device (and scalarized on a CPU).
  var koff = 0u;
  var uy = 0u;
  var ux = 0u;
  var acc: array<f32, 64>;
  for (var k0 = 0u; k0 < inner; k0 += BK) {
    let ra = k0 + ka;
    if (ra < inner) {
      // One decode per tile step serves all BM/GEMM_LOAD_STRIDE weight loads of this thread.
      let t = ra % taps;
      let ky = py.a + (t / px.taps) * P.sh;
      let kx = px.a + (t % px.taps) * P.sw;
      let wbase = (ra / taps) * ckhw + ky * P.kw + kx;
      for (var i = 0u; i < BM / GEMM_LOAD_STRIDE; i++) {
        let m = ma + i * GEMM_LOAD_STRIDE;
        var av = 0.0;
        if (row0 + m < P.c) { av = wt[wbase + (row0 + m) * P.kh * P.kw]; }
        As[ka * BM + m] = av;
      }
    } else {
      for (var i = 0u; i < BM / GEMM_LOAD_STRIDE; i++) { As[ka * BM + ma + i * GEMM_LOAD_STRIDE] = 0.0; }
    }

    // Every thread steps the decoded index through all 16 rows; it gathers only its own.
    for (var i = 0u; i < BK; i++) {
      if (i >= q4 && i < q4 + GEMM_SLICE_ROWS) {
        let oy = oy0 - i32(uy);
        let ox = ox0 - i32(ux);
        var bv = 0.0;
        if (p_ok && k0 + i < inner && oy >= 0 && oy < i32(P.oh) && ox >= 0 && ox < i32(P.ow)) {
          bv = dy[dybase + koff + u32(oy) * P.ow + u32(ox)];
        }
        Bs[i * BN + cb] = bv;
      }
      ux++;
      if (ux == px.taps) {
        ux = 0u;
        uy++;
        if (uy == py.taps) { uy = 0u; koff += ohw; }
      }
    }
    workgroupBarrier();
    gemm_tile(&acc, lid);
    workgroupBarrier();
  }

  for (var j = 0u; j < BN / GEMM_T; j++) {
    let col = col0 + lid.x + j * GEMM_T;
    if (col >= cols) { continue; }
    let xn = col / plane;
    let xj = col % plane;
    let iy = py.first + (xj / px.count) * P.sh;
    let ix = px.first + (xj % px.count) * P.sw;
    for (var i = 0u; i < BM / GEMM_T; i++) {
      let row = row0 + lid.y + i * GEMM_T;
      if (row >= P.c) { continue; }
      let idx = ((xn * P.c + row) * P.h + iy) * P.w + ix;
      var v = acc[i * 8u + j];
      if (ACCUM) { v += dx[idx]; }
      dx[idx] = v;
    }
  }
}
