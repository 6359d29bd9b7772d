// C = act(op(A) · op(B) + bias)  [+ C when ACCUM]
// M rows, N columns, K inner (uniform P); all tensors row-major f32.
// A is [M,K], or [K,M] when TRANS_A; B is [K,N], or [N,K] when TRANS_B; bias is [N]; C is [M,N].
// Dense layers: forward X·W (+b, act); dX = dY·Wᵀ (TRANS_B); dW = Xᵀ·dY (TRANS_A).
// Dispatch: (ceil(N/64), ceil(M/64)) workgroups of GEMM_T×GEMM_T threads; each thread owns a
// (64/GEMM_T)² block of C strided by GEMM_T so that neighbouring threads touch neighbouring columns
// (lib/gemm.wgsl).
// Uses act() from lib/activation.wgsl and gemm_tile() from lib/gemm.wgsl,
// and the bindings, uniform and variant flags from lib/matmul_io.wgsl, prepended by the loader.

const BM = 64u;
const BN = 64u;

fn load_a(m: u32, k: u32) -> f32 {
  if (m >= P.m || k >= P.k) { return 0.0; }
  if (TRANS_A) { return a[k * P.m + m]; }
  return a[m * P.k + k];
}

fn load_b(k: u32, n: u32) -> f32 {
  if (k >= P.k || n >= P.n) { return 0.0; }
  if (TRANS_B) { return b[n * P.k + k]; }
  return b[k * P.n + n];
}

@compute @workgroup_size(GEMM_T, GEMM_T)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let row0 = wg.y * BM;
  let col0 = wg.x * BN;
  var acc: array<f32, 64>;
  for (var k0 = 0u; k0 < P.k; k0 += BK) {
    // 1024 elements per tile, GEMM_SLICE_ROWS per thread; the fastest-varying index follows memory order.
    for (var i = 0u; i < GEMM_SLICE_ROWS; i++) {
      let e = li + i * GEMM_THREADS;
      var m: u32; var ka: u32;
      if (TRANS_A) { m = e % BM; ka = e / BM; } else { ka = e % BK; m = e / BK; }
      As[ka * BM + m] = load_a(row0 + m, k0 + ka);
      var n: u32; var kb: u32;
      if (TRANS_B) { kb = e % BK; n = e / BK; } else { n = e % BN; kb = e / BN; }
      Bs[kb * BN + n] = load_b(k0 + kb, col0 + n);
    }
    workgroupBarrier();
    gemm_tile(&acc, lid);
    workgroupBarrier();
  }
  for (var i = 0u; i < BM / GEMM_T; i++) {
    let row = row0 + lid.y + i * GEMM_T;
    if (row >= P.m) { continue; }
    for (var j = 0u; j < BN / GEMM_T; j++) {
      let col = col0 + lid.x + j * GEMM_T;
      if (col >= P.n) { continue; }
      var v = acc[i * 8u + j];
      if (HAS_BIAS) { v += bias[col]; }
      v = act(v);
      let idx = row * P.n + col;
      if (ACCUM) { v += c[idx]; }
      c[idx] = v;
    }
  }
}
