// The backward chain below a layer (src/graph/fuse.ts: the dropoutᵀ, unpooling and activation derivative
// of the layers under it), run where that layer's dX stores, so that the chain has no pass of its own and
// the dX is never written: lib/matmul_out_chain.wgsl (a dense layer's dX), lib/conv_dx_chain.wgsl (a
// conv's). Element o of the dX is element o of the chain's output gradient (a flatten between keeps the
// NCHW order); chain_store(o, v) writes the chain's input gradient dz from it instead, as
// shaders/chain.wgsl backward_chain (backward_chain_blocks for max pooling) writes it from the stored dX,
// in the same order of operations, so bit for bit:
//   u = term(o) + v  (TERM = 1: a second contribution to the gradient at o, added first, as the unfused
//     plan's sum pass adds it; src/graph/junction.ts), else u = v
//   g = u · keep(o) / (1 − rate)  (DROPOUT = 1; else u), keep(o) = rand01(seed, counter[0], o) ≥ rate
//   POOL 0: dz[o] = put(g)
//   POOL 1 max, 2 average, windows apart (lib/pool_geom.wgsl over the uniform's pool_* fields): o is an
//     output of plane p = o / (pool_oh·pool_ow); every cell k of its block (cells no window covers too)
//     gets dz[p·pool_h·pool_w + k] = put(s), s = g at the argmax (max) or g / the window's cells in the
//     window (average), else 0
//   put(s) = s (ACT 0), s · act_grad_y(saved[k]) (FROM_OUTPUT = 1: saved the head's output Y), else
//     s · act_grad_x(saved[k]) (saved the activation's input X)
// The includer's uniform P has seed, rate, scale (lib/random.wgsl dropout) and pool_h, pool_w, pool_oh,
// pool_ow, pool_kh, pool_kw, pool_sh, pool_sw, pool_pad_top, pool_pad_left (src/ops/chain.ts
// chainStoreOf); it defines chain_put(k, v), dz[k] = v. Uses act_grad_x/act_grad_y (lib/activation.wgsl).
// Bindings 6 counter (u32, word 0 the step), 7 saved, 8 aux: the max pooling's argmax (u32, per output), or the
// term's f32 bits (TERM = 1; a chain with a term has no max pooling, so one binding serves both).

override POOL: u32 = 0u;
// As shaders/chain.wgsl's (src/ops/chain.ts chainConstants gives both).
override DROPOUT: u32 = 1u;
override FROM_OUTPUT: u32 = 1u;
// Not shaders/chain.wgsl's: its pass sums no second gradient.
override TERM: u32 = 0u;

@group(0) @binding(6) var<storage, read> counter: array<u32>;
@group(0) @binding(7) var<storage, read> saved: array<f32>;
@group(0) @binding(8) var<storage, read> chain_aux: array<u32>;

fn chain_pool() -> PoolGeom {
  return PoolGeom(P.pool_h, P.pool_w, P.pool_oh, P.pool_ow, P.pool_kh, P.pool_kw, P.pool_sh, P.pool_sw,
                  P.pool_pad_top, P.pool_pad_left);
}

// dz[k] from its unpooled gradient s: act'(saved[k]) ⊙ s.
fn chain_put_dz(k: u32, s: f32) {
  if (ACT == 0u) {
    chain_put(k, s);
  } else if (FROM_OUTPUT != 0u) {
    chain_put(k, s * act_grad_y(saved[k]));
  } else {
    chain_put(k, s * act_grad_x(saved[k]));
  }
}

fn chain_store(o: u32, v: f32) {
  if (POOL == 0u) {
    chain_store_at(o, 0u, 0u, 0u, v);
    return;
  }
  let q = chain_pool();
  let ohw = q.oh * q.ow;
  let p = o / ohw;
  let r = o - p * ohw;
  let oy = r / q.ow;
  chain_store_at(o, p, oy, r - oy * q.ow, v);
}

// chain_store with o's plane p and pooled position (oy, ox) given (read only with a pooling): a store that knows
// them divides nothing.
fn chain_store_at(o: u32, p: u32, oy: u32, ox: u32, v: f32) {
  var g = v;
  if (TERM != 0u) { g = bitcast<f32>(chain_aux[o]) + v; }
  if (DROPOUT != 0u) { g = dropout(P.seed, counter[0], o, P.rate, P.scale, g); }
  if (POOL == 0u) {
    chain_put_dz(o, g);
    return;
  }
  let q = chain_pool();
  let blk = geom_block(q, oy, ox);
  let win = geom_window(q, oy, ox);
  let cells = f32((win.y - win.x) * (win.w - win.z));
  var arg = 0u;
  if (POOL == 1u) { arg = chain_aux[o]; }
  let base = p * q.h * q.w;
  for (var iy = blk.x; iy < blk.y; iy++) {
    for (var ix = blk.z; ix < blk.w; ix++) {
      let k = iy * q.w + ix;
      var s = 0.0;
      if (POOL == 1u) {
        s = select(0.0, g, k == arg);
      } else if (iy >= win.x && iy < win.y && ix >= win.z && ix < win.w) {
        s += g / cells;
      }
      chain_put_dz(base + k, s);
    }
  }
}
