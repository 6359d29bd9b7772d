// Conv2d, forward and backward side by side, each an implicit GEMM on 64×64 tiles (narrowed for small
// layers), or on a CPU adapter with subgroups of one size (4 or 8), the subgroup-lane kernels (Gpu.lanes).
// Shapes, layouts, math and dispatch geometry: shaders/conv2d_forward.wgsl,
// shaders/conv2d_backward_input.wgsl, shaders/conv2d_backward_weights.wgsl and their *_lanes.wgsl.
// Tensors NCHW row-major f32; weights [K, C, KH, KW] (OIHW). Every output buffer is overwritten
// unless an option says accumulate. At the end, the graph op (CONV2D): conv + bias + a fused
// activation, and its backward.
import type { Act } from '../../dsl/ir.ts';
import { ShapeError } from '../errors.ts';
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { ceilDiv, grid } from '../gpu/runtime.ts';
import { chainWork, f32Bytes, laneGemm, tiledGemm, treeBarriers, type GemmTiles, type Work } from '../gpu/work.ts';
import { actConstants, actName, gradFromOutput } from './act.ts';
import { fusedScratch, unfuseActivation } from './elementwise.ts';
import { nchw, window2d, type Geometry2d, type Window2d } from './geometry.ts';
import { laneConstants, laneTile } from './lanes.ts';
import type { KernelOp, Shapes } from './op.ts';
import { mustAt } from '../util/must.ts';

export interface Conv2dShape extends Window2d {
  /** Batch. */
  n: number;
  /** In-channels. */
  c: number;
  /** Input height and width. */
  h: number;
  w: number;
  /** Out-channels. */
  k: number;
}

const TILE = 64;
/** Row-tile height: 32 for narrow GEMMs (≤ 32 rows) so half of every tile is not wasted, else 64. */
const rowTile = (rows: number): number => (rows <= 32 ? 32 : 64);

/** A GEMM-shaped pass's kernel: lane or tiled, its tile (bm rows × bn columns) and tile constants. */
interface Tiling {
  lanes: boolean;
  bm: number;
  bn: number;
  constants: Record<string, number>;
}

/** The lane tile on an adapter that runs the lane kernels (gpu.lanes > 0); else the tiled kernels' BM × bn. */
function tiling(gpu: Gpu, rows: number, cols: number, bn: number): Tiling {
  if (gpu.lanes > 0) {
    const t = laneTile(gpu.lanes, rows, cols);
    return { lanes: true, bm: t.rowGroups * gpu.lanes, bn: t.cols * gpu.lanes, constants: laneConstants(gpu.lanes, t) };
  }
  const bm = rowTile(rows);
  return { lanes: false, bm, bn, constants: { GEMM_T: gpu.gemmSide, BM: bm } };
}

/**
 * The description of a GEMM-shaped pass (gpu/work.ts): `steps` inner indices per workgroup, in
 * 16-deep K-steps on the tiled kernels, one a step on the lane kernels.
 */
function gemmWork(gpu: Gpu, t: Tiling, g: Omit<GemmTiles, 'tileM' | 'tileN' | 'kSteps'> & { steps: number }): Work {
  const tiles = { ...g, tileM: t.bm, tileN: t.bn };
  return t.lanes ? laneGemm(tiles, gpu.lanes) : tiledGemm({ ...tiles, kSteps: ceilDiv(g.steps, 16) }, gpu.gemmSide);
}

/** Output size and the padding before (top, left), Keras/TF semantics; throws ShapeError on a bad shape. */
export function conv2dGeometry(s: Conv2dShape): Geometry2d {
  for (const key of ['n', 'c', 'h', 'w', 'k', 'kh', 'kw', 'strideH', 'strideW'] as const) {
    const v = s[key];
    if (!Number.isInteger(v) || v < 1) throw new ShapeError(`conv2d ${key} must be a positive integer but is ${v}`);
  }
  return window2d(s.h, s.w, s);
}

/** The weight gradient's tiles (rows: out-channels; columns: C·KH·KW) and its split-K. */
function weightTiling(
  gpu: Gpu,
  s: Conv2dShape,
  o: { target?: number },
): Tiling & { colTiles: number; splits: number; chunk: number } {
  const g = conv2dGeometry(s);
  const ckk = s.c * s.kh * s.kw;
  const t = tiling(gpu, s.k, ckk, ckk <= 16 ? 16 : ckk <= 32 ? 32 : 64);
  if (!t.lanes) t.constants.BN = t.bn;
  const colTiles = ceilDiv(ckk, t.bn);
  const { splits, chunk } = weightSplits(
    s.n * g.oh * g.ow,
    colTiles * ceilDiv(s.k, t.bm),
    o.target ?? (gpu.adapter.cpu ? 16 : 1024),
  );
  return { ...t, colTiles, splits, chunk };
}

