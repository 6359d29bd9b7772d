// The register-tile update of the tiled GEMMs (lib/gemm.wgsl) and the Winograd GEMMs (lib/winograd.wgsl),
// prepended before them by the loader: a 4×4 block of accumulators (block[r] the vec4 of its row r)
// gains the outer product of a column of A and a row of B.

/** c + a·bᵀ for a 4×4 block: row r gains a[r]·b. */
fn rank1(c: mat4x4<f32>, a: vec4<f32>, b: vec4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(
    fma(vec4(a.x), b, c[0]),
    fma(vec4(a.y), b, c[1]),
    fma(vec4(a.z), b, c[2]),
    fma(vec4(a.w), b, c[3]),
  );
}
