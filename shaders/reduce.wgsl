// Deterministic reductions: each thread sums a fixed strided subset in order, then a fixed tree in
// workgroup memory combines the partials, so results are bit-identical run to run (no float atomics).
// Tensors row-major: x [M,N] (rows, columns); NCHW as [N, C, HW] with HW = H·W; labels and
// predictions u32. Every entry has its own uniform at binding 0 (entries that never share a variable
// may reuse a binding number). "2-D grid" means grid() in runtime.ts: the linear workgroup index is
// wg.x + wg.y·nwg.x, and workgroups past the end do nothing.
//   sum_rows      out[j] (+)= Σ_i x[i,j]: bias gradient of a dense layer. Workgroup 16×16: 16 columns
//                 × 16 row lanes (lane r sums rows r, r+16, …), grid(ceil(N/16)). Bindings 1 x, 2 out [N].
//   sum_channels  out[c] (+)= Σ_n Σ_p x[n,c,p]. One workgroup of 256 per channel (thread t sums the
//                 channel's elements t, t+256, … of N·HW), grid(C). Bindings 1 x, 2 out [C].
//   argmax_rows   out[i] = first j with x[i,j] = max_j x[i,j]. One thread per row, 64 per workgroup,
//                 grid(ceil(M/64)). Bindings 1 x, 2 out u32 [M].
//   count_correct counter[index] += #{i : pred[i] == label[i]}. ONE workgroup of 256.
//                 Bindings 1 pred u32 [M], 2 labels u32 [M], 3 counter u32.
//   confusion     conf[label_i·K + argmax_j scores[i,j]] += 1 for each row i with label_i < K (first max
//                 on ties); u32 atomic adds commute, so the counts are deterministic. One thread per row,
//                 64 per workgroup, grid(ceil(M/64)). Bindings 1 scores [M,K], 2 labels u32 [M],
//                 3 conf u32 [K·K] (row = true label, column = prediction).
//   sum_all       out[index] (+)= scale·Σ_i x[i] (scale 1: sum, 1/n: mean). ONE workgroup of 256.
//                 Bindings 1 x [n], 2 out.
//   non_finite    flag[index] = 1 if some x[i] has all exponent bits set (NaN, ±Inf); never cleared
//                 here. x is read as u32 bits, so no float comparison can be assumed away. One thread
//                 per element, 64 per workgroup, grid(ceil(n/64)). Bindings 1 x (f32 data) [n], 2 flag.

struct RowsParams { m: u32, n: u32, accumulate: u32 }
struct ChannelParams { n: u32, c: u32, hw: u32, accumulate: u32 }
struct CountParams { m: u32, index: u32 }
struct SumParams { n: u32, index: u32, accumulate: u32, scale: f32 }
@group(0) @binding(0) var<uniform> R: RowsParams;    // sum_rows, argmax_rows; confusion (n = K)
@group(0) @binding(0) var<uniform> CH: ChannelParams; // sum_channels
@group(0) @binding(0) var<uniform> CP: CountParams;   // count_correct, non_finite (m = n)
@group(0) @binding(0) var<uniform> SP: SumParams;     // sum_all

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> out_u32: array<u32>;        // argmax_rows
@group(0) @binding(1) var<storage, read> pred: array<u32>;                 // count_correct
@group(0) @binding(2) var<storage, read> labels: array<u32>;               // count_correct, confusion
@group(0) @binding(3) var<storage, read_write> counter: array<u32>;        // count_correct
@group(0) @binding(3) var<storage, read_write> conf: array<atomic<u32>>;   // confusion (scores are x)
@group(0) @binding(1) var<storage, read> bits: array<u32>;                 // non_finite
@group(0) @binding(2) var<storage, read_write> flag: array<atomic<u32>>;   // non_finite

const WG = 256u;
var<workgroup> red: array<f32, 256>;
var<workgroup> red_u: array<u32, 256>;

fn group_index(wg: vec3u, nwg: vec3u) -> u32 {
  return wg.x + wg.y * nwg.x;
}

// Sums red[] over 256 threads in a fixed tree into red[0]. Every thread of the workgroup calls it.
fn tree(t: u32) {
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (t < h) { red[t] += red[t + h]; }
    workgroupBarrier();
  }
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

@compute @workgroup_size(256)
fn sum_channels(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) t: u32) {
  let c = group_index(wg, nwg);
  var s = 0.0;
  if (c < CH.c) {
    let count = CH.n * CH.hw;
    for (var j = t; j < count; j += WG) {
      let n = j / CH.hw;
      s += x[(n * CH.c + c) * CH.hw + (j - n * CH.hw)];
    }
  }
  red[t] = s;
  tree(t);
  if (t == 0u && c < CH.c) {
    var v = red[0];
    if (CH.accumulate != 0u) { v += out[c]; }
    out[c] = v;
  }
}

@compute @workgroup_size(64)
fn argmax_rows(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) li: u32) {
  let i = group_index(wg, nwg) * 64u + li;
  if (i >= R.m) { return; }
  out_u32[i] = row_argmax(i * R.n, R.n);
}

@compute @workgroup_size(256)
fn count_correct(@builtin(local_invocation_index) t: u32) {
  var hits = 0u;
  for (var i = t; i < CP.m; i += WG) { hits += select(0u, 1u, pred[i] == labels[i]); }
  red_u[t] = hits;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (t < h) { red_u[t] += red_u[t + h]; }
    workgroupBarrier();
  }
  if (t == 0u) { counter[CP.index] += red_u[0]; }
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

@compute @workgroup_size(256)
fn sum_all(@builtin(local_invocation_index) t: u32) {
  var s = 0.0;
  for (var i = t; i < SP.n; i += WG) { s += x[i]; }
  red[t] = s;
  tree(t);
  if (t == 0u) {
    var v = red[0] * SP.scale;
    if (SP.accumulate != 0u) { v += out[SP.index]; }
    out[SP.index] = v;
  }
}

@compute @workgroup_size(64)
fn non_finite(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) li: u32) {
  let i = group_index(wg, nwg) * 64u + li;
  if (i >= CP.m) { return; }
  if ((bits[i] & 0x7f800000u) == 0x7f800000u) { atomicStore(&flag[CP.index], 1u); }
}
