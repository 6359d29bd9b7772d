// Conv2d, forward and backward side by side, each an implicit GEMM: on the tiled kernels with the
// tile and split-K gemm.ts chooses for this adapter, or on a CPU adapter with subgroups of one size
// (4 or 8), the subgroup-lane kernels (Gpu.lanes); either way the weight gradient's bias gradient
// comes out of the same pass.
// Shapes, layouts, math and dispatch geometry: shaders/conv2d_forward.wgsl,
// shaders/conv2d_backward_input.wgsl, shaders/conv2d_backward_weights.wgsl and their *_lanes.wgsl.
// Tensors NCHW row-major f32; weights [K, C, KH, KW] (OIHW). Every output buffer is overwritten
// unless an option says accumulate. The graph op (CONV2D) that runs them: conv2d_op.ts.
import type { Act } from '../../dsl/ir.ts';
import { ShapeError } from '../errors.ts';
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { grid } from '../gpu/runtime.ts';
import { f32Bytes } from '../gpu/work.ts';
import { actConstants } from './act.ts';
import {
  chainLabel,
  chainStoreOf,
  chainUniform,
  checkRate,
  type EpilogueChain,
  type EpilogueChainIO,
} from './chain.ts';
import { dropoutUniform } from './dropout.ts';
import { laneKernel, laneWeightGradient, type ConvParams } from './conv2d_lanes.ts';
import {
  conv2dGeometry,
  coverOf,
  forwardPlan,
  forwardPools,
  inputGemm,
  poolWindows,
  inputPlan,
  laneTarget,
  unsummedForwardSplits,
  unsummedInputSplits,
  weightInner,
  weightPlan,
  winogradPlan,
  inputWinogradPlan,
  weightWinogradPlan,
  type Conv2dShape,
  type ConvOptions,
} from './conv2d_plan.ts';
import { winogradPass, winogradWeights } from './conv2d_winograd.ts';
import { narrowWeights } from './conv2d_narrow.ts';
import { weightNarrowPlan } from './conv2d_weights.ts';
import {
  checkGather,
  convGatherWork,
  gatherBindings,
  gatherConstants,
  gathersWith,
  ownPass,
  type ConvGather,
} from './conv2d_gather.ts';
import { gemmConstants, gemmDispatches, needParts } from './gemm.ts';
import type { Geometry2d } from './geometry.ts';

export { weightSplits } from './conv2d_lanes.ts';
export {
  conv2dGeometry,
  conv2dPlan,
  forwardPartsLength,
  forwardPools,
  inputPartsLength,
  leavesInputParts,
  unsummedForwardSplits,
  unsummedInputSplits,
  type Conv2dShape,
  type ConvOptions,
} from './conv2d_plan.ts';
export { weightPartsLayout, weightPartsLength } from './conv2d_weights.ts';

/** A pass's split-K: `chunk` inner indices in each of `splits` partial sums (0, 0: none). */
interface Split {
  chunk: number;
  splits: number;
}

/**
 * The uniform every conv2d shader reads (struct Params in shaders/lib/conv.wgsl): the shape, the GEMM's
 * column tiles, a split, and the epilogue's fields (chain.ts chainUniform, dropout.ts; none by default).
 */
function params(s: Conv2dShape, g: Geometry2d, colTiles: number, split?: Split, epilogue = chainUniform(undefined)) {
  const { n, c, h, w, k, kh, kw, strideH: sh, strideW: sw } = s;
  const { padTop, padLeft, oh, ow } = g;
  const shape = { n, c, h, w, k, kh, kw, sh, sw, padTop, padLeft, oh, ow };
  return { ...shape, colTiles, ...(split ?? { chunk: 0, splits: 0 }), ...epilogue };
}

/** The uniform's dropout and window fields: a pooled forward's dropout, or the chain a dX runs (chainUniform). */
type EpilogueFields = ReturnType<typeof chainUniform>;
const forwardDropout = (drop?: { seed: number; rate: number }): EpilogueFields => ({
  ...chainUniform(undefined),
  ...dropoutUniform(drop),
});

