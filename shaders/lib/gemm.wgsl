// The register-tiled inner step shared by the GEMM-shaped kernels (matmul and the three conv2d
// passes). A workgroup of GEMM_T×GEMM_T threads computes a BM×BN output tile (BM, BN ∈ {16, 32, 64}:
// consts or overrides of the including shader) from BK-deep slices that the shader stages in
// workgroup memory, As [BK][BM] and Bs [BK][BN]. Thread (x, y) owns rows y + GEMM_T·i (i < BM/GEMM_T)
// and columns x + GEMM_T·j (j < BN/GEMM_T), accumulated in acc[i·8 + j]; every loop bound is a
// pipeline constant, so the accumulators stay in registers.
// GEMM_T is 8 on CPU adapters (64 threads with 8×8 register tiles: measured 1.5–2.3× faster on
// lavapipe than 16) and 16 on GPUs (256 threads with at most 4×4 each). The GPU choice is a
// hypothesis not yet timed: the reference network's layers have only a few hundred tiles, so 256
// threads per tile should keep more of a large GPU busy than 64.
override GEMM_T: u32 = 16u;
override GEMM_THREADS: u32 = GEMM_T * GEMM_T;
// Staging a BK×64 slice: a thread's successive loads along a 64-wide side are GEMM_LOAD_STRIDE
// apart (4 or 16) when it keeps one inner index, and it gathers GEMM_SLICE_ROWS (16 or 4) inner
// indices when it keeps one column.
override GEMM_LOAD_STRIDE: u32 = GEMM_THREADS / 16u;
override GEMM_SLICE_ROWS: u32 = 1024u / GEMM_THREADS;
const BK = 16u;

var<workgroup> As: array<f32, 1024>; // [BK][BM]
var<workgroup> Bs: array<f32, 1024>; // [BK][BN]

fn gemm_tile(acc: ptr<function, array<f32, 64>>, lid: vec3u) {
  for (var kk = 0u; kk < BK; kk++) {
    var ar: array<f32, 8>;
    var br: array<f32, 8>;
    for (var i = 0u; i < BM / GEMM_T; i++) { ar[i] = As[kk * BM + lid.y + i * GEMM_T]; }
    for (var j = 0u; j < BN / GEMM_T; j++) { br[j] = Bs[kk * BN + lid.x + j * GEMM_T]; }
    for (var i = 0u; i < BM / GEMM_T; i++) {
      for (var j = 0u; j < BN / GEMM_T; j++) {
        (*acc)[i * 8u + j] = fma(ar[i], br[j], (*acc)[i * 8u + j]);
      }
    }
  }
}
