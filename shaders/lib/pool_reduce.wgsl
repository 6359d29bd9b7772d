// A pooling window's maximum (and where) or mean over the including shader's input planes src (NCHW,
// H×W each): shared by shaders/pool.wgsl and chain.wgsl, prepended by the loader after
// lib/pool_window.wgsl (window).

// A window's first maximum and where it is: arg = iy·W + ix within the input plane.
struct WindowMax { value: f32, arg: u32 }

// Max over the real cells of output (oy, ox)'s window in plane p, row-major; ties: the earliest cell wins.
fn window_max(p: u32, oy: u32, ox: u32) -> WindowMax {
  let r = window(oy, ox);
  let base = p * P.h * P.w;
  var arg = r.x * P.w + r.z;
  var best = src[base + arg];
  for (var iy = r.x; iy < r.y; iy++) {
    for (var ix = r.z; ix < r.w; ix++) {
      let k = iy * P.w + ix;
      let v = src[base + k];
      if (v > best) { best = v; arg = k; }
    }
  }
  return WindowMax(best, arg);
}

// Mean of the real cells of output (oy, ox)'s window in plane p: their sum in row-major order / their count.
fn window_mean(p: u32, oy: u32, ox: u32) -> f32 {
  let r = window(oy, ox);
  let base = p * P.h * P.w;
  var s = 0.0;
  for (var iy = r.x; iy < r.y; iy++) {
    for (var ix = r.z; ix < r.w; ix++) { s += src[base + iy * P.w + ix]; }
  }
  return s / f32((r.y - r.x) * (r.w - r.z));
}
