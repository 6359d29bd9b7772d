// Tensor sizes, and the output size and padding of a sliding window (conv, pooling), as Keras /
// TensorFlow define them.
//   valid: out = floor((in - k) / s) + 1, no padding.
//   same:  out = ceil(in / s); total padding max((out - 1)·s + k - in, 0), the smaller half before
//          (top/left) and the larger after: TF's asymmetric padding, which even kernels get at stride 1 too.
import type { Padding } from '../../dsl/ir.ts';
import { ShapeError } from '../errors.ts';

/** Elements of a tensor of this shape (1 for a scalar's []). */
export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** [N,C,H,W]: batch, channels, height, width (a conv's weights: [K,C,KH,KW]). */
export type NCHW = readonly [n: number, c: number, h: number, w: number];
/** [N,F]: a batch of feature rows (a dense layer's weights: [F,U]). */
export type Matrix = readonly [rows: number, cols: number];
/** [N,C,…]: batch and channels (or features), then any spatial axes. */
export type Batched = readonly [n: number, c: number, ...rest: number[]];

const rankError = (what: string, want: string, shape: readonly number[] | undefined): ShapeError =>
  new ShapeError(`${what}: expected ${want} but found ${shape ? `[${shape.join(', ')}]` : 'no tensor'}`);

/** `shape` as [N,C,H,W]; a ShapeError naming `what` when it has another rank. */
export function nchw(shape: readonly number[] | undefined, what: string): NCHW {
  const [n, c, h, w, ...more] = shape ?? [];
  if (n === undefined || c === undefined || h === undefined || w === undefined || more.length > 0)
    throw rankError(what, '[N,C,H,W]', shape);
  return [n, c, h, w];
}

/** `shape` as [rows, cols]; a ShapeError naming `what` when it has another rank. */
export function matrix(shape: readonly number[] | undefined, what: string): Matrix {
  const [rows, cols, ...more] = shape ?? [];
  if (rows === undefined || cols === undefined || more.length > 0) throw rankError(what, '[rows, cols]', shape);
  return [rows, cols];
}

/** `shape` as [N,C,…]; a ShapeError naming `what` when it has fewer than two axes. */
export function batched(shape: readonly number[] | undefined, what: string): Batched {
  const [n, c, ...rest] = shape ?? [];
  if (n === undefined || c === undefined) throw rankError(what, '[N,C,…]', shape);
  return [n, c, ...rest];
}

export interface Window1d {
  out: number;
  /** Padding before (top or left); padding after is derivable and never needed by kernels. */
  pad: number;
}

export function window1d(size: number, k: number, stride: number, padding: Padding): Window1d {
  if (padding === 'valid') {
    if (size < k) throw new ShapeError(`a ${k}-wide valid window needs at least ${k} inputs but gets ${size}`);
    return { out: Math.floor((size - k) / stride) + 1, pad: 0 };
  }
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + k - size, 0);
  return { out, pad: Math.floor(total / 2) };
}

/** A kh×kw window moving strideH×strideW: the attributes of a conv or pooling layer. */
export interface Window2d {
  kh: number;
  kw: number;
  strideH: number;
  strideW: number;
  padding: Padding;
}

export interface Geometry2d {
  oh: number;
  ow: number;
  padTop: number;
  padLeft: number;
}

export function window2d(h: number, w: number, win: Window2d): Geometry2d {
  const y = window1d(h, win.kh, win.strideH, win.padding);
  const x = window1d(w, win.kw, win.strideW, win.padding);
  return { oh: y.out, ow: x.out, padTop: y.pad, padLeft: x.pad };
}
