// Fused chains the planner picks (src/graph/fuse.ts): a layer's output, its pooling and its dropout
// as one kernel each way, so the tensors between them never round-trip through memory.
// N batch, C channels, planes = N·C; H×W the pool's input (the layer's output), OH×OW the pool's
// output (= H×W when POOL = 0); NCHW row-major f32 (argmax u32). Window geometry as shaders/pool.wgsl.
//   pool_dropout_forward (one thread per pool output o):
//     y[o] = pool(x)[o] · keep(o) / (1 − rate), keep(o) = rand01(seed, counter[0], o) ≥ rate;
//     max pooling writes argmax[o] as max_forward does. Bit for bit the unfused max_forward or
//     avg_forward then dropout (same operations in the same order).
//   pool_forward_parts (one thread per pool output o, windows apart, over a conv's forward left as
//     its split-K partials, SRC_SPLITS = S > 0, laid out as dX's below): each cell k of the thread's
//     block of the conv's output (lib/pool_block.wgsl: the blocks partition the plane, so cells no
//     window covers are written too) is x(k) = act(src_at(k) + bias[c]) (HAS_BIAS), written to
//     conv_y[k] (Y, which the backward reads), and the window is pooled as max_forward or avg_forward
//     pools it, then dropped out as above (DROPOUT = 1) into dst[o]; argmax[o] for max pooling. Bit
//     for bit the conv's reduce pass (its epilogue act(v + bias)), then pool_dropout_forward or the
//     unfused pooling.
//   backward_chain (one thread per layer-output element i = (p, iy, ix)):
//     g(o)  = dy[o] · keep(o) / (1 − rate)             (DROPOUT = 1; else dy[o])
//     dy[o] = src_at(o): src[o], or with SRC_SPLITS = S > 0 the S split-K partial sums of a stride-1
//             conv's dX (shaders/conv2d_backward_input.wgsl main_split: src[z][c][N·HW], P.src_len
//             floats each, HW = P.src_hw, C = P.src_c) summed from 0 in z order, as lib/gemm.wgsl
//             reduce_splits sums them for S ≤ 16 (one thread an output): bit for bit the reduced dX,
//             its pass dropped. A conv forward's partials (conv2d_forward.wgsl main_split) lie alike.
//     s(i)  = unpool(g)(i): POOL 1 max: Σ g(o) over the windows o whose argmax is i (windows that
//             do not overlap: the entry backward_chain_blocks, one thread per window writing g(o) at
//             the argmax, as max_backward_blocks does); POOL 2 avg:
//             Σ g(o) / cnt(o) over the windows holding i; POOL 0: g(i)
//     dx(i) = s(i) · act_grad_y(saved[i]) (FROM_OUTPUT = 1: saved is the layer's output y) or
//             s(i) · act_grad_x(saved[i]) (saved is the activation's input x)
//     dL/dx = act'(·) ⊙ unpool(dropoutᵀ(dy)): the composition of the three unfused backwards, in their
//     order of operations, so bit for bit theirs.
//     Where the dX of a conv or dense layer reads the chain's output alone, windows apart, that dX runs
//     the same math as it stores (lib/chain_store.wgsl; the planner's choice) and this kernel is not made.
// Uses act_grad_x/act_grad_y (lib/activation.wgsl: ACT, ALPHA), dropout (lib/random.wgsl), element0
// and stride (lib/stride.wgsl), prepended by the loader.
// Bindings: 1 src (x forwards, dy backwards), 2 counter (u32, word 0 the step), 3 dst (y or dx,
//   written), 4 argmax (u32: written forwards by max pooling, read backwards), 5 saved (backwards:
//   y or x for the activation's derivative); pool_forward_parts 6 y (the conv's output, written) and
//   7 bias (read; any buffer without HAS_BIAS). Unused ones are bound to a dummy.
// Dispatch: 64 threads per workgroup, Gpu.spread(P.count) workgroups, grid-stride loops.

override POOL: u32 = 0u;
override DROPOUT: u32 = 0u;
override FROM_OUTPUT: u32 = 1u;
override SRC_SPLITS: u32 = 0u;
override HAS_BIAS: bool = false;

struct Params {
  count: u32, planes: u32, h: u32, w: u32, oh: u32, ow: u32, kh: u32, kw: u32, sh: u32, sw: u32,
  pad_top: u32, pad_left: u32, seed: u32, rate: f32, scale: f32,
  src_c: u32, src_hw: u32, src_len: u32,
}
@group(0) @binding(0) var<uniform> P: Params;

@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> counter: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
@group(0) @binding(4) var<storage, read_write> argmax: array<u32>;
@group(0) @binding(5) var<storage, read> saved: array<f32>;
@group(0) @binding(6) var<storage, read_write> conv_y: array<f32>;
@group(0) @binding(7) var<storage, read> conv_bias: array<f32>;

// window(oy, ox), block_of(oy, ox): lib/pool_window.wgsl; span(i, pad, k, s, out): lib/pool_geom.wgsl;
// window_max and window_mean (p, oy, ox): lib/pool_reduce.wgsl; pool_block(base, oy, ox): lib/pool_block.wgsl.

