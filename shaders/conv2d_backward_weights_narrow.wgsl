// Conv2d backward to the weights and the bias of a conv with few taps, R = C·KH·KW ≤ 11 (a first layer of
// one channel: 9), where the GEMM's tiles would pad R + 1 columns to 16 and read workgroup memory twice as
// fast as they multiply (src/ops/conv2d_narrow.ts). Math and layout as shaders/conv2d_backward_weights.wgsl:
//   dL/dw[k,c,ky,kx] = Σ_{n,oy,ox} dy[n,k,oy,ox] · x[n, c, oy·sh + ky − padTop, ox·sw + kx − padLeft]
//   dL/db[k] = Σ_{n,oy,ox} dy[n,k,oy,ox]
// over the positions p = (n·CH + oy)·CW + ox of the CH×CW part of the output lib/conv.wgsl conv_cover says.
// A thread owns 8 out-channels × 12 columns in vec4 accumulators indexed by constants: the R taps, then
// the bias column (its input 1), then zeros. For each of its positions it loads the R taps of x and the 8
// channels' dy and does 24 vec4 multiply-adds (R + 8 loads for 96 multiply-adds, 17 at 9 taps; no
// workgroup memory).
// Workgroup: 32 lanes × 2 channel groups (16 out-channels, from 16·wg.y); split z (wg.x) walks positions
// [z·chunk, (z + 1)·chunk) with lane l taking z·chunk + l, + 32, … in order. Then each channel group's 32
// lanes meet in a fixed tree in workgroup memory (one column vec4 at a time), deterministic, and lane 0
// writes the split's partial tile parts[z][K][R + 1] (the bias in column R) or, unsplit (P.splits = 1),
// dw and db themselves.
// Entry main. Bindings: 0 params (lib/conv.wgsl P: chunk and splits set), 1 dy, 2 x, 3 dw or the partials,
// 4 db (unsplit; any buffer else). Dispatch: (splits, ⌈K/16⌉). The partials are summed as the direct
// GEMM's are (conv2d_backward_weights reduce_splits, or a training step's update: the same layout).

override HAS_BIAS: bool = false;

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> nw_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> nw_db: array<f32>;

const NW_LANES = 32u;
const NW_CH = 8u; // out-channels a thread
const NW_V = 3u; // vec4s of columns a channel: 12
const NW_COLS = 12u;

// One column vec4 of every channel of every lane, for the trees: [channel group][channel][lane].
var<workgroup> nw_red: array<vec4<f32>, 2u * NW_CH * NW_LANES>;

struct NwAcc { a: array<vec4<f32>, 24> } // [channel · NW_V + v]
var<private> nw_acc: NwAcc;

// Tap r's (c·H·W + ky·W + kx, ky, kx) from the uniform; r ≥ R: none.
fn nw_tap(r: u32) -> vec3<i32> {
  let per = P.kh * P.kw;
  let c = r / per;
  let ky = (r % per) / P.kw;
  let kx = r % P.kw;
  return vec3<i32>(i32(c * P.h * P.w + ky * P.w + kx), i32(ky), i32(kx));
}

// Column r's input at the position whose window starts at row iy0, column ix0 of the image at xbase: tap r
// of x (0 outside the image), 1 for the bias column (r = taps), 0 past it.
fn nw_col(r: u32, taps: u32, xbase: i32, iy0: i32, ix0: i32) -> f32 {
  if (r >= taps) { return select(0.0, 1.0, r == taps); }
  let t = nw_tap(r);
  let iy = iy0 + t.y;
  let ix = ix0 + t.z;
  if (iy < 0 || iy >= i32(P.h) || ix < 0 || ix >= i32(P.w)) { return 0.0; }
  return x[u32(xbase + t.x)];
}

