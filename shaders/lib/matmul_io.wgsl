// The interface of both matmul kernels (matmul.wgsl, matmul_lanes.wgsl; src/ops/matmul.ts):
// C = act(op(A) · op(B) + bias) [+ C when ACCUM], M rows, N columns, K inner, row-major f32.
// A is [M,K], or [K,M] when TRANS_A; B is [K,N], or [N,K] when TRANS_B; bias is [N]; C is [M,N].
// The tiled kernel splits K `splits` ways in chunks of `chunk` (matmul.wgsl); the lane kernel reads
// neither.
// seed, rate and scale are the dropout's of lib/matmul_out_fused.wgsl or lib/chain_store.wgsl, the pool_*
// fields the window of the latter's pooling; smoothing, loss_scale and grad shaders/matmul_xent.wgsl's
// (unread by the plain kernels).
struct Params {
  m: u32, n: u32, k: u32, splits: u32, chunk: u32, seed: u32, rate: f32, scale: f32,
  smoothing: f32, loss_scale: f32, grad: u32,
  pool_h: u32, pool_w: u32, pool_oh: u32, pool_ow: u32, pool_kh: u32, pool_kw: u32,
  pool_sh: u32, pool_sw: u32, pool_pad_top: u32, pool_pad_left: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUM: bool = false;

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

// C[i] from the GEMM's value v at column col: the bias, the activation and the accumulation.
fn mm_value(i: u32, col: u32, v: f32) -> f32 {
  var x = v;
  if (HAS_BIAS) { x += bias[col]; }
  x = act(x);
  if (ACCUM) { x += c[i]; }
  return x;
}
