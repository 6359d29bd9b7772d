// Grid-stride loops for the one-thread-per-element kernels (64-thread workgroups): thread li of
// workgroup wg visits elements element0(wg, nwg, li) + j·stride(nwg), j = 0, 1, … while below the
// count. A GPU dispatch gives every element its own thread (one trip); on a CPU adapter the dispatch
// is capped (Gpu.spread in src/gpu/runtime.ts) and each workgroup loops, because lavapipe pays about
// a microsecond per workgroup, more than 64 elements of elementwise work cost.
fn element0(wg: vec3u, nwg: vec3u, li: u32) -> u32 {
  return (wg.x + wg.y * nwg.x) * 64u + li;
}

fn stride(nwg: vec3u) -> u32 {
  return nwg.x * nwg.y * 64u;
}
