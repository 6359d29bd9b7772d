// Winograd's minimal filtering F(2×2, 3×3) for a 3×3, stride-1 correlation, fused whole: the core of
// shaders/conv2d_winograd.wgsl (the forward) and shaders/conv2d_winograd_dx.wgsl (dX, the correlation of
// dY with the flipped filters), which define its input, filters and store.
// Output [N, COUT, OH, OW] from input [N, CIN, IH, IW], each output (oy, ox) the sum over channels and
// taps (ky, kx) < 3 of in[ci, oy + ky − padTop, ox + kx − padLeft] · g[co, ci, ky, kx] (0 outside the
// input). The output is cut into 2×2 tiles, tile (n, ty, tx) at (2·ty, 2·tx), TH×TW = ⌈OH/2⌉×⌈OW/2⌉
// an image, T = N·TH·TW in all, numbered t = (n·TH + ty)·TW + tx. Its input is the 4×4 patch d from
// (2·ty − padTop, 2·tx − padLeft). With
//   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],  G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
//   Aᵀ = [1 1 1 0; 0 1 −1 −1]
// V[ξ](t, c) = (Bᵀ d B)[ξ] and U[ξ](k, c) = (G g Gᵀ)[ξ] for the 16 positions ξ = 4·i + j of a 4×4 tile;
// M[ξ] = U[ξ] · V[ξ]ᵀ over c (16 GEMMs of COUT × T × CIN), and the tile's outputs Aᵀ M A (2×2): 16
// multiply-adds a tile and channel pair where the direct conv takes 36.
// Workgroup: WINO_BC out-channels × WINO_BT tiles, all 16 GEMMs (src/ops/conv2d_plan.ts picks 16×16 or
// 32×32); 16 × TX·TY threads, TX = BT / 8 and TY = BC / 8: thread li is GEMM ξ = li / (TX·TY), and
// within it (tx, ty) owns 8×8 outputs in four 4×4 blocks, block (i, j) at rows 4·ty + 4·TY·i and
// columns 4·tx + 4·TX·j (lib/gemm.wgsl's layout), held in mat4x4 accumulators indexed by constants.
// K loop, 4 in-channels a step: threads li < 4·BT transform one (tile, channel) input patch each,
// threads (li + T − 4·BT) mod T < 4·BC one (out-channel, channel) filter each, into workgroup memory
// (V then U, [c][ξ][tile or out-channel] as vec4 rows); then every thread multiplies its blocks.
// Epilogue, one block a round: the 16 GEMMs' block values go to workgroup memory, then each thread
// takes one (out-channel, tile), transforms its 16 values into 2×2 outputs and hands them to the
// includer's wino_store.
// The includer defines: wino_geom() (the shape above, from its uniform P, which has n and col_tiles);
// wino_in(i) (the input's element i, NCHW); wino_filter_row(co, ci, ky) (g[co, ci, ky, 0 … 2]);
// wino_store(co, n, oy, ox, v) (the 2×2 outputs from (oy, ox), row-major, some past the output's edge).
// Dispatch grid(rowTiles · colTiles), rowTiles = ⌈COUT/BC⌉, colTiles = ⌈T/BT⌉ (P.col_tiles); workgroup
// g = wg.x + wg.y·nwg.x is row tile g / colTiles, column tile g % colTiles.

override WINO_BC: u32 = 32u;
override WINO_BT: u32 = 32u;
override WINO_TX: u32 = WINO_BT / 8u;
override WINO_TY: u32 = WINO_BC / 8u;
override WINO_THREADS: u32 = 16u * WINO_TX * WINO_TY;
// In-channels a K step.
const WINO_CK = 4u;
// Where U starts in gemm_ab (in vec4s): after V's 4 channels × 16 positions × BT tiles.
override WINO_U0: u32 = WINO_CK * 16u * WINO_BT / 4u;

/** The correlation's shape: in- and out-channels, input and output sizes, padding before. */
struct WinoGeom { cin: u32, cout: u32, ih: u32, iw: u32, oh: u32, ow: u32, pad_top: u32, pad_left: u32 }

// The step's transformed slices (V, then U), and in the epilogue one block of the 16 GEMMs. Named and
// typed as lib/gemm.wgsl's staging, so that paired with a tiled GEMM (src/gpu/wgsl-pair.ts) the two
// share it whole.
var<workgroup> gemm_ab: array<vec4<f32>, WINO_CK * 16u * (WINO_BT + WINO_BC) / 4u>;

struct WinoAcc { c00: mat4x4<f32>, c01: mat4x4<f32>, c10: mat4x4<f32>, c11: mat4x4<f32> }
var<private> wino_acc: WinoAcc;

