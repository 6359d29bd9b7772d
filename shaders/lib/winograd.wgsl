// The 16 GEMMs of a Winograd minimal filtering with 4×4 transformed tiles, fused with the transforms:
// the core of shaders/lib/winograd_conv.wgsl (F(2×2, 3×3): a conv's forward and dX) and
// shaders/conv2d_winograd_dw.wgsl (F(3×3, 2×2): its weight gradient). For each of the 16 positions
// ξ = 4·i + j of a 4×4 tile, M[ξ] = A[ξ] · B[ξ]ᵀ over the inner dimension, A's rows and B's columns the
// transformed operands, transformed back by the includer.
// Workgroup: WINO_BC rows × WINO_BT columns of all 16 GEMMs (src/ops/conv2d_plan.ts picks 16×16 or
// 32×32); 16 × TX·TY threads, TX = BT / 8 and TY = BC / 8: thread li is GEMM ξ = li / (TX·TY), and
// within it (tx, ty) owns 8×8 outputs in four 4×4 blocks, block (i, j) at rows 4·ty + 4·TY·i and
// columns 4·tx + 4·TX·j (lib/gemm.wgsl's layout), held in mat4x4 accumulators indexed by constants and
// updated by lib/rank1.wgsl's rank1 (prepended before this file).
// A step is 4 inner indices: the includer transforms and stages B's slice from gemm_ab[0] ([k][ξ][column],
// BT a row) and A's from WINO_U0 ([k][ξ][row], BC a row) (wino_put), then wino_multiply. Epilogue, one
// block a round (wino_round): the 16 GEMMs' block values go to workgroup memory, then each thread takes
// one (row, column) of the block (wino_pair) and reads its 16 values (wino_values). The 2×2 tiles of an
// output are counted and decoded here (wino_tiles, wino_tile) from the includer's uniform P's n, over the
// part of it they cover (lib/conv.wgsl conv_cover).

override WINO_BC: u32 = 32u;
override WINO_BT: u32 = 32u;
override WINO_TX: u32 = WINO_BT / 8u;
override WINO_TY: u32 = WINO_BC / 8u;
override WINO_THREADS: u32 = 16u * WINO_TX * WINO_TY;
// Inner indices a step.
const WINO_CK = 4u;
// Where A's slice starts in gemm_ab (in vec4s): after B's 4 inner indices × 16 positions × BT columns.
override WINO_U0: u32 = WINO_CK * 16u * WINO_BT / 4u;

// The step's transformed slices (B's, then A's), and in the epilogue one block of the 16 GEMMs. Named
// and typed as lib/gemm.wgsl's staging, so that paired with a tiled GEMM (src/gpu/wgsl-pair.ts) the two
// share it whole.
var<workgroup> gemm_ab: array<vec4<f32>, WINO_CK * 16u * (WINO_BT + WINO_BC) / 4u>;

struct WinoAcc { c00: mat4x4<f32>, c01: mat4x4<f32>, c10: mat4x4<f32>, c11: mat4x4<f32> }
var<private> wino_acc: WinoAcc;

/** Thread li's GEMM ξ and its position (tx, ty) in it: (ξ, tx, ty). */
fn wino_thread(li: u32) -> vec3u {
  let per = WINO_TX * WINO_TY;
  return vec3u(li / per, (li % per) % WINO_TX, (li % per) / WINO_TX);
}

/** 2×2 tiles of an OH×OW output (or dY) in all: N·⌈OH/2⌉·⌈OW/2⌉, numbered (n·TH + ty)·TW + tx. */
fn wino_tiles(oh: u32, ow: u32) -> u32 {
  return P.n * ((oh + 1u) / 2u) * ((ow + 1u) / 2u);
}

/** Tile t of an OH×OW output as (n, ty, tx). */
fn wino_tile(oh: u32, ow: u32, t: u32) -> vec3u {
  let tw = (ow + 1u) / 2u;
  let per = ((oh + 1u) / 2u) * tw;
  let n = t / per;
  let r = t - n * per;
  return vec3u(n, r / tw, r % tw);
}

/** Value e of a slice: component e % 4 of vec4 e / 4 of gemm_ab from `base` (in vec4s). */
fn wino_put(base: u32, e: u32, v: f32) {
  gemm_ab[base + e / 4u][e % 4u] = v;
}

/** The staged step into thread `at`'s blocks (wino_thread). */
fn wino_multiply(at: vec3u) {
  for (var k = 0u; k < WINO_CK; k++) {
    let ua = WINO_U0 + (k * 16u + at.x) * (WINO_BC / 4u);
    let va = (k * 16u + at.x) * (WINO_BT / 4u);
    let a0 = gemm_ab[ua + at.z];
    let a1 = gemm_ab[ua + at.z + WINO_TY];
    let b0 = gemm_ab[va + at.y];
    let b1 = gemm_ab[va + at.y + WINO_TX];
    wino_acc.c00 = rank1(wino_acc.c00, a0, b0);
    wino_acc.c01 = rank1(wino_acc.c01, a0, b1);
    wino_acc.c10 = rank1(wino_acc.c10, a1, b0);
    wino_acc.c11 = rank1(wino_acc.c11, a1, b1);
  }
}

/** Block b of thread `at` into the workgroup's block of all 16 GEMMs, between barriers. */
fn wino_round(b: mat4x4<f32>, at: vec3u) {
  let rows = 4u * WINO_TY;
  let cols = 4u * WINO_TX;
  workgroupBarrier();
  for (var r = 0u; r < 4u; r++) { gemm_ab[((at.x * rows + 4u * at.z + r) * cols + 4u * at.y) / 4u] = b[r]; }
  workgroupBarrier();
}

/** The (row, column) of the tile that thread li takes in round (bi, bj): one each. */
fn wino_pair(li: u32, bi: u32, bj: u32) -> vec2u {
  let cols = 4u * WINO_TX;
  return vec2u(li / cols + 4u * WINO_TY * bi, li % cols + 4u * WINO_TX * bj);
}

/** The 16 GEMMs' values (m[i][j] of position 4·i + j) of thread li's pair in this round's block. */
fn wino_values(li: u32) -> array<vec4<f32>, 4> {
  let rows = 4u * WINO_TY;
  let cols = 4u * WINO_TX;
  let ol = li / cols;
  let tl = li % cols;
  var m: array<vec4<f32>, 4>;
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      let e = ((4u * i + j) * rows + ol) * cols + tl;
      m[i][j] = gemm_ab[e / 4u][e % 4u];
    }
  }
  return m;
}
