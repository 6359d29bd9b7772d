// Deterministic reductions: each thread sums a fixed strided subset in order, then a fixed tree in
// workgroup memory combines the partials, so results are bit-identical run to run (no float atomics).
// Tensors row-major: x [M,N] (rows, columns); labels u32. Every entry has its own uniform at binding 0
// (entries that never share a variable may reuse a binding number). "2-D grid" means grid() in
// runtime.ts: the linear workgroup index is wg.x + wg.y·nwg.x, and workgroups past the end do nothing.
//   sum_rows      out[j] (+)= Σ_i x[i,j]: bias gradient of a dense layer. Workgroup 16×16: 16 columns
//                 × 16 row lanes (lane r sums rows r, r+16, …), grid(ceil(N/16)). Bindings 1 x, 2 out [N].
//   confusion     conf[label_i·K + argmax_j scores[i,j]] += 1 for each row i with label_i < K (first max
//                 on ties); u32 atomic adds commute, so the counts are deterministic. One thread per row,
//                 64 per workgroup, grid(ceil(M/64)). Bindings 1 scores [M,K], 2 labels u32 [M],
//                 3 conf u32 [K·K] (row = true label, column = prediction).
//   non_finite    flag[index] = 1 if some x[i] has all exponent bits set (NaN, ±Inf); never cleared
//                 here. x is read as u32 bits, so no float comparison can be assumed away. One thread
//                 per element, 64 per workgroup, grid(ceil(n/64)). Bindings 1 x (f32 data) [n], 2 flag.

struct RowsParams { m: u32, n: u32, accumulate: u32 }
struct FlagParams { n: u32, index: u32 }
@group(0) @binding(0) var<uniform> R: RowsParams;  // sum_rows; confusion (n = K, accumulate unused)
@group(0) @binding(0) var<uniform> F: FlagParams;  // non_finite

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;               // confusion
@group(0) @binding(3) var<storage, read_write> conf: array<atomic<u32>>;   // confusion (scores are x)
@group(0) @binding(1) var<storage, read> bits: array<u32>;                 // non_finite
@group(0) @binding(2) var<storage, read_write> flag: array<atomic<u32>>;   // non_finite

var<workgroup> red: array<f32, 256>;

fn group_index(wg: vec3u, nwg: vec3u) -> u32 {
  return wg.x + wg.y * nwg.x;
}

// First index of the maximum of the n values x[row0 ..].
fn row_argmax(row0: u32, n: u32) -> u32 {
  var m = x[row0];
  var am = 0u;
  for (var j = 1u; j < n; j++) {
    let z = x[row0 + j];
    if (z > m) { m = z; am = j; }
  }
  return am;
}

@compute @workgroup_size(16, 16)
fn sum_rows(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_id) lid: vec3u) {
  let col = group_index(wg, nwg) * 16u + lid.x;
  var s = 0.0;
  if (col < R.n) {
    for (var i = lid.y; i < R.m; i += 16u) { s += x[i * R.n + col]; }
  }
  let t = lid.y * 16u + lid.x;
  red[t] = s;
  workgroupBarrier();
  for (var h = 8u; h > 0u; h >>= 1u) {
    if (lid.y < h) { red[t] += red[t + h * 16u]; }
    workgroupBarrier();
  }
  if (lid.y == 0u && col < R.n) {
    var v = red[lid.x];
    if (R.accumulate != 0u) { v += out[col]; }
    out[col] = v;
  }
}

@compute @workgroup_size(64)
fn confusion(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) li: u32) {
  let i = group_index(wg, nwg) * 64u + li;
  if (i >= R.m) { return; }
  let y = labels[i];
  if (y >= R.n) { return; }
  atomicAdd(&conf[y * R.n + row_argmax(i * R.n, R.n)], 1u);
}

@compute @workgroup_size(64)
fn non_finite(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) li: u32) {
  let i = group_index(wg, nwg) * 64u + li;
  if (i >= F.n) { return; }
  if ((bits[i] & 0x7f800000u) == 0x7f800000u) { atomicStore(&flag[F.index], 1u); }
}