/** c + a·bᵀ for a 4×4 block: row r gains a[r]·b. */
fn wino_rank1(c: mat4x4<f32>, a: vec4<f32>, b: vec4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(
    fma(vec4(a.x), b, c[0]),
    fma(vec4(a.y), b, c[1]),
    fma(vec4(a.z), b, c[2]),
    fma(vec4(a.w), b, c[3]),
  );
}

/** 2×2 tiles in all: N·⌈OH/2⌉·⌈OW/2⌉. */
fn wino_tiles(geo: WinoGeom) -> u32 {
  return P.n * ((geo.oh + 1u) / 2u) * ((geo.ow + 1u) / 2u);
}

/** Tile t (of all T) as (n, ty, tx). */
fn wino_tile(geo: WinoGeom, t: u32) -> vec3u {
  let tw = (geo.ow + 1u) / 2u;
  let per = ((geo.oh + 1u) / 2u) * tw;
  let n = t / per;
  let r = t - n * per;
  return vec3u(n, r / tw, r % tw);
}

/** Value e of a slice: component e % 4 of vec4 e / 4 of gemm_ab from `base` (in vec4s). */
fn wino_put(base: u32, e: u32, v: f32) {
  gemm_ab[base + e / 4u][e % 4u] = v;
}

/** Bᵀ d B of the 4×4 patch whose rows are d0 … d3, stored as V[ci][ξ][t]. */
fn wino_store_input(ci: u32, t: u32, d0: vec4<f32>, d1: vec4<f32>, d2: vec4<f32>, d3: vec4<f32>) {
  // Bᵀ down the columns, then B across each row.
  var r = array(d0 - d2, d1 + d2, d2 - d1, d1 - d3);
  for (var i = 0u; i < 4u; i++) {
    let q = r[i];
    let v = vec4(q.x - q.z, q.y + q.z, q.z - q.y, q.y - q.w);
    for (var j = 0u; j < 4u; j++) { wino_put(0u, (ci * 16u + 4u * i + j) * WINO_BT + t, v[j]); }
  }
}

/** G g Gᵀ of the 3×3 filter whose rows are g0 … g2 (xyz), stored as U[ci][ξ][co]. */
fn wino_store_filter(ci: u32, co: u32, g0: vec3<f32>, g1: vec3<f32>, g2: vec3<f32>) {
  var r = array(g0, 0.5 * (g0 + g1 + g2), 0.5 * (g0 - g1 + g2), g2);
  for (var i = 0u; i < 4u; i++) {
    let q = r[i];
    let u = vec4(q.x, 0.5 * (q.x + q.y + q.z), 0.5 * (q.x - q.y + q.z), q.z);
    for (var j = 0u; j < 4u; j++) { wino_put(WINO_U0, (ci * 16u + 4u * i + j) * WINO_BC + co, u[j]); }
  }
}

/** The input at (iy, ix) of the channel plane from `base`, 0 outside it. */
fn wino_at(geo: WinoGeom, base: u32, iy: i32, ix: i32) -> f32 {
  if (iy < 0 || iy >= i32(geo.ih) || ix < 0 || ix >= i32(geo.iw)) { return 0.0; }
  return wino_in(base + u32(iy) * geo.iw + u32(ix));
}

/** Input patch row iy from column ix0 (4 values). */
fn wino_row(geo: WinoGeom, base: u32, iy: i32, ix0: i32) -> vec4<f32> {
  let a = vec2(wino_at(geo, base, iy, ix0), wino_at(geo, base, iy, ix0 + 1));
  return vec4(a, wino_at(geo, base, iy, ix0 + 2), wino_at(geo, base, iy, ix0 + 3));
}

/** One block's 16 GEMM values of out-channel ol (in-block row) and tile tl (in-block column), into 2×2 outputs. */
fn wino_transform_out(ol: u32, tl: u32) -> vec4<f32> {
  let rows = 4u * WINO_TY;
  let cols = 4u * WINO_TX;
  var m: array<vec4<f32>, 4>;
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      let e = ((4u * i + j) * rows + ol) * cols + tl;
      m[i][j] = gemm_ab[e / 4u][e % 4u];
    }
  }
  // Aᵀ down the columns, then A across each row.
  let s0 = m[0] + m[1] + m[2];
  let s1 = m[1] - m[2] - m[3];
  return vec4(s0.x + s0.y + s0.z, s0.y - s0.z - s0.w, s1.x + s1.y + s1.z, s1.y - s1.z - s1.w);
}

/** Block b of this thread (GEMM xi, position tx, ty) into the workgroup's block of all 16 GEMMs. */
fn wino_share_block(b: mat4x4<f32>, xi: u32, tx: u32, ty: u32) {
  let rows = 4u * WINO_TY;
  let cols = 4u * WINO_TX;
  for (var r = 0u; r < 4u; r++) { gemm_ab[((xi * rows + 4u * ty + r) * cols + 4u * tx) / 4u] = b[r]; }
}

