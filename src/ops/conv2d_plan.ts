// Conv2d shapes and how each pass is tiled on this adapter: the output geometry, the tiled kernels'
// tile and split-K (gemm.ts) or the lane kernels' tiles (conv2d_lanes.ts), the partial-sums buffers
// the forward and dX need (the weight gradient's kernel and partials: conv2d_weights.ts), and whether a
// forward can pool in its epilogue. conv2d.ts launches the passes.
import { ShapeError } from '../errors.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { ceilDiv } from '../gpu/runtime.ts';
import { chooseGemm, MAX_PARTS, MAX_SPLITS, MAX_STEPS, partsLength, readerSums, type GemmPlan } from './gemm.ts';
import { window2d, type Geometry2d, type Window2d } from './geometry.ts';
import { laneTile } from './lanes.ts';
import { BK } from '../gpu/work.ts';

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
  /** The output rows and columns from the top left its only reader, a pooling, reads (coveredOf); else all. */
  covered?: readonly [number, number];
}

/**
 * How a pass may be tiled: `split` false where no partial-sums buffer can be given (a pooled forward,
 * or a launcher given none); `target` workgroups (tests).
 */
export interface ConvOptions {
  split?: boolean;
  target?: number;
  /**
   * The forward by Winograd's F(2×2, 3×3) (conv2d_winograd.ts): false never, 16 or 32 that tile where the
   * shape allows it (tests, benchmarks); left out, where winogradPlan's rule chooses it.
   */
  winograd?: false | 16 | 32;
  /** A weight gradient of few taps by the narrow kernel (conv2d_narrow.ts): false never (benchmarks, tests). */
  narrow?: false;
}

/**
 * What of the output a pass covers: `covered` (set by src/graph/covered.ts), else all of OH×OW. The Winograd
 * and pooled lane forwards write 0 past it (shaders/lib/conv.wgsl conv_cover); no weight gradient reads dY there.
 */
export function coveredOf(s: Conv2dShape): { oh: number; ow: number } {
  const g = conv2dGeometry(s);
  const [oh, ow] = s.covered ?? [g.oh, g.ow];
  if (!(oh >= 1 && oh <= g.oh && ow >= 1 && ow <= g.ow))
    throw new ShapeError(`conv2d covers ${oh}x${ow} of ${g.oh}x${g.ow}`);
  return { oh, ow };
}

/** The covered part in a pass's label ("", "6x6 of ") and as its override constants (lib/conv.wgsl COVER_*). */
export function coverOf(s: Conv2dShape): { of: string; constants: Record<string, number> } {
  if (!s.covered) return { of: '', constants: {} };
  const [rows, cols] = s.covered;
  return { of: `${rows}x${cols} of `, constants: { COVER_ROWS: rows, COVER_COLS: cols } };
}

/** Output size and the padding before (top, left), Keras/TF semantics; throws ShapeError on a bad shape. */
export function conv2dGeometry(s: Conv2dShape): Geometry2d {
  for (const key of ['n', 'c', 'h', 'w', 'k', 'kh', 'kw', 'strideH', 'strideW'] as const) {
    const v = s[key];
    if (!Number.isInteger(v) || v < 1) throw new ShapeError(`conv2d ${key} must be a positive integer but is ${v}`);
  }
  return window2d(s.h, s.w, s);
}

/**
 * A Winograd pass's tile (shaders/lib/winograd.wgsl): `side` out-channels × `side` 2×2 output tiles a
 * workgroup of side²/4 threads, rowTiles × colTiles workgroups, ⌈CIN/4⌉ steps of 4 in-channels; the
 * correlation's in- and out-channels (the forward's C and K; dX's K and C).
 */
export interface WinogradPlan {
  side: 16 | 32;
  threads: number;
  cin: number;
  cout: number;
  tiles: number;
  rowTiles: number;
  colTiles: number;
  steps: number;
}

/** Transform ops per thread and step (inputs 64 a patch, filters 44; conv2d_winograd.ts prices them so). */
export const winogradStepOps = (side: 16 | 32): number => (4 * side * (64 + 44)) / ((side * side) / 4);

/** The correlation a Winograd pass computes: N images of CIN channels to COUT channels of OH×OW. */
interface WinogradDims {
  n: number;
  cin: number;
  cout: number;
  oh: number;
  ow: number;
}

const winogradTile = (d: WinogradDims, side: 16 | 32): WinogradPlan => {
  const tiles = d.n * ceilDiv(d.oh, 2) * ceilDiv(d.ow, 2);
  const [rowTiles, colTiles] = [ceilDiv(d.cout, side), ceilDiv(tiles, side)];
  return {
    side,
    threads: (side * side) / 4,
    cin: d.cin,
    cout: d.cout,
    tiles,
    rowTiles,
    colTiles,
    steps: ceilDiv(d.cin, 4),
  };
};