// Dropout of value v at element o (the identity when DROPOUT = 0).
fn drop(v: f32, o: u32) -> f32 {
  if (DROPOUT == 0u) { return v; }
  return dropout(P.seed, counter[0], o, P.rate, P.scale, v);
}

// The chain's source at element o (NCHW): src[o], or its partial sums added up.
fn src_at(o: u32) -> f32 {
  if (SRC_SPLITS == 0u) { return src[o]; }
  let chw = P.src_c * P.src_hw;
  let n = o / chw;
  let r = o - n * chw;
  let c = r / P.src_hw;
  let j = c * (P.src_len / P.src_c) + n * P.src_hw + (r - c * P.src_hw);
  var s = 0.0;
  for (var z = 0u; z < SRC_SPLITS; z++) { s += src[z * P.src_len + j]; }
  return s;
}

@compute @workgroup_size(64)
fn pool_dropout_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                        @builtin(local_invocation_index) li: u32) {
  let ohw = P.oh * P.ow;
  for (var i = element0(wg, nwg, li); i < P.count; i += stride(nwg)) {
    let p = i / ohw;
    let q = i - p * ohw;
    if (POOL == 1u) {
      let m = window_max(p, q / P.ow, q % P.ow);
      dst[i] = drop(m.value, i);
      argmax[i] = m.arg;
    } else {
      dst[i] = drop(window_mean(p, q / P.ow, q % P.ow), i);
    }
  }
}

// The conv's output at element i (pool_forward_parts): its partials summed, the bias added, activated; written.
fn block_cell(i: u32) -> f32 {
  var b = 0.0;
  if (HAS_BIAS) { b = conv_bias[(i / (P.h * P.w)) % P.src_c]; }
  let v = act(src_at(i) + b);
  conv_y[i] = v;
  return v;
}

@compute @workgroup_size(64)
fn pool_forward_parts(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                      @builtin(local_invocation_index) li: u32) {
  let ohw = P.oh * P.ow;
  for (var o = element0(wg, nwg, li); o < P.count; o += stride(nwg)) {
    let p = o / ohw;
    let q = o - p * ohw;
    let oy = q / P.ow;
    let m = pool_block(p * P.h * P.w, oy, q - oy * P.ow);
    dst[o] = drop(m.value, o);
    if (POOL == 1u) { argmax[o] = m.arg; }
  }
}

// unpool(dropoutᵀ(dy)) at element k = iy·W + ix of plane p (POOL ≠ 0).
fn unpooled(p: u32, iy: u32, ix: u32) -> f32 {
  let k = iy * P.w + ix;
  let ry = span(iy, P.pad_top, P.kh, P.sh, P.oh);
  let rx = span(ix, P.pad_left, P.kw, P.sw, P.ow);
  var s = 0.0;
  for (var oy = ry.x; oy < ry.y; oy++) {
    for (var ox = rx.x; ox < rx.y; ox++) {
      let o = (p * P.oh + oy) * P.ow + ox;
      if (POOL == 1u) {
        if (argmax[o] == k) {
          let g = drop(src_at(o), o);
          s += g;
        }
      } else {
        let r = window(oy, ox);
        s += drop(src_at(o), o) / f32((r.y - r.x) * (r.w - r.z));
      }
    }
  }
  return s;
}

// dx at element k of a plane from its unpooled gradient s: act'(saved) ⊙ s, written.
fn put_dx(k: u32, s: f32) {
  if (ACT == 0u) {
    dst[k] = s;
  } else if (FROM_OUTPUT != 0u) {
    dst[k] = s * act_grad_y(saved[k]);
  } else {
    dst[k] = s * act_grad_x(saved[k]);
  }
}

@compute @workgroup_size(64)
fn backward_chain(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) li: u32) {
  let hw = P.h * P.w;
  for (var i = element0(wg, nwg, li); i < P.count; i += stride(nwg)) {
    let p = i / hw;
    let k = i - p * hw;
    let iy = k / P.w;
    var s: f32;
    if (POOL == 0u) { s = drop(src_at(i), i); } else { s = unpooled(p, iy, k - iy * P.w); }
    put_dx(i, s);
  }
}

// Max pooling whose windows do not overlap (src/ops/pool.ts windowsApart): one thread per pool output o writes its
// block of the layer's output (lib/pool_window.wgsl block_of), g(o) at the argmax and 0 elsewhere,
// each through act'. The dropout mask and the partial sums are computed once per window instead of
// once per cell; the values, and their order of operations, are backward_chain's.
@compute @workgroup_size(64)
fn backward_chain_blocks(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                         @builtin(local_invocation_index) li: u32) {
  let ohw = P.oh * P.ow;
  for (var o = element0(wg, nwg, li); o < P.planes * ohw; o += stride(nwg)) {
    let p = o / ohw;
    let q = o - p * ohw;
    let oy = q / P.ow;
    let ox = q - oy * P.ow;
    let blk = block_of(oy, ox);
    let base = p * P.h * P.w;
    let arg = argmax[o];
    let g = drop(src_at(o), o);
    for (var iy = blk.x; iy < blk.y; iy++) {
      for (var ix = blk.z; ix < blk.w; ix++) {
        let k = iy * P.w + ix;
        put_dx(base + k, select(0.0, g, k == arg));
      }
    }
  }
}
