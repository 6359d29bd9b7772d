// C = act(op(A) · op(B) + bias)  [+ C when ACCUM]; with GEMM_SUMS 2 also dbias[n] = Σ_k op(B)[k,n]
// (a dense layer's dW = Xᵀ·dZ gives db = Σ_rows dZ from the same slices).
// M rows, N columns, K inner (uniform P); all tensors row-major f32.
// A is [M,K], or [K,M] when TRANS_A; B is [K,N], or [N,K] when TRANS_B; bias is [N]; C is [M,N].
// Dense layers: forward X·W (+b, act); dX = dY·Wᵀ (TRANS_B); dW = Xᵀ·dY (TRANS_A), db alongside.
// The GEMM is lib/gemm.wgsl's: tile GEMM_BM × GEMM_BN, register blocks, fetch order (A: 0, or 1 when
// TRANS_A; B: 1, or 0 when TRANS_B, so consecutive threads read consecutive addresses).
// Entry points and bindings:
//   main         one pass: 0 params, 1 a, 2 b, 3 bias (any buffer when !HAS_BIAS), 4 c, 5 dbias (any
//                other buffer without GEMM_SUMS 2: bias and weights may share a packed buffer, which
//                must not also be bound writable); the dropout epilogue also 6 counter, 7 epi
//                (lib/matmul_out_fused.wgsl), the residual add's 6 shortcut (lib/matmul_out_add.wgsl),
//                the chain epilogue 6 counter, 7 saved, 8 argmax or term (lib/matmul_out_chain.wgsl,
//                lib/chain_store.wgsl).
//                Dispatch (ceil(N/BN), ceil(M/BM)) workgroups of GEMM_TX × GEMM_TY threads.
//   main_split   split-K: workgroup z multiplies K range [z·chunk, (z+1)·chunk) into its partial tile
//                parts[z][M (+1 row of sums)][N]: 0 params, 1 a, 2 b, 3 parts. Dispatch (…, …, splits).
//   reduce_splits  the partials summed in a fixed order, then the epilogue (lib/gemm.wgsl):
//                0 params, 1 parts, 2 unused, 3 bias, 4 c, 5 dbias (and the epilogue's, as main).
// Uses act() from lib/activation.wgsl, the GEMM core from lib/gemm.wgsl, the bindings, uniform and
// variant flags from lib/matmul_io.wgsl and mm_store() from lib/matmul_out.wgsl (or, with a fused
// epilogue, lib/matmul_out_fused.wgsl, lib/matmul_out_add.wgsl or lib/matmul_out_chain.wgsl, and dropout()
// from lib/random.wgsl), prepended by the loader.

@group(0) @binding(5) var<storage, read_write> dbias: array<f32>;
@group(0) @binding(3) var<storage, read_write> gemm_parts_out: array<f32>;
@group(0) @binding(1) var<storage, read> gemm_parts_in: array<f32>;

var<private> mm_row0: u32;
var<private> mm_col0: u32;

fn load_a(m: u32, k: u32) -> f32 {
  if (TRANS_A) { return a[k * P.m + m]; }
  return a[m * P.k + k];
}

fn load_b(k: u32, n: u32) -> f32 {
  if (TRANS_B) { return b[n * P.k + k]; }
  return b[k * P.n + n];
}

fn gemm_fetch(k0: u32, k_end: u32, li: u32) {
  for (var j = 0u; j < GEMM_LA; j++) {
    let e = gemm_a_coord(j, li);
    let m = mm_row0 + e.y;
    let k = k0 + e.x;
    var v = 0.0;
    if (!GEMM_CHECKED || (m < P.m && k < k_end)) { v = load_a(m, k); }
    gemm_pa[j] = v;
  }
  for (var j = 0u; j < GEMM_LB; j++) {
    let e = gemm_b_coord(j, li);
    let n = mm_col0 + e.y;
    let k = k0 + e.x;
    var v = 0.0;
    if (!GEMM_CHECKED || (n < P.n && k < k_end)) { v = load_b(k, n); }
    gemm_pb[j] = v;
  }
}

fn gemm_out_dims() -> vec2u {
  return vec2u(P.m + select(0u, 1u, GEMM_SUMS == 2u), P.n);
}

fn gemm_store(row: u32, col: u32, v: f32) {
  if (GEMM_SUMS == 2u && row == P.m) {
    dbias[col] = v;
    return;
  }
  mm_store(row * P.n + col, col, v);
}

fn gemm_store4(row: u32, col: u32, v: vec4<f32>, count: u32) {
  for (var i = 0u; i < 4u; i++) {
    if (i < count) { gemm_store(row, col + i, v[i]); }
  }
}

fn tile_of(wg: vec3u) -> GemmTile {
  mm_row0 = wg.y * GEMM_BM;
  mm_col0 = wg.x * GEMM_BN;
  return GemmTile(mm_row0, mm_col0, P.m, P.n, 0u);
}

@compute @workgroup_size(GEMM_TX, GEMM_TY)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let t = tile_of(wg);
  gemm_run(t, 0u, P.k, lid, li);
  gemm_emit_store(t, lid, li);
}

@compute @workgroup_size(GEMM_TX, GEMM_TY)
fn main_split(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u,
              @builtin(local_invocation_index) li: u32) {
  let t = tile_of(wg);
  let k0 = wg.z * P.chunk;
  gemm_run(t, k0, min(P.k, k0 + P.chunk), lid, li);
  let dims = gemm_out_dims();
  gemm_emit_parts(t, lid, li, wg.z * dims.x * dims.y, dims.y);
}
