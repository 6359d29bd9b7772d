// Conv2d backward to the weights (and the bias) of a 3×3, stride-1 conv by Winograd's F(3×3, 2×2), on
// lib/winograd.wgsl's 16 GEMMs; deterministic (fixed summation order, no atomics).
//   dL/dw[k,c,a,b] = Σ_{n,oy,ox} dy[n,k,oy,ox] · x[n,c,oy + a − padTop, ox + b − padLeft]
//   dL/db[k] = Σ_{n,oy,ox} dy[n,k,oy,ox]
// dy [N,K,OH,OW], x [N,C,H,W], dw [K,C,3,3], db [K], NCHW row-major f32 (lib/conv.wgsl P, the conv's shape).
// dY is cut into 2×2 tiles as the forward's output (tile t = (n·TH + ty)·TW + tx at (2·ty, 2·tx)), over
// the part lib/conv.wgsl conv_cover says (dY is 0 past it: read as 0, as past its edge); each tile's
// part of dw[k, c] is the 3×3 correlation of x's 4×4 patch d from (2·ty − padTop, 2·tx − padLeft) with
// the 2×2 tile g of dy: F(3×3, 2×2), with
//   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 −1 0 1],  G = [1 0; ½ ½; ½ −½; 0 1],
//   Aᵀ = [1 1 1 0; 0 1 −1 0; 0 1 1 1]
// U[ξ](k, t) = (G g Gᵀ)[ξ], V[ξ](c, t) = (Bᵀ d B)[ξ], M[ξ] = U[ξ] · V[ξ]ᵀ over tiles (the GEMMs' rows
// out-channels k, columns in-channels c, inner tiles), and dw[k, c] = Aᵀ M A: 16 multiply-adds a tile and
// (k, c) pair where the direct weight gradient takes 36. Aᵀ M A is linear, so each split's partial M is
// transformed and written as dw's layout, and the partials sum as the direct split's do.
// K loop, 4 tiles a step: threads li < 4·BT transform one (tile, in-channel) patch each, threads
// (li + T − 4·BT) mod T < 4·BC one (tile, out-channel) dY tile each, adding its values up for db.
// Epilogue: each thread's (out-channel, in-channel) of a round, transformed into its 3×3 taps; then the
// workgroups of column tile 0 write db[k], the out-channel's four threads' sums added in a fixed order.
// Entry main: 0 params, 1 dy, 2 x, 3 dw (WINO_SPLIT: the partials parts[z][K][C·9 + SUMS], db the
// column C·9, as conv2d_backward_weights.wgsl's main_split writes them), 4 db (any buffer when SUMS is
// 0 or WINO_SPLIT). Dispatch grid(rowTiles · colTiles · splits), rowTiles = ⌈K/BC⌉, colTiles = ⌈C/BT⌉
// (P.col_tiles); workgroup g = wg.x + wg.y·nwg.x is split z = g / (rowTiles·colTiles), whose tiles are
// steps [⌊z·A/S⌋, ⌊(z + 1)·A/S⌋) of 4 tiles, A = ⌈T/4⌉, S = P.splits (as even as whole steps allow: at
// most P.chunk tiles), and of the rest row tile r / colTiles, column tile r % colTiles.

override SUMS: u32 = 0u;
override WINO_SPLIT: bool = false;

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;
@group(0) @binding(4) var<storage, read_write> db: array<f32>;

/** x[n, c] at (iy, ix) of the plane from `base`, 0 outside it. */
fn x_at(base: u32, iy: i32, ix: i32) -> f32 {
  if (iy < 0 || iy >= i32(P.h) || ix < 0 || ix >= i32(P.w)) { return 0.0; }
  return x[base + u32(iy) * P.w + u32(ix)];
}

/** dy[n, k] at (oy, ox) of the plane from `base`, 0 past the covered part (lib/conv.wgsl conv_cover). */
fn dy_at(base: u32, oy: u32, ox: u32) -> f32 {
  let cover = conv_cover();
  if (oy >= cover.x || ox >= cover.y) { return 0.0; }
  return dy[base + oy * P.ow + ox];
}

/** Bᵀ d B of in-channel c's 4×4 patch of tile t (0 where !ok), stored as V[j][ξ][cl]. */
fn stage_x(j: u32, cl: u32, c: u32, t: u32, ok: bool) {
  var d = array(vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0));
  if (ok) {
    let cover = conv_cover();
    let at = wino_tile(cover.x, cover.y, t);
    let base = (at.x * P.c + c) * P.h * P.w;
    let iy0 = i32(2u * at.y) - i32(P.pad_top);
    let ix0 = i32(2u * at.z) - i32(P.pad_left);
    for (var i = 0u; i < 4u; i++) {
      let iy = iy0 + i32(i);
      d[i] = vec4(x_at(base, iy, ix0), x_at(base, iy, ix0 + 1), x_at(base, iy, ix0 + 2), x_at(base, iy, ix0 + 3));
    }
  }
  // Bᵀ down the columns, then B across each row.
  var r = array(d[0] - d[2], d[1] + d[2], d[2] - d[1], d[3] - d[1]);
  for (var i = 0u; i < 4u; i++) {
    let q = r[i];
    let v = vec4(q.x - q.z, q.y + q.z, q.z - q.y, q.w - q.y);
    for (var e = 0u; e < 4u; e++) { wino_put(0u, (j * 16u + 4u * i + e) * WINO_BT + cl, v[e]); }
  }
}