/** Round (bi, bj) of the epilogue: every thread's block (bi, bj) shared, then one (out-channel, tile) each stored. */
fn wino_emit_block(geo: WinoGeom, b: mat4x4<f32>, bi: u32, bj: u32, xi: u32, tx: u32, ty: u32, li: u32, row0: u32,
                   col0: u32) {
  workgroupBarrier();
  wino_share_block(b, xi, tx, ty);
  workgroupBarrier();
  let cols = 4u * WINO_TX;
  let ol = li / cols;
  let tl = li % cols;
  let co = row0 + ol + 4u * WINO_TY * bi;
  let t = col0 + tl + 4u * WINO_TX * bj;
  let v = wino_transform_out(ol, tl);
  if (co < geo.cout && t < wino_tiles(geo)) {
    let at = wino_tile(geo, t);
    wino_store(co, at.x, 2u * at.y, 2u * at.z, v);
  }
}

/** Workgroup wg's output tile: the K loop over in-channels, then the epilogue. */
fn wino_main(wg: vec3u, nwg: vec3u, li: u32) {
  let geo = wino_geom();
  let g = wg.x + wg.y * nwg.x;
  let row_tiles = (geo.cout + WINO_BC - 1u) / WINO_BC;
  if (g >= row_tiles * P.col_tiles) { return; }
  let row0 = (g / P.col_tiles) * WINO_BC;
  let col0 = (g % P.col_tiles) * WINO_BT;
  let per = WINO_TX * WINO_TY;
  let xi = li / per;
  let tx = (li % per) % WINO_TX;
  let ty = (li % per) / WINO_TX;
  let plane = geo.ih * geo.iw;
  // This thread's input patch (one tile, one channel of each step), decoded once.
  let in_ci = li / WINO_BT;
  let in_t = col0 + li % WINO_BT;
  let at = wino_tile(geo, in_t);
  let inputs = li < 4u * WINO_BT && in_t < wino_tiles(geo);
  let x0 = at.x * geo.cin * plane;
  let iy0 = i32(2u * at.y) - i32(geo.pad_top);
  let ix0 = i32(2u * at.z) - i32(geo.pad_left);
  // This thread's filter (one out-channel, one channel of each step).
  let fq = (li + WINO_THREADS - 4u * WINO_BT) % WINO_THREADS;
  let filters = fq < 4u * WINO_BC;
  let f_ci = fq / WINO_BC;
  let f_co = row0 + fq % WINO_BC;
  wino_acc = WinoAcc();
  for (var c0 = 0u; c0 < geo.cin; c0 += WINO_CK) {
    if (li < 4u * WINO_BT) {
      let c = c0 + in_ci;
      var d = array(vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0));
      if (inputs && c < geo.cin) {
        let base = x0 + c * plane;
        for (var i = 0u; i < 4u; i++) { d[i] = wino_row(geo, base, iy0 + i32(i), ix0); }
      }
      wino_store_input(in_ci, li % WINO_BT, d[0], d[1], d[2], d[3]);
    }
    if (filters) {
      let c = c0 + f_ci;
      var r = array(vec3(0.0), vec3(0.0), vec3(0.0));
      if (f_co < geo.cout && c < geo.cin) {
        for (var i = 0u; i < 3u; i++) { r[i] = wino_filter_row(f_co, c, i); }
      }
      wino_store_filter(f_ci, fq % WINO_BC, r[0], r[1], r[2]);
    }
    workgroupBarrier();
    for (var ci = 0u; ci < WINO_CK; ci++) {
      let ua = WINO_U0 + (ci * 16u + xi) * (WINO_BC / 4u);
      let va = (ci * 16u + xi) * (WINO_BT / 4u);
      let a0 = gemm_ab[ua + ty];
      let a1 = gemm_ab[ua + ty + WINO_TY];
      let b0 = gemm_ab[va + tx];
      let b1 = gemm_ab[va + tx + WINO_TX];
      wino_acc.c00 = wino_rank1(wino_acc.c00, a0, b0);
      wino_acc.c01 = wino_rank1(wino_acc.c01, a0, b1);
      wino_acc.c10 = wino_rank1(wino_acc.c10, a1, b0);
      wino_acc.c11 = wino_rank1(wino_acc.c11, a1, b1);
    }
    workgroupBarrier();
  }
  wino_emit_block(geo, wino_acc.c00, 0u, 0u, xi, tx, ty, li, row0, col0);
  wino_emit_block(geo, wino_acc.c01, 0u, 1u, xi, tx, ty, li, row0, col0);
  wino_emit_block(geo, wino_acc.c10, 1u, 0u, xi, tx, ty, li, row0, col0);
  wino_emit_block(geo, wino_acc.c11, 1u, 1u, xi, tx, ty, li, row0, col0);
}