/** What winogradChoice weighs of a Winograd tile (and the cost model reads): workgroups, steps, ops a step. */
export interface WinogradCost {
  side: 16 | 32;
  threads: number;
  workgroups: number;
  steps: number;
  stepOps: number;
}

/**
 * Whether the tiled kernels run a 3×3, stride-1 conv's pass by Winograd (the forward: winogradPlan; dX:
 * inputWinogradPlan; dW: weightWinogradPlan), and on which tile (`tile` of a side): where the busiest
 * unit's work (its workgroups' multiply-adds and transform ops, steps × tile, padding included) is at
 * most 9/10 of the direct GEMM's (its plan as gemm.ts chooses it), or at most `splitMargin` of it where
 * that GEMM splits K (a forward's or dX's partials cost a pass that Winograd's one pass does not: the
 * reduction, or a chain that sums them; dW's split too, so 9/10 still). The tile: of the candidate's
 * `sides` (both unless it says) those whose workgroups reach the target (2·units), else all, the one of
 * least work on the busiest unit. The same for every caller whatever its options but `target`, so that
 * the planner's questions (forwardPools, the parts lengths, the unsummed splits) and the launchers agree.
 * o.winograd 16 or 32 asks for that tile wherever the shape allows one, false for none; a Gpu tuned
 * `winograd: false` runs none unless asked so.
 */
function winogradChoice<P>(
  gpu: Gpu,
  s: Conv2dShape,
  o: ConvOptions,
  candidate: {
    tile: (side: 16 | 32) => P;
    cost: (p: P) => WinogradCost;
    direct: () => GemmPlan;
    splitMargin: number;
    sides?: (16 | 32)[];
  },
): P | null {
  if (o.winograd === false || gpu.lanes > 0) return null;
  if (s.kh !== 3 || s.kw !== 3 || s.strideH !== 1 || s.strideW !== 1) return null;
  const { tile, cost } = candidate;
  if (o.winograd) return tile(o.winograd);
  if (!gpu.winograd) return null;
  const busiest = (workgroups: number): number => Math.ceil(workgroups / gpu.units);
  // A workgroup's multiply-adds (16 GEMMs, 4 inner indices) and transform ops a step.
  const work = (p: P): number => {
    const c = cost(p);
    return busiest(c.workgroups) * c.steps * (64 * c.side * c.side + c.threads * c.stepOps);
  };
  const target = o.target ?? 2 * gpu.units;
  const tiles = (candidate.sides ?? [32, 16]).map(tile);
  const filling = tiles.filter((t) => cost(t).workgroups >= target);
  const p = (filling.length > 0 ? filling : tiles).reduce((a, t) => (work(t) < work(a) ? t : a));
  const g = candidate.direct();
  const margin = g.splits > 1 ? candidate.splitMargin : 0.9;
  return work(p) <= margin * busiest(g.rowTiles * g.colTiles * g.splits) * (g.chunk / BK) * g.tile.bm * g.tile.bn * BK
    ? p
    : null;
}

/** A forward's or dX's tile as winogradChoice weighs it. */
export const correlationCost = (p: WinogradPlan): WinogradCost => ({
  ...p,
  workgroups: p.rowTiles * p.colTiles,
  stepOps: winogradStepOps(p.side),
});

/** A forward's or dX's correlation by Winograd (winogradChoice), against its direct GEMM. */
const correlationChoice = (gpu: Gpu, s: Conv2dShape, o: ConvOptions, d: WinogradDims, direct: () => GemmPlan) =>
  winogradChoice(gpu, s, o, { tile: (side) => winogradTile(d, side), cost: correlationCost, direct, splitMargin: 1 });

/** The forward by Winograd: the correlation of x with the filters, C to K channels (coveredOf). */
export function winogradPlan(gpu: Gpu, s: Conv2dShape, o: ConvOptions = {}): WinogradPlan | null {
  const { oh, ow } = coveredOf(s);
  const d = { n: s.n, cin: s.c, cout: s.k, oh, ow };
  return correlationChoice(gpu, s, o, d, () => forwardPlan(gpu, s, { target: o.target }));
}

/** dX by Winograd: the correlation of dY with the flipped filters, K to C channels of H×W. */
export function inputWinogradPlan(gpu: Gpu, s: Conv2dShape, o: ConvOptions = {}): WinogradPlan | null {
  const d = { n: s.n, cin: s.k, cout: s.c, oh: s.h, ow: s.w };
  return correlationChoice(gpu, s, o, d, () => inputPlan(gpu, s, { target: o.target }));
}

