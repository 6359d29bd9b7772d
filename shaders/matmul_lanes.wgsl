// C = act(op(A) · op(B) + bias)  [+ C when ACCUM], for CPU adapters: matmul.wgsl's GEMM tiled for
// SIMD lanes (lib/lanes.wgsl) instead of a GPU workgroup.
// M rows, N columns, K inner (uniform P); all tensors row-major f32.
// A is [M,K], or [K,M] when TRANS_A; B is [K,N], or [N,K] when TRANS_B; bias is [N]; C is [M,N].
// GEMM rows m (shuffled from the lane that loaded them); columns n (one per lane).
// Bindings: 0 params, 1 a, 2 b, 3 bias (any buffer when !HAS_BIAS), 4 c (the dropout epilogue: 6 counter,
// 7 epi; the chain epilogue: 6 counter, 7 saved, 8 argmax or term).
// Dispatch: (ceil(N / (COLS·LANES)), ceil(M / (ROW_GROUPS·LANES))) workgroups of LANES.
// Uses act() from lib/activation.wgsl, lib/lanes.wgsl, the bindings, uniform and variant flags from
// lib/matmul_io.wgsl and mm_store() from lib/matmul_out.wgsl (or lib/matmul_out_fused.wgsl,
// lib/matmul_out_add.wgsl, lib/matmul_out_chain.wgsl), prepended by the loader, and lanes_step()
// (src/gpu/lane-step.ts), appended.

@compute @workgroup_size(LANES)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let row0 = wg.y * ROW_GROUPS * LANES;
  let col0 = wg.x * COLS * LANES + lane;
  // This lane's A rows and B columns, clamped: a row or column past the end is computed and never stored.
  // A(m, k) = a[am + k·ak], B(k, n) = b[bn + k·bk].
  var am: array<u32, 8>;
  for (var g = 0u; g < ROW_GROUPS; g++) {
    let m = min(row0 + g * LANES + lane, P.m - 1u);
    am[g] = select(m * P.k, m, TRANS_A);
  }
  let ak = select(1u, P.m, TRANS_A);
  var bn: array<u32, 8>;
  for (var j = 0u; j < COLS; j++) {
    let n = min(col0 + j * LANES, P.n - 1u);
    bn[j] = select(n, n * P.k, TRANS_B);
  }
  let bk = select(P.n, 1u, TRANS_B);

  // LANE_DEPTH inner indices a step (lib/lanes.wgsl), zeros past the end (selected: a `break` there
  // gave wrong sums on lavapipe).
  var acc: array<f32, LANE_ACC>;
  for (var k0 = 0u; k0 < P.k; k0 += LANE_DEPTH) {
    var ag: array<f32, 8 * LANE_DEPTH>;
    var bv: array<f32, 8 * LANE_DEPTH>;
    for (var d = 0u; d < LANE_DEPTH; d++) {
      let live = k0 + d < P.k;
      let k = min(k0 + d, P.k - 1u);
      for (var g = 0u; g < ROW_GROUPS; g++) { ag[8u * d + g] = select(0.0, a[am[g] + k * ak], live); }
      for (var j = 0u; j < COLS; j++) { bv[8u * d + j] = select(0.0, b[bn[j] + k * bk], live); }
    }
    lanes_step(&acc, &ag, &bv);
  }

  for (var i = 0u; i < ROW_GROUPS * LANES; i++) {
    let row = row0 + i;
    if (row >= P.m) { break; }
    for (var j = 0u; j < COLS; j++) {
      let col = col0 + j * LANES;
      if (col < P.n) {
        mm_store(row * P.n + col, col, acc[i * COLS + j]);
      }
    }
  }
}