/**
 * Floats of the partial-sums buffer conv2dBackwardWeights needs (io.parts) for this shape on this
 * adapter: splits × K·C·KH·KW, or 0 when the sum is not split. The planner provides it as scratch.
 */
export function weightPartsLength(gpu: Gpu, s: Conv2dShape, o: { target?: number } = {}): number {
  const { splits } = weightTiling(gpu, s, o);
  return splits > 1 ? splits * s.k * s.c * s.kh * s.kw : 0;
}

/**
 * How the weight gradient's inner dimension (`inner` = N·OH·OW positions) is split so that about
 * `target` workgroups share `tiles` output tiles: chunks of at least 64 positions, a multiple of the
 * 16-deep K tile. One split when the tiles alone fill the GPU.
 */
export function weightSplits(inner: number, tiles: number, target: number): { splits: number; chunk: number } {
  const want = Math.max(1, Math.min(Math.ceil(target / tiles), Math.floor(inner / 64)));
  const chunk = Math.ceil(Math.ceil(inner / want) / 16) * 16;
  return { splits: Math.ceil(inner / chunk), chunk };
}

/** The uniform every conv2d shader reads (struct Params in shaders/lib/conv.wgsl). */
function params(s: Conv2dShape, g: Geometry2d, colTiles: number, split = { chunk: 0, splits: 0 }) {
  const { n, c, h, w, k, kh, kw } = s;
  const { padTop, padLeft, oh, ow } = g;
  return { n, c, h, w, k, kh, kw, sh: s.strideH, sw: s.strideW, padTop, padLeft, oh, ow, colTiles, ...split };
}

const describe = (s: Conv2dShape): string =>
  `${s.n}x${s.c}x${s.h}x${s.w} k${s.k} ${s.kh}x${s.kw}/${s.strideH}x${s.strideW} ${s.padding}`;

/**
 * y = act(conv(x, w) + b). x [N,C,H,W], w [K,C,KH,KW], b [K] (optional), y [N,K,OH,OW] (overwritten).
 * One dispatch.
 */
export function conv2dForward(
  gpu: Gpu,
  io: { x: BufferRef; w: BufferRef; b?: BufferRef; y: BufferRef },
  s: Conv2dShape,
  act?: Act,
): Dispatch[] {
  const g = conv2dGeometry(s);
  const t = tiling(gpu, s.k, s.n * g.oh * g.ow, TILE);
  const colTiles = ceilDiv(s.n * g.oh * g.ow, t.bn);
  const inner = s.c * s.kh * s.kw;
  const work = gemmWork(gpu, t, {
    rows: s.k,
    cols: s.n * g.oh * g.ow,
    inner,
    tiles: colTiles * ceilDiv(s.k, t.bm),
    steps: inner,
    bytesRead: f32Bytes(s.n * s.c * s.h * s.w, s.k * inner, io.b ? s.k : 0),
    bytesWritten: f32Bytes(s.n * s.k * g.oh * g.ow),
  });
  return [
    gpu.kernel({
      shader: t.lanes ? 'conv2d_forward_lanes' : 'conv2d_forward',
      params: params(s, g, colTiles),
      constants: { ...t.constants, HAS_BIAS: io.b ? 1 : 0, ...actConstants(act) },
      bindings: [io.x, io.w, io.b ?? gpu.dummy, io.y],
      workgroups: grid(colTiles * ceilDiv(s.k, t.bm)),
      label: `conv2d forward ${describe(s)}`,
      work,
    }),
  ];
}

/**
 * dx = dL/dx from dy = dL/dy (pre-activation: unfuse a fused activation first) and w.
 * dy [N,K,OH,OW], w [K,C,KH,KW], dx [N,C,H,W]: overwritten, or added to with `accumulate`
 * (an input that fans out). One dispatch.
 */