/**
 * The weight gradient by Winograd's F(3×3, 2×2) (shaders/conv2d_winograd_dw.wgsl): `side` out-channels ×
 * `side` in-channels a workgroup of side²/4 threads, rowTiles × colTiles of them in each of `splits`
 * splits of the T 2×2 tiles of dY (coveredOf), steps of 4 tiles: `steps` a split at most (`chunk` tiles),
 * the splits' chunks as even as whole steps allow.
 */
export interface WinogradWeightPlan {
  side: 16 | 32;
  threads: number;
  tiles: number;
  rowTiles: number;
  colTiles: number;
  splits: number;
  chunk: number;
  steps: number;
}

/** Transform ops per thread and step of the weight gradient (patches 64, dY tiles 36; conv2d_winograd.ts). */
export const winogradWeightStepOps = (side: 16 | 32): number => (4 * side * (64 + 36)) / ((side * side) / 4);

const winogradWeightTile = (gpu: Gpu, s: Conv2dShape, side: 16 | 32, o: ConvOptions & { bias?: boolean }) => {
  const { oh, ow } = coveredOf(s);
  const tiles = s.n * ceilDiv(oh, 2) * ceilDiv(ow, 2);
  const [rowTiles, colTiles] = [ceilDiv(s.k, side), ceilDiv(s.c, side)];
  const all = ceilDiv(tiles, 4);
  // Splits as gemm.ts's splitK: enough to reach the target, and loops of at most 64 steps; none when not allowed.
  const most = Math.min(MAX_SPLITS, Math.floor(MAX_PARTS / (s.k * (s.c * 9 + 1))), all);
  const want = Math.max(ceilDiv(o.target ?? 2 * gpu.units, rowTiles * colTiles), ceilDiv(all, MAX_STEPS));
  // Splits as many as asked, their chunks as even as whole steps allow (split z: steps ⌊z·all/splits⌋ on).
  const splits = o.split === false ? 1 : Math.max(1, Math.min(want, most));
  const steps = ceilDiv(all, splits);
  const split = { splits, chunk: 4 * steps, steps };
  return { side, threads: (side * side) / 4, tiles, rowTiles, colTiles, ...split };
};

/** A weight gradient's tile as winogradChoice weighs it: every split's workgroups. */
export const weightCost = (p: WinogradWeightPlan): WinogradCost => ({
  ...p,
  workgroups: p.rowTiles * p.colTiles * p.splits,
  stepOps: winogradWeightStepOps(p.side),
});

/** The weight gradient by Winograd (winogradChoice, against the direct plan, both split): a 3×3, stride-1 conv. */
export function weightWinogradPlan(
  gpu: Gpu,
  s: Conv2dShape,
  o: ConvOptions & { bias?: boolean } = {},
): WinogradWeightPlan | null {
  const tile = (side: 16 | 32) => winogradWeightTile(gpu, s, side, o);
  // Beside a dX by Winograd that does not fill the device alone, its tile: the two pair (src/gpu/pair.ts).
  const dx = inputWinogradPlan(gpu, s, o);
  const sides = dx && dx.rowTiles * dx.colTiles < (o.target ?? 2 * gpu.units) ? [dx.side] : undefined;
  const direct = () => weightPlan(gpu, s, o);
  return winogradChoice(gpu, s, o, { tile, cost: weightCost, direct, splitMargin: 0.9, sides });
}

export const forwardPlan = (gpu: Gpu, s: Conv2dShape, o: ConvOptions): GemmPlan => {
  const g = conv2dGeometry(s);
  const cols = s.n * g.oh * g.ow;
  const need = { rows: s.k, cols, inner: s.c * s.kh * s.kw, columnRuns: true };
  return chooseGemm(gpu, { ...need, split: o.split ?? true, target: o.target });
};

/** dX per stride phase: the largest phase's columns and inner (phase (0, 0) has the most taps). */
export function inputGemm(s: Conv2dShape) {
  const cols = s.n * ceilDiv(s.h, s.strideH) * ceilDiv(s.w, s.strideW);
  const inner = s.k * ceilDiv(s.kh, s.strideH) * ceilDiv(s.kw, s.strideW);
  return { rows: s.c, cols, inner, phases: s.strideH * s.strideW };
}

export const inputPlan = (gpu: Gpu, s: Conv2dShape, o: ConvOptions): GemmPlan => {
  const { phases, ...gemm } = inputGemm(s);
  const need = { ...gemm, copies: phases, ragged: phases > 1, columnRuns: true };
  return chooseGemm(gpu, { ...need, split: o.split ?? true, target: o.target });
};

/** The workgroups the lane kernels' weight gradient aims at: one (no split) when a split is not allowed. */
export const laneTarget = (o: ConvOptions): number | undefined => (o.split === false ? 1 : o.target);

