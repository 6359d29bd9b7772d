// The split-K reductions of a training step's weight gradients in one pass (src/ops/grad-reduce.ts),
// written into the gradient buffer, in place of one reduce_splits pass per layer: the sums of
// lib/grad_sums.wgsl (its arithmetic and segment table), prepended by the loader. Where the update
// sums them on its way (shaders/optimizer.wgsl adam_sums, sgd_sums) this pass is not made.
// Segments: P.count (≤ 32), their table in P.seg (lib/grad_sums.wgsl).
// Bindings: 0 P, 1 parts (read), 2 grads (read_write; the plan's gradient buffer, whole).
// Dispatch: grid(total workgroups), 256 threads each, a segment's workgroups ⌈L / (256 / R)⌉.

struct Params { count: u32, seg: array<vec4<u32>, 96> }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> parts: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;

fn gs_count() -> u32 { return P.count; }
fn gs_seg(k: u32) -> vec4u { return P.seg[k]; }
fn gs_part(j: u32) -> f32 { return parts[j]; }

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let r = grad_sum(wg.x + wg.y * nwg.x, li);
  if (r.ok) { grads[r.at] = r.v; }
}