// The 12 columns' inputs at output (n, oy, ox), four at a time.
fn nw_inputs(n: u32, oy: u32, ox: u32, taps: u32) -> array<vec4<f32>, 3> {
  let iy0 = i32(oy * P.sh) - i32(P.pad_top);
  let ix0 = i32(ox * P.sw) - i32(P.pad_left);
  let xb = i32(n * P.c * P.h * P.w) + iy0 * i32(P.w) + ix0;
  return array<vec4<f32>, 3>(
    vec4(nw_col(0u, taps, xb, iy0, ix0), nw_col(1u, taps, xb, iy0, ix0), nw_col(2u, taps, xb, iy0, ix0),
         nw_col(3u, taps, xb, iy0, ix0)),
    vec4(nw_col(4u, taps, xb, iy0, ix0), nw_col(5u, taps, xb, iy0, ix0), nw_col(6u, taps, xb, iy0, ix0),
         nw_col(7u, taps, xb, iy0, ix0)),
    vec4(nw_col(8u, taps, xb, iy0, ix0), nw_col(9u, taps, xb, iy0, ix0), nw_col(10u, taps, xb, iy0, ix0),
         nw_col(11u, taps, xb, iy0, ix0)),
  );
}

@compute @workgroup_size(32, 2)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let lane = lid.x;
  let k0 = (wg.y * 2u + lid.y) * NW_CH;
  let taps = P.c * P.kh * P.kw;
  let cover = conv_cover();
  let covered = cover.x * cover.y;
  let start = wg.x * P.chunk;
  let end = min(P.n * covered, start + P.chunk);
  let plane = P.oh * P.ow;
  for (var i = 0u; i < NW_CH * NW_V; i++) { nw_acc.a[i] = vec4(0.0); }
  for (var p = start + lane; p < end; p += NW_LANES) {
    let n = p / covered;
    let oy = (p % covered) / cover.y;
    let ox = p % cover.y;
    let b = nw_inputs(n, oy, ox, taps);
    let at_dy = n * P.k * plane + oy * P.ow + ox;
    for (var c = 0u; c < NW_CH; c++) {
      var d = 0.0;
      if (k0 + c < P.k) { d = dy[at_dy + (k0 + c) * plane]; }
      for (var v = 0u; v < NW_V; v++) { nw_acc.a[c * NW_V + v] = fma(vec4(d), b[v], nw_acc.a[c * NW_V + v]); }
    }
  }
  // Each column vec4 in turn: the group's 32 lanes meet in a fixed tree; lane 0 holds the sums.
  let at = lid.y * NW_CH * NW_LANES;
  for (var v = 0u; v < NW_V; v++) {
    for (var c = 0u; c < NW_CH; c++) { nw_red[at + c * NW_LANES + lane] = nw_acc.a[c * NW_V + v]; }
    workgroupBarrier();
    for (var h = NW_LANES / 2u; h > 0u; h >>= 1u) {
      if (lane < h) {
        for (var c = 0u; c < NW_CH; c++) {
          nw_red[at + c * NW_LANES + lane] += nw_red[at + c * NW_LANES + lane + h];
        }
      }
      workgroupBarrier();
    }
    if (lane == 0u) {
      for (var c = 0u; c < NW_CH; c++) {
        let k = k0 + c;
        let s = nw_red[at + c * NW_LANES];
        for (var j = 0u; j < 4u; j++) {
          let r = 4u * v + j;
          if (k < P.k && r <= taps) { nw_store(wg.x, k, r, taps, s[j]); }
        }
      }
    }
    workgroupBarrier();
  }
}

// Column r of out-channel k: a tap's weight gradient, or at r = R the bias gradient (written with HAS_BIAS).
fn nw_store(z: u32, k: u32, r: u32, taps: u32, v: f32) {
  let cols = taps + select(0u, 1u, HAS_BIAS);
  if (r == taps && !HAS_BIAS) { return; }
  if (P.splits > 1u) {
    nw_out[(z * P.k + k) * cols + r] = v;
  } else if (r == taps) {
    nw_db[k] = v;
  } else {
    nw_out[k * taps + r] = v;
  }
}