/** The weight gradient's inner dimension: N·OH·OW positions, of the part covered (coveredOf). */
export const weightInner = (s: Conv2dShape): number => {
  const g = coveredOf(s);
  return s.n * g.oh * g.ow;
};

export const weightPlan = (gpu: Gpu, s: Conv2dShape, o: ConvOptions & { bias?: boolean }): GemmPlan => {
  const need = { rows: s.k, cols: s.c * s.kh * s.kw, inner: weightInner(s), columnTable: true };
  return chooseGemm(gpu, { ...need, sums: o.bias ? 1 : 0, split: o.split ?? true, target: o.target });
};

/** The tile and split a pass gets on the tiled kernels of this adapter (gemm.ts). */
export function conv2dPlan(
  gpu: Gpu,
  s: Conv2dShape,
  pass: 'forward' | 'dX' | 'dW',
  o: ConvOptions & { bias?: boolean } = {},
): GemmPlan {
  return pass === 'forward' ? forwardPlan(gpu, s, o) : pass === 'dX' ? inputPlan(gpu, s, o) : weightPlan(gpu, s, o);
}

/** Floats of the partial sums the forward needs (io.parts) on this adapter; 0 when it is not split. */
export function forwardPartsLength(gpu: Gpu, s: Conv2dShape, o: ConvOptions = {}): number {
  const g = conv2dGeometry(s);
  if (gpu.lanes > 0 || winogradPlan(gpu, s, o)) return 0;
  return partsLength(forwardPlan(gpu, s, o), s.k, s.n * g.oh * g.ow);
}

/** Floats of the partial sums dX needs (io.parts) on this adapter; 0 when it is not split. */
export function inputPartsLength(gpu: Gpu, s: Conv2dShape, o: ConvOptions = {}): number {
  const { rows, cols, phases } = inputGemm(s);
  if (gpu.lanes > 0 || inputWinogradPlan(gpu, s, o)) return 0;
  return partsLength(inputPlan(gpu, s, o), phases * rows, cols);
}

/**
 * The split of dX that a reader may sum on its way instead of the reduce_splits pass (conv2dBackwardInput
 * with `unsummed`: dx then holds splits · N·C·H·W partials, [split][c][n·H·W + position]): 2 to 16
 * (reduce_splits' one-thread order, which shaders/chain.wgsl src_at repeats) on the tiled kernels of a
 * stride-1 conv; else 0.
 */
export function unsummedInputSplits(gpu: Gpu, s: Conv2dShape): number {
  if (gpu.lanes > 0 || s.strideH !== 1 || s.strideW !== 1 || inputWinogradPlan(gpu, s)) return 0;
  const { splits } = inputPlan(gpu, s, {});
  return readerSums(splits) ? splits : 0;
}

/** Whether the dX leaves its partials for its reader to sum (unsummedInputSplits > 0). */
export const leavesInputParts = (gpu: Gpu, s: Conv2dShape): boolean => unsummedInputSplits(gpu, s) > 0;

/**
 * The split of the forward that a reader may sum on its way instead of the reduce_splits pass
 * (conv2dForward with `unsummed`: the parts then hold splits · K·N·OH·OW partials, [split][k][n·OH·OW +
 * position], as dX's): 2 to 16 on the tiled kernels; else 0.
 */
export function unsummedForwardSplits(gpu: Gpu, s: Conv2dShape): number {
  if (gpu.lanes > 0 || winogradPlan(gpu, s)) return 0;
  const { splits } = forwardPlan(gpu, s, {});
  return readerSums(splits) ? splits : 0;
}

/** The 2×2, stride-2 windows of an OH×OW plane, valid ones only: ⌊OH/2⌋·⌊OW/2⌋ (lib/conv_out_pool.wgsl). */
export const poolWindows = (g: { oh: number; ow: number }): number => Math.floor(g.oh / 2) * Math.floor(g.ow / 2);

/**
 * Whether this adapter can run `s`'s forward with a 2×2, stride-2 max pooling of valid windows in its
 * epilogue (an odd OH or OW leaves its last row or column to y alone): at least one window, one pass
 * (a Winograd forward, or the tiled kernels' plan not split), lane tiles of whole windows (4 or 8 columns a lane).
 */
export function forwardPools(gpu: Gpu, s: Conv2dShape): boolean {
  const g = conv2dGeometry(s);
  if (poolWindows(g) === 0) return false;
  if (gpu.lanes > 0) return laneTile(gpu.lanes, s.k, s.n * g.oh * g.ow).cols % 4 === 0;
  return winogradPlan(gpu, s) !== null || forwardPlan(gpu, s, {}).splits === 1;
}
