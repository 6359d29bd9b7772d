// Deterministic reductions: each thread sums a fixed strided subset in order, then a fixed tree in
// workgroup memory combines the partials, so results are bit-identical run to run (no float atomics;
// integer atomics only where counts commute). Tensors row-major: x [M,N] (rows, columns); labels u32.
// Every entry has its own uniform at binding 0 (entries that never share a variable may reuse a
// binding number). "2-D grid" means grid() in runtime.ts: the linear workgroup index is
// wg.x + wg.y·nwg.x, and workgroups past the end do nothing.
//   sum_rows      out[j] (+)= Σ_i x[i,j]: bias gradient of a dense layer. Workgroup of 256 threads:
//                 R = R.lanes row lanes (a power of two ≤ 256, chosen so that each lane sums at most
//                 a few rows) × 256/R columns; thread t takes column t mod (256/R) of its block and
//                 rows r, r+R, … (r = t div (256/R)), then a tree over the R lanes.
//                 grid(⌈N·R/256⌉). Bindings 1 x, 2 out [N].
//   confusion     conf[label_i·K + argmax_j scores[i,j]] += 1 for each row i with label_i < K (first max
//                 on ties). One thread per row, 256 per workgroup, grid(⌈M/256⌉); each workgroup counts
//                 into its own K×K bins in workgroup memory (K² ≤ 1024) and adds the bins it filled
//                 into conf once, so the device-wide atomics are per workgroup, not per row (larger K:
//                 straight into conf). u32 adds commute: the counts are deterministic. Bindings
//                 1 scores [M,K], 2 labels u32 [M], 3 conf u32 [K·K] (row = true label, column = prediction).
//   non_finite    flag[index] = 1 if some x[i] has all exponent bits set (NaN, ±Inf); never cleared
//                 here. x is read as u32 bits, so no float comparison can be assumed away. 64 threads
//                 per workgroup, Gpu.spread(n) workgroups, grid-stride loops (lib/stride.wgsl); a
//                 workgroup stores the flag once, if any of its threads saw one. Bindings 1 x (f32
//                 data) [n], 2 flag.

struct RowsParams { m: u32, n: u32, accumulate: u32, lanes: u32 }
struct ConfusionParams { m: u32, classes: u32 }
struct FlagParams { n: u32, index: u32 }
@group(0) @binding(0) var<uniform> R: RowsParams;       // sum_rows
@group(0) @binding(0) var<uniform> C: ConfusionParams;  // confusion
@group(0) @binding(0) var<uniform> F: FlagParams;       // non_finite

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;               // confusion
@group(0) @binding(3) var<storage, read_write> conf: array<atomic<u32>>;   // confusion (scores are x)
@group(0) @binding(1) var<storage, read> bits: array<u32>;                 // non_finite
@group(0) @binding(2) var<storage, read_write> flag: array<atomic<u32>>;   // non_finite

const WG = 256u;
const BINS = 1024u;
var<workgroup> red: array<f32, 256>;
var<workgroup> bins: array<atomic<u32>, 1024>; // zero at the start of every workgroup (WGSL)
var<workgroup> seen: atomic<u32>;

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

@compute @workgroup_size(256)
fn sum_rows(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) t: u32) {
  let cols = WG / R.lanes;
  let c = t % cols;
  let r = t / cols;
  let col = group_index(wg, nwg) * cols + c;
  var s = 0.0;
  if (col < R.n) {
    for (var i = r; i < R.m; i += R.lanes) { s += x[i * R.n + col]; }
  }
  red[t] = s;
  workgroupBarrier();
  for (var h = R.lanes / 2u; h > 0u; h >>= 1u) {
    if (r < h) { red[t] += red[t + h * cols]; }
    workgroupBarrier();
  }
  if (r == 0u && col < R.n) {
    var v = red[c];
    if (R.accumulate != 0u) { v += out[col]; }
    out[col] = v;
  }
}

@compute @workgroup_size(256)
fn confusion(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) t: u32) {
  let k2 = C.classes * C.classes;
  let binned = k2 <= BINS;
  let i = group_index(wg, nwg) * WG + t;
  if (i < C.m) {
    let y = labels[i];
    if (y < C.classes) {
      let k = y * C.classes + row_argmax(i * C.classes, C.classes);
      if (binned) { atomicAdd(&bins[k], 1u); } else { atomicAdd(&conf[k], 1u); }
    }
  }
  workgroupBarrier();
  if (binned) {
    for (var j = t; j < k2; j += WG) {
      let v = atomicLoad(&bins[j]);
      if (v != 0u) { atomicAdd(&conf[j], v); }
    }
  }
}

@compute @workgroup_size(64)
fn non_finite(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) li: u32) {
  var bad = false;
  for (var i = element0(wg, nwg, li); i < F.n; i += stride(nwg)) {
    if ((bits[i] & 0x7f800000u) == 0x7f800000u) { bad = true; }
  }
  if (bad) { atomicStore(&seen, 1u); }
  workgroupBarrier();
  if (li == 0u && atomicLoad(&seen) != 0u) { atomicStore(&flag[F.index], 1u); }
}
