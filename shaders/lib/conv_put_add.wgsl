// lib/conv_put.wgsl's twin for a conv whose output only a residual add reads (src/graph/fuse-add.ts): the add's
// other input, the shortcut (binding 5), added before the add's activation, y[i] = act(v + shortcut[i]), as the
// add kernel sums the conv's output and the shortcut (the conv's own activation linear).

@group(0) @binding(5) var<storage, read> shortcut: array<f32>;

fn conv_put(i: u32, v: f32) {
  y[i] = act(v + shortcut[i]);
}