/** The uniform of this shape's passes, for `colTiles` column tiles and a split (conv2d_lanes.ts). */
const paramsOf =
  (s: Conv2dShape, epilogue?: EpilogueFields): ConvParams =>
  (colTiles, split) =>
    params(s, conv2dGeometry(s), colTiles, split, epilogue);

const describe = (s: Conv2dShape): string =>
  `${s.n}x${s.c}x${s.h}x${s.w} k${s.k} ${s.kh}x${s.kw}/${s.strideH}x${s.strideW} ${s.padding}`;

// --- the launchers ---------------------------------------------------------------------------------

/** A 2×2 max pooling (and dropout) in the forward's epilogue, written as unfused (lib/conv_out_pool.wgsl). */
export interface ConvPoolOut {
  pooled: BufferRef;
  argmax?: BufferRef; // each window's, for the backward (absent: not written, as at inference)
  counter: BufferRef;
  dropout?: { rate: number; seed: number };
}

interface ConvForwardIO {
  x: BufferRef;
  w: BufferRef;
  b?: BufferRef;
  y: BufferRef;
  parts?: BufferRef;
  pool?: ConvPoolOut;
  /** A first conv's training batch gathered as it is fetched: x and the labels are written (conv2d_gather.ts). */
  gather?: ConvGather;
  /**
   * A residual add's other input, added before the activation as each output is stored: y = act(conv + b +
   * shortcut), by the split pass's reduction where the sum is split (the planner's choice, src/graph/fuse-add.ts
   * AddActFusion.layer).
   */
  shortcut?: BufferRef;
}

/**
 * y = act(conv(x, w) + b). x [N,C,H,W], w [K,C,KH,KW], b [K] (optional), y [N,K,OH,OW] (overwritten).
 * One dispatch, or two when K is split (then `parts` holds forwardPartsLength floats). With `pool`
 * (where forwardPools allows), the same dispatch also pools y 2×2 (and drops out) into pool.pooled.
 * With `unsummed` (unsummedForwardSplits > 0) only the split pass: its partials in `parts` are for a
 * reader to sum, bias and activate (src/ops/chain.ts poolForwardParts), and y is not written.
 * With `gather` (where forwardGathers allows), the dispatch gathers x from the dataset and writes it.
 */
