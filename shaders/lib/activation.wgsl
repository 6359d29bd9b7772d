// Activations shared by kernel epilogues and the elementwise kernels.
// The shader loader (src/gpu/shaders.ts) prepends this file to the shaders that use act().
// ACT: 0 linear, 1 relu, 2 leaky relu (slope ALPHA below 0), 3 sigmoid, 4 tanh, 5 gelu (exact erf form).
// ALPHA has no default: the host always passes it (src/ops/act.ts actConstants; the slope the model says).
override ACT: u32 = 0u;
override ALPHA: f32;

// erf by Abramowitz & Stegun 7.1.26: max absolute error 1.5e-7, below f32 rounding of gelu's result.
fn erf_approx(x: f32) -> f32 {
  let s = sign(x);
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * z);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return s * (1.0 - poly * exp(-z * z));
}

fn act(x: f32) -> f32 {
  switch ACT {
    case 1u: { return max(x, 0.0); }
    case 2u: { return select(ALPHA * x, x, x > 0.0); }
    case 3u: { return 1.0 / (1.0 + exp(-x)); }
    // tanh's exp form overflows to NaN past |x| ≈ 44 on some drivers; it is ±1 in f32 well before 15.
    case 4u: { return tanh(clamp(x, -15.0, 15.0)); }
    case 5u: { return 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752)); }
    default: { return x; }
  }
}

// d act / dx, from the input x (works for every activation).
fn act_grad_x(x: f32) -> f32 {
  switch ACT {
    case 1u: { return select(0.0, 1.0, x > 0.0); }
    case 2u: { return select(ALPHA, 1.0, x > 0.0); }
    case 3u: { let y = 1.0 / (1.0 + exp(-x)); return y * (1.0 - y); }
    case 4u: { let y = tanh(clamp(x, -15.0, 15.0)); return 1.0 - y * y; }
    case 5u: { return 0.5 * (1.0 + erf_approx(x * 0.70710678118654752)) + x * 0.39894228040143268 * exp(-0.5 * x * x); }
    default: { return 1.0; }
  }
}

// d act / dx, from the output y = act(x): lets a fused forward keep only its output.
// Valid for linear, relu, leaky (ALPHA > 0), sigmoid and tanh; gelu needs act_grad_x.
fn act_grad_y(y: f32) -> f32 {
  switch ACT {
    case 1u: { return select(0.0, 1.0, y > 0.0); }
    case 2u: { return select(ALPHA, 1.0, y > 0.0); }
    case 3u: { return y * (1.0 - y); }
    case 4u: { return 1.0 - y * y; }
    default: { return 1.0; }
  }
}