export function conv2dBackwardInput(
  gpu: Gpu,
  io: { dy: BufferRef; w: BufferRef; dx: BufferRef },
  s: Conv2dShape,
  opts: { accumulate?: boolean } = {},
): Dispatch[] {
  const g = conv2dGeometry(s);
  const accum = { ACCUM: opts.accumulate ? 1 : 0 };
  const t = tiling(gpu, s.c, s.n * s.h * s.w, TILE);
  const label = `conv2d backward input ${describe(s)}`;
  const useful = {
    rows: s.c,
    cols: s.n * g.oh * g.ow,
    inner: s.k * s.kh * s.kw,
    bytesRead: f32Bytes(s.n * s.k * g.oh * g.ow, s.k * s.c * s.kh * s.kw, opts.accumulate ? s.n * s.c * s.h * s.w : 0),
    bytesWritten: f32Bytes(s.n * s.c * s.h * s.w),
  };
  if (t.lanes) {
    // One pass over every input position (stride phases are masked, not split).
    const colTiles = ceilDiv(s.n * s.h * s.w, t.bn);
    const work = gemmWork(gpu, t, { ...useful, tiles: colTiles * ceilDiv(s.c, t.bm), steps: useful.inner });
    return [
      gpu.kernel({
        shader: 'conv2d_backward_input_lanes',
        params: params(s, g, colTiles),
        constants: { ...t.constants, ...accum },
        bindings: [io.dy, io.w, io.dx],
        workgroups: grid(colTiles * ceilDiv(s.c, t.bm)),
        label,
        work,
      }),
    ];
  }
  // The largest stride phase has ceil(H/sh)·ceil(W/sw) positions per image; smaller ones skip the spare tiles.
  const colTiles = ceilDiv(s.n * ceilDiv(s.h, s.strideH) * ceilDiv(s.w, s.strideW), t.bn);
  const [gx, gy] = grid(colTiles * ceilDiv(s.c, t.bm));
  // Phase (0, 0) has the most taps: ceil(KH/sh)·ceil(KW/sw) per out-channel.
  const steps = s.k * ceilDiv(s.kh, s.strideH) * ceilDiv(s.kw, s.strideW);
  const phases = s.strideH * s.strideW;
  const work = gemmWork(gpu, t, { ...useful, tiles: colTiles * ceilDiv(s.c, t.bm) * phases, steps });
  return [
    gpu.kernel({
      shader: 'conv2d_backward_input',
      params: params(s, g, colTiles),
      constants: { ...t.constants, ...accum },
      bindings: [io.dy, io.w, io.dx],
      workgroups: [gx, gy, phases],
      label,
      work,
    }),
  ];
}

/**
 * dw = dL/dw [K,C,KH,KW] and, when given, db = dL/db [K] from dy [N,K,OH,OW] (pre-activation) and
 * x [N,C,H,W]; both overwritten. Returns the dw dispatch, then (split-K) the reduction of its partial
 * sums, then the db dispatch when db is given. `target` overrides how many workgroups to aim for (tests).
 */
export function conv2dBackwardWeights(
  gpu: Gpu,
  io: { dy: BufferRef; x: BufferRef; dw: BufferRef; db?: BufferRef; parts?: BufferRef },
  s: Conv2dShape,
  o: { target?: number } = {},
): Dispatch[] {
  const g = conv2dGeometry(s);
  const t = weightTiling(gpu, s, o);
  const { colTiles, splits, chunk } = t;
  const len = s.k * s.c * s.kh * s.kw;
  const parts = splits > 1 ? io.parts : null;
  if (parts === undefined)
    throw new ShapeError(
      `conv2d backward weights ${describe(s)} splits its sum ${splits} ways and needs a partial-sums buffer ` +
        `of ${splits * len} floats (weightPartsLength)`,
    );
  const p = params(s, g, colTiles, { chunk, splits });
  const positions = s.n * g.oh * g.ow;
  const dy = f32Bytes(s.k * positions);
  const work = gemmWork(gpu, t, {
    rows: s.k,
    cols: s.c * s.kh * s.kw,
    inner: positions,
    tiles: colTiles * ceilDiv(s.k, t.bm) * splits,
    steps: Math.min(chunk, positions),
    bytesRead: dy + f32Bytes(s.n * s.c * s.h * s.w),
    bytesWritten: f32Bytes(splits * len),
    extraShared: 1024, // taps: 64 vec3<i32> at a 16-byte stride
  });
  const out = [
    gpu.kernel({
      shader: t.lanes ? 'conv2d_backward_weights_lanes' : 'conv2d_backward_weights',
      params: p,
      constants: t.constants,
      bindings: [io.dy, io.x, parts ?? io.dw],
      workgroups: [...grid(colTiles * ceilDiv(s.k, t.bm)), splits],
      label: `conv2d backward weights ${describe(s)}${splits > 1 ? ` split ${splits}` : ''}`,
      work,
    }),
  ];
  if (parts) out.push(splitSum(gpu, p, { parts, dw: io.dw }, describe(s), { len, splits }));
  if (io.db) out.push(biasGradient(gpu, p, { dy: io.dy, db: io.db }, describe(s), { k: s.k, positions }));
  return out;
}

