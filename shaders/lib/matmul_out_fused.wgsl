// C's store of the matmul kernels with a dense layer's epilogue (the planner's fusions, src/graph/fuse.ts),
// prepended in place of lib/matmul_out.wgsl. EPILOGUE, at element i = m·N + n of C:
//   1 forward dropout: C as the plain kernel writes it, and epi[i] = C[i] · keep(i) / (1 − rate),
//     keep(i) = rand01(seed, counter[0], i) ≥ rate: bit for bit shaders/dropout.wgsl run on C.
//   2 backward chain, the dX of the layer after a dropout: C[i] = v · keep(i) / (1 − rate) · act'(epi[i])
//     (0 where dropped), act' that of ACT (lib/activation.wgsl) from the head's output Y (FROM_OUTPUT)
//     or input X: bit for bit shaders/chain.wgsl backward_chain (no pooling) run on the plain dX. No
//     bias, activation or accumulation then.
// Bindings 6 counter (u32, word 0 the step) and 7 epi (the dropped output, written; or the saved values).

override EPILOGUE: u32 = 1u;
override FROM_OUTPUT: bool = true;
@group(0) @binding(6) var<storage, read> counter: array<u32>;
@group(0) @binding(7) var<storage, read_write> epi: array<f32>;

// v · keep(i) / (1 − rate), 0 where element i is dropped (lib/random.wgsl dropout).
fn mm_drop(v: f32, i: u32) -> f32 {
  return dropout(P.seed, counter[0], i, P.rate, P.scale, v);
}

fn mm_store(i: u32, col: u32, v: f32) {
  if (EPILOGUE == 2u) {
    let s = mm_drop(v, i);
    if (FROM_OUTPUT) { c[i] = s * act_grad_y(epi[i]); } else { c[i] = s * act_grad_x(epi[i]); }
    return;
  }
  let x = mm_value(i, col, v);
  c[i] = x;
  epi[i] = mm_drop(x, i);
}
