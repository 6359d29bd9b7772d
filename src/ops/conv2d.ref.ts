// CPU reference for conv2d, float64: direct nested loops over the definitions. Same layouts as the
// shaders: x [N,C,H,W], w [K,C,KH,KW], b [K], y/dy [N,K,OH,OW].
import { actRef } from './act.ref.ts';
import type { Act } from '../../dsl/ir.ts';
import { conv2dGeometry, type Conv2dShape } from './conv2d.ts';

/** Calls f(oy, ox, iy, ix, ky, kx) for every kernel tap that lands inside the input. */
function eachTap(
  s: Conv2dShape,
  f: (oy: number, ox: number, iy: number, ix: number, ky: number, kx: number) => void,
): void {
  const { oh, ow, padTop, padLeft } = conv2dGeometry(s);
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++) {
      for (let ky = 0; ky < s.kh; ky++) {
        const iy = oy * s.strideH + ky - padTop;
        if (iy < 0 || iy >= s.h) continue;
        for (let kx = 0; kx < s.kw; kx++) {
          const ix = ox * s.strideW + kx - padLeft;
          if (ix < 0 || ix >= s.w) continue;
          f(oy, ox, iy, ix, ky, kx);
        }
      }
    }
  }
}

/** y[n,k,oy,ox] = act(Σ_{c,ky,kx} x[n,c,oy·sh+ky−padTop, ox·sw+kx−padLeft] · w[k,c,ky,kx] + b[k]). */
export function conv2dRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  b: ArrayLike<number> | null,
  s: Conv2dShape,
  act: Act = { kind: 'linear' },
): Float64Array {
  const { oh, ow } = conv2dGeometry(s);
  const { n: N, c: C, k: K, h: H, w: W, kh: KH, kw: KW } = s;
  const y = new Float64Array(N * K * oh * ow);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const out = (n * K + k) * oh * ow;
      for (let c = 0; c < C; c++) {
        eachTap(s, (oy, ox, iy, ix, ky, kx) => {
          y[out + oy * ow + ox]! += x[((n * C + c) * H + iy) * W + ix]! * w[((k * C + c) * KH + ky) * KW + kx]!;
        });
      }
      for (let i = out; i < out + oh * ow; i++) y[i] = actRef(act, y[i]! + (b ? b[k]! : 0));
    }
  }
  return y;
}

/** dx[n,c,iy,ix] = Σ dy[n,k,oy,ox] · w[k,c,ky,kx] over every (k, oy, ox, ky, kx) whose tap reads x[n,c,iy,ix]. */
export function conv2dBackwardInputRef(dy: ArrayLike<number>, w: ArrayLike<number>, s: Conv2dShape): Float64Array {
  const { oh, ow } = conv2dGeometry(s);
  const { n: N, c: C, k: K, h: H, w: W, kh: KH, kw: KW } = s;
  const dx = new Float64Array(N * C * H * W);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      for (let c = 0; c < C; c++) {
        eachTap(s, (oy, ox, iy, ix, ky, kx) => {
          dx[((n * C + c) * H + iy) * W + ix]! +=
            dy[((n * K + k) * oh + oy) * ow + ox]! * w[((k * C + c) * KH + ky) * KW + kx]!;
        });
      }
    }
  }
  return dx;
}

/**
 * dw[k,c,ky,kx] = Σ_{n,oy,ox} dy[n,k,oy,ox] · x[n,c,oy·sh+ky−padTop, ox·sw+kx−padLeft];
 * db[k] = Σ_{n,oy,ox} dy[n,k,oy,ox].
 */
export function conv2dBackwardWeightsRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  s: Conv2dShape,
): { dw: Float64Array; db: Float64Array } {
  const { oh, ow } = conv2dGeometry(s);
  const { n: N, c: C, k: K, h: H, w: W, kh: KH, kw: KW } = s;
  const dw = new Float64Array(K * C * KH * KW);
  const db = new Float64Array(K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const out = (n * K + k) * oh * ow;
      for (let i = out; i < out + oh * ow; i++) db[k]! += dy[i]!;
      for (let c = 0; c < C; c++) {
        eachTap(s, (oy, ox, iy, ix, ky, kx) => {
          dw[((k * C + c) * KH + ky) * KW + kx]! += dy[out + oy * ow + ox]! * x[((n * C + c) * H + iy) * W + ix]!;
        });
      }
    }
  }
  return { dw, db };
}