/** dw[i] = Σ_z parts[z·len + i]: a loop of `splits` loads in each of len threads. */
function splitSum(
  gpu: Gpu,
  p: ReturnType<typeof params>,
  io: { parts: BufferRef; dw: BufferRef },
  what: string,
  { len, splits }: { len: number; splits: number },
): Dispatch {
  return gpu.kernel({
    shader: 'conv2d_backward_weights',
    entry: 'reduce_splits',
    params: p,
    bindings: [io.parts, io.dw],
    workgroups: grid(ceilDiv(len, 256)),
    label: `conv2d backward weights reduce ${what} ${splits} splits`,
    work: chainWork({
      flops: splits * len,
      bytesRead: f32Bytes(splits * len),
      bytesWritten: f32Bytes(len),
      threads: 256,
      depth: splits,
    }),
  });
}

/** db[k] = Σ dy[·,k,·,·]: 256 threads per k, each a loop over N·OH·OW / 256 positions, then a tree. */
function biasGradient(
  gpu: Gpu,
  p: ReturnType<typeof params>,
  io: { dy: BufferRef; db: BufferRef },
  what: string,
  { k, positions }: { k: number; positions: number },
): Dispatch {
  return gpu.kernel({
    shader: 'conv2d_backward_weights',
    entry: 'bias_grad',
    params: p,
    bindings: [io.dy, io.db],
    workgroups: grid(k),
    label: `conv2d backward bias ${what}`,
    work: chainWork({
      flops: k * positions,
      bytesRead: f32Bytes(k * positions),
      bytesWritten: f32Bytes(k),
      threads: 256,
      depth: ceilDiv(positions, 256),
      barriers: treeBarriers(256),
      sharedBytes: 1024,
    }),
  });
}

// --- the graph op -------------------------------------------------------------------------------

/** A conv layer's attributes: its window and the activation fused into its output. */
export interface Conv2dAttrs extends Window2d {
  act: Act;
}

function convShape([x, w]: Shapes, a: Window2d): Conv2dShape {
  const [n, c, h, width] = nchw(x, 'conv2d input');
  const [k] = nchw(w, 'conv2d weights');
  const { kh, kw, strideH, strideW, padding } = a;
  return { n, c, h, w: width, k, kh, kw, strideH, strideW, padding };
}

/** y = act(conv(x, w) + b); inputs x [N,C,H,W], w [K,C,KH,KW], b [K] (optional). */
export const CONV2D: KernelOp<Conv2dAttrs> = {
  shape: (ins, a) => {
    const s = convShape(ins, a);
    const g = conv2dGeometry(s);
    return [s.n, s.k, g.oh, g.ow];
  },
  // The fused activation's gradient, then the weight gradient's split-K partial sums (if split).
  scratch: (ins, out, a, gpu) => {
    const parts = weightPartsLength(gpu, convShape(ins, a));
    return [...fusedScratch(out, a.act), ...(parts > 0 ? [[parts]] : [])];
  },
  forward: (gpu, io, a) => {
    if (!gradFromOutput(a.act)) throw new Error(`conv2d cannot fuse ${actName(a.act)}: its gradient needs the input`);
    const s = convShape(io.inShapes, a);
    const x = mustAt(io.inputs, 0, 'conv2d x');
    const w = mustAt(io.inputs, 1, 'conv2d w');
    return conv2dForward(gpu, { x, w, b: io.inputs[2], y: io.out }, s, a.act);
  },
  // dZ = dY·act'(Y); dX = convᵀ(dZ, W); dW = Σ dZ ⊗ X; db = Σ dZ
  backward: (gpu, io, a) => {
    const { dz, pre: out } = unfuseActivation(gpu, io, a.act);
    const s = convShape(io.inShapes, a);
    const x = mustAt(io.inputs, 0, 'conv2d x');
    const w = mustAt(io.inputs, 1, 'conv2d w');
    const [dx, dw, db] = io.dIn;
    if (dx) out.push(...conv2dBackwardInput(gpu, { dy: dz, w, dx }, s));
    const parts = weightPartsLength(gpu, s) > 0 ? io.scratch.at(-1) : undefined;
    if (dw) out.push(...conv2dBackwardWeights(gpu, { dy: dz, x, dw, db: db ?? undefined, parts }, s));
    return out;
  },
};