export function conv2dForward(
  gpu: Gpu,
  io: ConvForwardIO,
  s: Conv2dShape,
  act?: Act,
  o: ConvOptions & { unsummed?: boolean } = {},
): Dispatch[] {
  const g = conv2dGeometry(s);
  const [cols, inner] = [s.n * g.oh * g.ow, s.c * s.kh * s.kw];
  const [pool, gather, shortcut] = [io.pool, io.gather, io.shortcut];
  if (shortcut && (pool || gather || s.covered || o.unsummed))
    throw new ShapeError(`conv2d forward ${describe(s)} adds a shortcut only to its whole output, summed and stored`);
  if (o.unsummed && (pool || unsummedForwardSplits(gpu, s) === 0))
    throw new ShapeError(`conv2d forward ${describe(s)} cannot leave its sum split`);
  const wino = gather || o.unsummed ? null : winogradPlan(gpu, s, o);
  if (pool && !wino && !forwardPools(gpu, s))
    throw new ShapeError(`conv2d forward ${describe(s)} cannot pool 2x2 in its epilogue on this adapter`);
  checkRate(pool?.dropout);
  const pooling: Record<string, number> = pool ? { DROPOUT: pool.dropout ? 1 : 0, POOL_ARG: pool.argmax ? 1 : 0 } : {};
  const variant = { HAS_BIAS: io.b ? 1 : 0, ...actConstants(act), ...pooling };
  const pooled = pool ? ` + maxpool 2x2${pool.dropout ? ` + dropout p=${pool.dropout.rate}` : ''}` : '';
  const label = `${gather ? 'gather + ' : ''}conv2d forward ${describe(s)}${pooled}${shortcut ? ' + add' : ''}`;
  if (gather) checkGather(gpu, s, gather, { what: label, unsummed: o.unsummed });
  const work = {
    rows: s.k,
    cols,
    inner,
    bytesRead: f32Bytes(s.n * s.c * s.h * s.w, s.k * inner),
    epilogueReads: f32Bytes(io.b ? s.k : 0, shortcut ? s.n * s.k * g.oh * g.ow : 0),
    bytesWritten: f32Bytes(s.n * s.k * (g.oh * g.ow + (pool ? (pool.argmax ? 2 : 1) * poolWindows(g) : 0))),
  };
  const poolOut = pool ? [pool.pooled, pool.argmax ?? gpu.dummy2, pool.counter] : shortcut ? [shortcut] : [];
  const bindings = [io.x, io.w, io.b ?? gpu.dummy, io.y, ...poolOut];
  const cover = coverOf(s);
  if (gpu.lanes > 0) {
    const shader = pool ? 'conv2d_forward_lanes_pool' : shortcut ? 'conv2d_forward_lanes_add' : 'conv2d_forward_lanes';
    // Pooled, its tiles past what the pooling reads sum nothing (lib/conv_out_pool.wgsl conv_past_cover).
    const lanes = pool ? cover : { of: '', constants: {} };
    const lane = {
      shader: shader as typeof shader, // kept a literal, not widened to string
      params: paramsOf(s, forwardDropout(pool?.dropout)),
      constants: { ...variant, ...lanes.constants },
    };
    return laneKernel(gpu, { ...lane, cols, bindings, label: label.replace('forward ', `forward ${lanes.of}`), work });
  }
  if (wino) {
    const shader = pool ? 'conv2d_winograd_pool' : shortcut ? 'conv2d_winograd_add' : 'conv2d_winograd';
    const launch = { shader, constants: { ...variant, ...cover.constants }, bindings, work } as const;
    const uniform = params(s, g, wino.colTiles, undefined, forwardDropout(pool?.dropout));
    return winogradPass(gpu, wino, {
      ...launch,
      params: uniform,
      label: label.replace('forward ', `forward winograd ${cover.of}`),
    });
  }
  const p = forwardPlan(gpu, s, pool || gather ? { ...o, split: false } : o);
  if (gather && !gathersWith(gpu, p, pool !== undefined)) throw new ShapeError(ownPass(label));
  const len = s.k * cols;
  const tiles = { tileN: p.tile.bn, threads: p.threads, colTiles: p.colTiles, pooled: pool !== undefined };
  const gatherCost = gather && convGatherWork(s, gather, tiles);
  if (gatherCost) {
    // The dataset's bytes read in place of x, which is written beside the labels.
    work.bytesRead += gatherCost.bytesRead - f32Bytes(s.n * s.c * s.h * s.w);
    work.bytesWritten += gatherCost.bytesWritten;
  }
  const shader = pool ? 'conv2d_forward_pool' : 'conv2d_forward';
  const gathered = gather && gatherBindings(gpu, gather, pool !== undefined);
  return gemmDispatches(gpu, {
    shader: gather ? `${shader}_gather` : shortcut ? 'conv2d_forward_add' : shader,
    plan: p,
    params: params(s, g, p.colTiles, { chunk: p.chunk, splits: p.splits }, forwardDropout(pool?.dropout)),
    constants: { ...gemmConstants(p, { a: 0, b: 2 }), ...variant, ...(gather ? gatherConstants(gather) : {}) },
    epilogue: variant,
    inputs: [io.x, io.w],
    outputs: [io.b ?? gpu.dummy, io.y, ...poolOut, ...(gathered?.bindings ?? [])],
    owns: gathered?.owns,
    parts: needParts(p, io.parts, label, p.splits * len),
    unsummed: o.unsummed,
    workgroups: grid(p.rowTiles * p.colTiles),
    label,
    work: gatherCost ? { ...work, gather: gatherCost.gather, extraShared: gatherCost.extraShared } : work,
    len,
  });
}

/**
 * dx = dL/dx from dy = dL/dy (pre-activation: unfuse a fused activation first) and w.
 * dy [N,K,OH,OW], w [K,C,KH,KW], dx [N,C,H,W]: overwritten, or added to with `accumulate`
 * (an input that fans out). One dispatch, or two when K is split (`parts`: inputPartsLength floats);
 * with `unsummed` (unsummedInputSplits > 0) one, main_split writing its partials into dx.
 * With `chain` (the backward chain of the layers below, src/graph/fuse.ts), dx is that chain's input
 * gradient, written as the values are stored (shaders/lib/chain_store.wgsl): no pass of its own.
 */
