// CPU reference for pooling, float64, nested loops over the output windows. Backwards scatter dy into
// dx (the obvious form); the shaders gather instead, so the two are independent checks of each other.
// Layouts as shaders/pool.wgsl: argmax holds iy·w + ix within the input plane.
import { poolGeometry, type PoolShape } from './pool.ts';
import type { GlobalPoolShape } from './global_pool.ts';

/** Visits every window: its flat output index, plane p, and its real cells rows [y0,y1) × cols [x0,x1). */
function eachWindow(
  s: PoolShape,
  f: (o: number, p: number, y0: number, y1: number, x0: number, x1: number) => void,
): void {
  const g = poolGeometry(s);
  for (let p = 0; p < s.n * s.c; p++) {
    for (let oy = 0; oy < g.oh; oy++) {
      for (let ox = 0; ox < g.ow; ox++) {
        const ty = oy * s.strideH - g.padTop,
          tx = ox * s.strideW - g.padLeft;
        const y0 = Math.max(ty, 0),
          y1 = Math.min(ty + s.kh, s.h);
        const x0 = Math.max(tx, 0),
          x1 = Math.min(tx + s.kw, s.w);
        f((p * g.oh + oy) * g.ow + ox, p, y0, y1, x0, x1);
      }
    }
  }
}

const outSize = (s: PoolShape): number => {
  const g = poolGeometry(s);
  return s.n * s.c * g.oh * g.ow;
};

/** y = max of each window's real cells; argmax = iy·w + ix of the first maximum in row-major order. */
export function maxPoolForwardRef(x: ArrayLike<number>, s: PoolShape): { y: Float64Array; argmax: Uint32Array } {
  const y = new Float64Array(outSize(s));
  const argmax = new Uint32Array(y.length);
  const hw = s.h * s.w;
  eachWindow(s, (o, p, y0, y1, x0, x1) => {
    let best = -Infinity,
      arg = -1;
    for (let iy = y0; iy < y1; iy++) {
      for (let ix = x0; ix < x1; ix++) {
        const v = x[p * hw + iy * s.w + ix]!;
        if (arg < 0 || v > best) {
          best = v;
          arg = iy * s.w + ix;
        }
      }
    }
    y[o] = best;
    argmax[o] = arg;
  });
  return { y, argmax };
}

/** dx[argmax(o)] += dy[o] (+ prior when s.accumulate). */
export function maxPoolBackwardRef(
  dy: ArrayLike<number>,
  argmax: ArrayLike<number>,
  s: PoolShape,
  prior?: ArrayLike<number>,
): Float64Array {
  const hw = s.h * s.w;
  const dx = new Float64Array(s.n * s.c * hw);
  if (s.accumulate && prior) dx.set(prior);
  eachWindow(s, (o, p) => {
    dx[p * hw + argmax[o]!]! += dy[o]!;
  });
  return dx;
}

/** y = mean of each window's real cells (padded cells not counted). */
export function avgPoolForwardRef(x: ArrayLike<number>, s: PoolShape): Float64Array {
  const y = new Float64Array(outSize(s));
  const hw = s.h * s.w;
  eachWindow(s, (o, p, y0, y1, x0, x1) => {
    let sum = 0;
    for (let iy = y0; iy < y1; iy++) for (let ix = x0; ix < x1; ix++) sum += x[p * hw + iy * s.w + ix]!;
    y[o] = sum / ((y1 - y0) * (x1 - x0));
  });
  return y;
}

/** dx[cell] += dy[o] / cnt(o) for every real cell of every window o (+ prior when s.accumulate). */
export function avgPoolBackwardRef(dy: ArrayLike<number>, s: PoolShape, prior?: ArrayLike<number>): Float64Array {
  const hw = s.h * s.w;
  const dx = new Float64Array(s.n * s.c * hw);
  if (s.accumulate && prior) dx.set(prior);
  eachWindow(s, (o, p, y0, y1, x0, x1) => {
    const share = dy[o]! / ((y1 - y0) * (x1 - x0));
    for (let iy = y0; iy < y1; iy++) for (let ix = x0; ix < x1; ix++) dx[p * hw + iy * s.w + ix]! += share;
  });
  return dx;
}

/** y[p] = mean of plane p. */
export function globalAvgPoolForwardRef(x: ArrayLike<number>, s: GlobalPoolShape): Float64Array {
  const hw = s.h * s.w;
  const y = new Float64Array(s.n * s.c);
  for (let p = 0; p < y.length; p++) {
    let sum = 0;
    for (let j = 0; j < hw; j++) sum += x[p * hw + j]!;
    y[p] = sum / hw;
  }
  return y;
}

/** dx[p, j] = dy[p] / hw (+ prior when s.accumulate). */
export function globalAvgPoolBackwardRef(
  dy: ArrayLike<number>,
  s: GlobalPoolShape,
  prior?: ArrayLike<number>,
): Float64Array {
  const hw = s.h * s.w;
  const dx = new Float64Array(s.n * s.c * hw);
  for (let i = 0; i < dx.length; i++) dx[i] = dy[Math.floor(i / hw)]! / hw + (s.accumulate && prior ? prior[i]! : 0);
  return dx;
}
