// Elementwise kernels over `count` f32 elements in any layout (i is the flat element index).
//   act_forward:  dst = act(a)                                         (a = x, dst = y)
//   act_backward: dL/dx = dy · act'(…): dst = a · act_grad_x(b), or a · act_grad_y(b) when
//                 P.from_output ≠ 0 (a = dy, b = the saved x or y, dst = dx); dst += … when P.accumulate ≠ 0
//   act_backward_sum: dst = (a + c) · act_grad_y(b): two contributions to dy added, then act' from the output
//                 (a, c = the two, b = the saved y)
//   add:          dst = act(a + b)              (ACT linear: a + b; else a residual add and the activation after it)
//   accumulate:   dst += a                       (gradient fan-out, e.g. residual connections)
//   copy:         dst = a
//   fill:         dst = P.value
// Uses act(), act_grad_x(), act_grad_y() from lib/activation.wgsl (prepended by the loader); ACT and
// ALPHA are override constants, so only the act_* and add pipelines differ per activation.
// Bindings: the output first, so every entry uses a contiguous prefix: 1 dst (written, and read by
//   accumulate), 2 a (read), 3 b (read), 4 c (read: act_backward_sum only). fill binds only dst; act_forward,
//   accumulate, copy bind dst, a.
//   dst must not be a or b (a dispatch cannot read and write one buffer).
// Dispatch: 64 threads per workgroup, Gpu.spread(count) workgroups; grid-stride loops over i
//   (lib/stride.wgsl, prepended by the loader).

struct Params { count: u32, value: f32, from_output: u32, accumulate: u32 }
@group(0) @binding(0) var<uniform> P: Params;

@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> c: array<f32>;

@compute @workgroup_size(64)
fn act_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) li: u32) {
  for (var i = element0(wg, nwg, li); i < P.count; i += stride(nwg)) {
    dst[i] = act(a[i]);
  }
}

@compute @workgroup_size(64)
fn act_backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) li: u32) {
  for (var i = element0(wg, nwg, li); i < P.count; i += stride(nwg)) {
    var g: f32;
    if (P.from_output != 0u) { g = act_grad_y(b[i]); } else { g = act_grad_x(b[i]); }
    var v = a[i] * g;
    if (P.accumulate != 0u) { v += dst[i]; }
    dst[i] = v;
  }
}

@compute @workgroup_size(64)
fn act_backward_sum(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_index) li: u32) {
  for (var i = element0(wg, nwg, li); i < P.count; i += stride(nwg)) {
    dst[i] = (a[i] + c[i]) * act_grad_y(b[i]);
  }
}

@compute @workgroup_size(64)
fn add(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
       @builtin(local_invocation_index) li: u32) {
  for (var i = element0(wg, nwg, li); i < P.count; i += stride(nwg)) {
    dst[i] = act(a[i] + b[i]);
  }
}

@compute @workgroup_size(64)
fn accumulate(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) li: u32) {
  for (var i = element0(wg, nwg, li); i < P.count; i += stride(nwg)) {
    dst[i] += a[i];
  }
}

@compute @workgroup_size(64)
fn copy(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  for (var i = element0(wg, nwg, li); i < P.count; i += stride(nwg)) {
    dst[i] = a[i];
  }
}

@compute @workgroup_size(64)
fn fill(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  for (var i = element0(wg, nwg, li); i < P.count; i += stride(nwg)) {
    dst[i] = P.value;
  }
}