export function conv2dBackwardInput(
  gpu: Gpu,
  io: { dy: BufferRef; w: BufferRef; dx: BufferRef; parts?: BufferRef; chain?: EpilogueChainIO },
  s: Conv2dShape,
  o: ConvOptions & { accumulate?: boolean; unsummed?: boolean; chain?: EpilogueChain } = {},
): Dispatch[] {
  if ((o.unsummed || o.accumulate) && o.chain)
    throw new ShapeError(`conv2d backward input ${describe(s)} runs a chain only when it stores its sums whole`);
  if (o.unsummed) {
    if (o.accumulate || unsummedInputSplits(gpu, s) === 0)
      throw new ShapeError(`conv2d backward input ${describe(s)} cannot leave its sum split`);
  }
  const g = conv2dGeometry(s);
  const xs = s.n * s.c * s.h * s.w;
  if (o.chain && !io.chain) throw new ShapeError(`conv2d backward input ${describe(s)}: its chain needs its buffers`);
  const chain = o.chain && io.chain ? chainStoreOf(o.chain, io.chain, xs) : null;
  const accum = chain ? chain.constants : { ACCUM: o.accumulate ? 1 : 0 };
  const label = `conv2d backward input ${describe(s)}${o.chain ? chainLabel(o.chain) : ''}`;
  const work = {
    rows: s.c,
    cols: s.n * g.oh * g.ow,
    inner: s.k * s.kh * s.kw,
    bytesRead: f32Bytes(s.n * s.k * g.oh * g.ow, s.k * s.c * s.kh * s.kw),
    epilogueReads: f32Bytes(o.accumulate ? xs : 0) + (chain?.bytes.reads ?? 0),
    bytesWritten: f32Bytes(xs),
    // A chain that unpools writes its block for each of the dX's values (a split plan's reduce pass too).
    epilogueWrites: chain?.bytes.writes ?? 0,
  };
  // Bindings: dx, then the chain's at 6, 7, 8.
  const outputs = chain ? [io.dx, null, null, ...chain.bindings] : [io.dx];
  if (gpu.lanes > 0) {
    // A stride phase a workgroup layer, as the tiled kernel: the largest phase's tiles in each.
    const { cols, inner, phases } = inputGemm(s);
    const lane = {
      shader: o.chain ? ('conv2d_backward_input_lanes_chain' as const) : ('conv2d_backward_input_lanes' as const),
      params: paramsOf(s, chainUniform(o.chain)),
      constants: accum,
    };
    const phased = { cols, phases, steps: inner };
    return laneKernel(gpu, { ...lane, ...phased, bindings: [io.dy, io.w, ...outputs], label, work });
  }
  const wino = o.unsummed ? null : inputWinogradPlan(gpu, s, o);
  if (wino) {
    const shader = o.chain ? 'conv2d_winograd_dx_chain' : 'conv2d_winograd_dx';
    const launch = { shader, constants: accum, bindings: [io.dy, io.w, ...outputs], work } as const;
    const uniform = params(s, g, wino.colTiles, undefined, chainUniform(o.chain));
    return winogradPass(gpu, wino, { ...launch, params: uniform, label: label.replace('input', 'input winograd') });
  }
  const p = inputPlan(gpu, s, o);
  const { rows, cols, inner, phases } = inputGemm(s);
  const len = phases * rows * cols;
  const [gx, gy] = grid(p.rowTiles * p.colTiles);
  return gemmDispatches(gpu, {
    shader: o.chain ? 'conv2d_backward_input_chain' : 'conv2d_backward_input',
    plan: p,
    params: params(s, g, p.colTiles, { chunk: p.chunk, splits: p.splits }, chainUniform(o.chain)),
    constants: { ...gemmConstants(p, { a: 0, b: 2 }), ...accum },
    epilogue: accum,
    inputs: [io.dy, io.w],
    outputs,
    // Unsummed: the split pass alone, writing its partials into dx for the reader that sums them.
    parts: o.unsummed ? io.dx : needParts(p, io.parts, label, p.splits * len),
    unsummed: o.unsummed,
    workgroups: [gx, gy, phases],
    label,
    work: { ...work, steps: inner },
    len,
  });
}

