// Winograd's minimal filtering F(2×2, 3×3) for a 3×3, stride-1 correlation, fused whole on
// lib/winograd.wgsl's GEMMs: shaders/conv2d_winograd.wgsl (the forward) and
// shaders/conv2d_winograd_dx.wgsl (dX, the correlation of dY with the flipped filters) define its
// input, filters and store.
// Output [N, COUT, OH, OW] from input [N, CIN, IH, IW], each output (oy, ox) the sum over channels and
// taps (ky, kx) < 3 of in[ci, oy + ky − padTop, ox + kx − padLeft] · g[co, ci, ky, kx] (0 outside the
// input). The output is cut into 2×2 tiles, tile (n, ty, tx) at (2·ty, 2·tx), TH×TW = ⌈OH/2⌉×⌈OW/2⌉
// an image, T = N·TH·TW in all, numbered t = (n·TH + ty)·TW + tx. Its input is the 4×4 patch d from
// (2·ty − padTop, 2·tx − padLeft). With
//   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],  G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
//   Aᵀ = [1 1 1 0; 0 1 −1 −1]
// V[ξ](t, c) = (Bᵀ d B)[ξ] and U[ξ](k, c) = (G g Gᵀ)[ξ]; M[ξ] = U[ξ] · V[ξ]ᵀ over c (the GEMMs' rows
// out-channels, columns tiles, inner in-channels), and the tile's outputs Aᵀ M A (2×2): 16 multiply-adds
// a tile and channel pair where the direct conv takes 36.
// K loop, 4 in-channels a step: threads li < 4·BT transform one (tile, channel) input patch each,
// threads (li + T − 4·BT) mod T < 4·BC one (out-channel, channel) filter each (lib/winograd.wgsl's
// slices). Epilogue: each thread's (out-channel, tile) of a round, transformed into 2×2 outputs and
// handed to the includer's wino_store.
// The includer defines: wino_geom() (the shape above, from its uniform P, which has n and col_tiles);
// wino_in(i) (the input's element i, NCHW); wino_filter_row(co, ci, ky) (g[co, ci, ky, 0 … 2]);
// wino_store(co, n, oy, ox, v) (the 2×2 outputs from (oy, ox), row-major, some past the output's edge).
// Dispatch grid(rowTiles · colTiles), rowTiles = ⌈COUT/BC⌉, colTiles = ⌈T/BT⌉ (P.col_tiles); workgroup
// g = wg.x + wg.y·nwg.x is row tile g / colTiles, column tile g % colTiles.

/** The correlation's shape: in- and out-channels, input and output sizes, padding before. */
struct WinoGeom { cin: u32, cout: u32, ih: u32, iw: u32, oh: u32, ow: u32, pad_top: u32, pad_left: u32 }

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

/** The 16 GEMMs' values of a (out-channel, tile) pair into its 2×2 outputs: Aᵀ M A. */
fn wino_transform_out(m: array<vec4<f32>, 4>) -> vec4<f32> {
  // Aᵀ down the columns, then A across each row.
  let s0 = m[0] + m[1] + m[2];
  let s1 = m[1] - m[2] - m[3];
  return vec4(s0.x + s0.y + s0.z, s0.y - s0.z - s0.w, s1.x + s1.y + s1.z, s1.y - s1.z - s1.w);
}

/** Round (bi, bj) of the epilogue: block (bi, bj) of every thread shared, then one (out-channel, tile) each stored. */
fn wino_emit_block(geo: WinoGeom, b: mat4x4<f32>, bi: u32, bj: u32, at: vec3u, li: u32, row0: u32, col0: u32) {
  wino_round(b, at);
  let pair = wino_pair(li, bi, bj);
  let co = row0 + pair.x;
  let t = col0 + pair.y;
  let v = wino_transform_out(wino_values(li));
  if (co < geo.cout && t < wino_tiles(geo.oh, geo.ow)) {
    let tile = wino_tile(geo.oh, geo.ow, t);
    wino_store(co, tile.x, 2u * tile.y, 2u * tile.z, v);
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
  let me = wino_thread(li);
  let plane = geo.ih * geo.iw;
  // This thread's input patch (one tile, one channel of each step), decoded once.
  let in_ci = li / WINO_BT;
  let in_t = col0 + li % WINO_BT;
  let at = wino_tile(geo.oh, geo.ow, in_t);
  let inputs = li < 4u * WINO_BT && in_t < wino_tiles(geo.oh, geo.ow);
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
    wino_multiply(me);
    workgroupBarrier();
  }
  wino_emit_block(geo, wino_acc.c00, 0u, 0u, me, li, row0, col0);
  wino_emit_block(geo, wino_acc.c01, 0u, 1u, me, li, row0, col0);
  wino_emit_block(geo, wino_acc.c10, 1u, 0u, me, li, row0, col0);
  wino_emit_block(geo, wino_acc.c11, 1u, 1u, me, li, row0, col0);
}
