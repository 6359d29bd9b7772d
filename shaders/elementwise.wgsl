// Elementwise kernels over `count` f32 elements in any layout (i is the flat element index).
//   act_forward:  dst = act(a)                                         (a = x, dst = y)
//   act_backward: dL/dx = dy · act'(…): dst = a · act_grad_x(b), or a · act_grad_y(b) when
//                 P.from_output ≠ 0 (a = dy, b = the saved x or y, dst = dx); dst += … when P.accumulate ≠ 0
//   add:          dst = a + b
//   accumulate:   dst += a                       (gradient fan-out, e.g. residual connections)
//   copy:         dst = a
//   fill:         dst = P.value
//   ema:          dst += (1 − P.value)·(a − dst): an exponential moving average with decay P.value
// Uses act(), act_grad_x(), act_grad_y() from lib/activation.wgsl (prepended by the loader); ACT and
// ALPHA are override constants, so only act_* pipelines differ per activation.
// Bindings: the output first, so every entry uses a contiguous prefix: 1 dst (written, and read by
//   accumulate), 2 a (read), 3 b (read). fill binds only dst; act_forward, accumulate, copy, ema bind dst, a.
//   dst must not be a or b (a dispatch cannot read and write one buffer).
// Dispatch: 64 threads per workgroup, ceil(count/64) workgroups as a 2-D grid (grid() in
//   runtime.ts); i = (wg.x + wg.y·nwg.x)·64 + lid.

struct Params { count: u32, value: f32, from_output: u32, accumulate: u32 }
@group(0) @binding(0) var<uniform> P: Params;

@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;

fn index(wg: vec3u, nwg: vec3u, li: u32) -> u32 {
  return (wg.x + wg.y * nwg.x) * 64u + li;
}

@compute @workgroup_size(64)
fn act_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) li: u32) {
  let i = index(wg, nwg, li);
  if (i >= P.count) { return; }
  dst[i] = act(a[i]);
}

@compute @workgroup_size(64)
fn act_backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) li: u32) {
  let i = index(wg, nwg, li);
  if (i >= P.count) { return; }
  var g: f32;
  if (P.from_output != 0u) { g = act_grad_y(b[i]); } else { g = act_grad_x(b[i]); }
  var v = a[i] * g;
  if (P.accumulate != 0u) { v += dst[i]; }
  dst[i] = v;
}

@compute @workgroup_size(64)
fn add(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
       @builtin(local_invocation_index) li: u32) {
  let i = index(wg, nwg, li);
  if (i >= P.count) { return; }
  dst[i] = a[i] + b[i];
}

@compute @workgroup_size(64)
fn accumulate(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) li: u32) {
  let i = index(wg, nwg, li);
  if (i >= P.count) { return; }
  dst[i] += a[i];
}

@compute @workgroup_size(64)
fn copy(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let i = index(wg, nwg, li);
  if (i >= P.count) { return; }
  dst[i] = a[i];
}

@compute @workgroup_size(64)
fn fill(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let i = index(wg, nwg, li);
  if (i >= P.count) { return; }
  dst[i] = P.value;
}

@compute @workgroup_size(64)
fn ema(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
       @builtin(local_invocation_index) li: u32) {
  let i = index(wg, nwg, li);
  if (i >= P.count) { return; }
  dst[i] += (1.0 - P.value) * (a[i] - dst[i]);
}