/**
 * dw = dL/dw [K,C,KH,KW] and, when given, db = dL/db [K] from dy [N,K,OH,OW] (pre-activation) and
 * x [N,C,H,W]; both overwritten. Tiled kernels: db in the same pass (the GEMM's row sums of dy), one
 * dispatch, then the reduction of the partial sums when split; the lane kernels alike.
 * `parts`: weightPartsLength floats (with `bias: db !== undefined`). With `unsummed` (tiled kernels, a
 * split plan: weightSplit) only the split pass, its partials left in `parts` for the planner to sum.
 */
export function conv2dBackwardWeights(
  gpu: Gpu,
  io: { dy: BufferRef; x: BufferRef; dw: BufferRef; db?: BufferRef; parts?: BufferRef },
  s: Conv2dShape,
  o: ConvOptions & { unsummed?: boolean } = {},
): Dispatch[] {
  const g = conv2dGeometry(s);
  const ckk = s.c * s.kh * s.kw;
  // The positions of the part of the output its pooling reads (dY is 0 past it), on every kernel family.
  const [positions, cover] = [weightInner(s), coverOf(s)];
  const label = `conv2d backward weights ${cover.of}${describe(s)}`;
  const work = {
    rows: s.k,
    cols: ckk,
    inner: positions,
    bytesRead: f32Bytes(s.k * positions, s.n * s.c * s.h * s.w),
    bytesWritten: f32Bytes(s.k * ckk, io.db ? s.k : 0),
  };
  if (gpu.lanes > 0) {
    if (o.unsummed) throw new ShapeError(`${label}: the lane kernels leave no partial sums unsummed`);
    const what = `${cover.of}${describe(s)}`;
    const gemm = { k: s.k, ckk, positions, params: paramsOf(s), what, target: laneTarget(o) };
    return laneWeightGradient(gpu, io, { ...gemm, constants: cover.constants, work });
  }
  const [sums, bias] = [io.db ? (1 as const) : (0 as const), { ...o, bias: io.db !== undefined }];
  const p = weightNarrowPlan(gpu, s, bias) ?? weightWinogradPlan(gpu, s, bias) ?? weightPlan(gpu, s, bias);
  if (o.unsummed && p.splits < 2) throw new ShapeError(`${label} does not split: nothing to leave unsummed`);
  const name = sums ? `${label} + bias grad` : label;
  if ('narrow' in p) {
    const split = params(s, g, 1, { chunk: p.chunk, splits: p.splits });
    const named = { label: name.replace('weights ', 'weights narrow '), unsummed: o.unsummed };
    return narrowWeights(gpu, s, p, { io, params: split, positions, ...named });
  }
  if ('side' in p) {
    const split = params(s, g, p.colTiles, { chunk: p.chunk, splits: p.splits });
    const named = { label: name.replace('weights ', 'weights winograd '), unsummed: o.unsummed };
    return winogradWeights(gpu, s, p, { io, params: split, work, ...named });
  }
  const len = s.k * (ckk + sums);
  return gemmDispatches(gpu, {
    shader: 'conv2d_backward_weights',
    plan: p,
    params: params(s, g, p.colTiles, { chunk: p.chunk, splits: p.splits }),
    constants: { ...gemmConstants(p, { a: 0, b: 0, sums }), ...cover.constants },
    epilogue: { GEMM_SUMS: sums },
    inputs: [io.dy, io.x],
    outputs: [io.dw, io.db ?? gpu.dummy],
    parts: needParts(p, io.parts, label, p.splits * len),
    unsummed: o.unsummed,
    workgroups: grid(p.rowTiles * p.colTiles),
    label: name,
    work: { ...work, extraShared: 16 * p.tile.bn },
    sums,
    len,
  });
}