/** G g Gᵀ of out-channel k's 2×2 dY tile t (0 where !ok), stored as U[j][ξ][kl]; returns the tile's sum. */
fn stage_dy(j: u32, kl: u32, k: u32, t: u32, ok: bool) -> f32 {
  var g = vec4(0.0); // g00, g01, g10, g11
  if (ok) {
    let cover = conv_cover();
    let at = wino_tile(cover.x, cover.y, t);
    let base = (at.x * P.k + k) * P.oh * P.ow;
    let oy = 2u * at.y;
    let ox = 2u * at.z;
    g = vec4(dy_at(base, oy, ox), dy_at(base, oy, ox + 1u), dy_at(base, oy + 1u, ox), dy_at(base, oy + 1u, ox + 1u));
  }
  // G down the columns (rows g0·, g1· to four), then Gᵀ across each.
  var r = array(g.xy, 0.5 * (g.xy + g.zw), 0.5 * (g.xy - g.zw), g.zw);
  for (var i = 0u; i < 4u; i++) {
    let q = r[i];
    let u = vec4(q.x, 0.5 * (q.x + q.y), 0.5 * (q.x - q.y), q.y);
    for (var e = 0u; e < 4u; e++) { wino_put(WINO_U0, (j * 16u + 4u * i + e) * WINO_BC + kl, u[e]); }
  }
  return (g.x + g.y) + (g.z + g.w);
}

/** Output column col (c·9 + tap, or C·9 for db) of out-channel row k, split z. */
fn put_dw(z: u32, k: u32, col: u32, v: f32) {
  let ckk = P.c * 9u;
  if (WINO_SPLIT) {
    dw[(z * P.k + k) * (ckk + SUMS) + col] = v;
  } else if (col < ckk) {
    dw[k * ckk + col] = v;
  } else {
    db[k] = v;
  }
}

/** Round (bi, bj): block (bi, bj) of every thread shared, then one (out-channel, in-channel) each stored. */
fn emit_block(b: mat4x4<f32>, bi: u32, bj: u32, me: vec3u, li: u32, z: u32, row0: u32, col0: u32) {
  wino_round(b, me);
  let pair = wino_pair(li, bi, bj);
  let k = row0 + pair.x;
  let c = col0 + pair.y;
  let m = wino_values(li);
  // Aᵀ down the columns, then A across each row.
  var rows = array(m[0] + m[1] + m[2], m[1] - m[2], m[1] + m[2] + m[3]);
  if (k < P.k && c < P.c) {
    for (var a = 0u; a < 3u; a++) {
      let q = rows[a];
      let taps = vec3(q.x + q.y + q.z, q.y - q.z, q.y + q.z + q.w);
      for (var tb = 0u; tb < 3u; tb++) { put_dw(z, k, c * 9u + 3u * a + tb, taps[tb]); }
    }
  }
}

@compute @workgroup_size(WINO_THREADS)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let g = wg.x + wg.y * nwg.x;
  let per = ((P.k + WINO_BC - 1u) / WINO_BC) * P.col_tiles;
  if (g >= per * P.splits) { return; }
  let z = g / per;
  let r = g % per;
  let row0 = (r / P.col_tiles) * WINO_BC;
  let col0 = (r % P.col_tiles) * WINO_BT;
  let me = wino_thread(li);
  let cover = conv_cover();
  let tiles = wino_tiles(cover.x, cover.y);
  // Split z's steps (the header's), A = steps, S = P.splits.
  let steps = (tiles + WINO_CK - 1u) / WINO_CK;
  let t_begin = WINO_CK * ((z * steps) / P.splits);
  let t_end = min(tiles, WINO_CK * (((z + 1u) * steps) / P.splits));
  // This thread's patch (one in-channel, tile j of each step) and dY tile (one out-channel, tile j).
  let xj = li / WINO_BT;
  let xc = col0 + li % WINO_BT;
  let fq = (li + WINO_THREADS - 4u * WINO_BT) % WINO_THREADS;
  let fj = fq / WINO_BC;
  let fk = row0 + fq % WINO_BC;
  var sum = 0.0;
  wino_acc = WinoAcc();
  for (var t0 = t_begin; t0 < t_end; t0 += WINO_CK) {
    if (li < 4u * WINO_BT) { stage_x(xj, li % WINO_BT, xc, t0 + xj, t0 + xj < t_end && xc < P.c); }
    if (fq < 4u * WINO_BC) { sum += stage_dy(fj, fq % WINO_BC, fk, t0 + fj, t0 + fj < t_end && fk < P.k); }
    workgroupBarrier();
    wino_multiply(me);
    workgroupBarrier();
  }
  emit_block(wino_acc.c00, 0u, 0u, me, li, z, row0, col0);
  emit_block(wino_acc.c01, 0u, 1u, me, li, z, row0, col0);
  emit_block(wino_acc.c10, 1u, 0u, me, li, z, row0, col0);
  emit_block(wino_acc.c11, 1u, 1u, me, li, z, row0, col0);
  if (SUMS == 0u) { return; }
  // db: the four tiles' sums of each out-channel, in a fixed order (column tile 0's workgroups write it).
  workgroupBarrier();
  if (fq < 4u * WINO_BC) { wino_put(0u, fq, sum); }
  workgroupBarrier();
  if (col0 == 0u && li < WINO_BC && row0 + li < P.k) {
    let e = array(li, WINO_BC + li, 2u * WINO_BC + li, 3u * WINO_BC + li);
    let s = (gemm_ab[e[0] / 4u][e[0] % 4u] + gemm_ab[e[1] / 4u][e[1] % 4u])
      + (gemm_ab[e[2] / 4u][e[2] % 4u] + gemm_ab[e[3] / 4u][e[3] % 4u]);
    put_dw(z, row0 + li, P.c * 9u, s);
  }
}
