// Matrix multiply with transposed variants, bias and activation fused into the write, and on the
// tiled kernels optionally the bias gradient (the column sums of op(B)) and split-K.
// Shapes and layout: shaders/matmul.wgsl; tiles and splits: gemm.ts.
import type { Act } from '../../dsl/ir.ts';
import { ShapeError } from '../errors.ts';
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { ceilDiv } from '../gpu/runtime.ts';
import { f32Bytes, laneGemm, treeBarriers } from '../gpu/work.ts';
import { actConstants } from './act.ts';
import { chooseGemm, gemmConstants, gemmDispatches, needParts, partsLength, planWork, type GemmPlan } from './gemm.ts';
import { laneConstants, laneTile } from './lanes.ts';
import { chainLabel, chainStoreOf, chainUniform, checkRate, type ChainDropout, type EpilogueChain } from './chain.ts';
import { dropoutUniform } from './dropout.ts';
import { XENT_GROUP, xentRowLoads } from './softmax_xent.ts';

export interface MatmulShape {
  m: number;
  n: number;
  k: number;
  /** A is stored [K,M]. */
  transA?: boolean;
  /** B is stored [N,K]. */
  transB?: boolean;
  act?: Act;
  /** C += result (gradient accumulation) instead of C = result. */
  accumulate?: boolean;
  /** A dense layer's fused epilogue (the planner's choice, src/graph/fuse.ts); its buffers are io.epi, io.counter. */
  epilogue?: MatmulEpilogue;
}

/**
 * A dense layer's fused epilogue after the GEMM:
 *   dropout: C is written, and io.epi = dropout(C) (the dense layer's forward with its dropout;
 *            shaders/lib/matmul_out_fused.wgsl);
 *   add:     C = act(op(A)·op(B) + bias + io.epi), io.epi a residual add's other input (the dense layer's
 *            forward whose output only that add reads, its activation the add's; lib/matmul_out_add.wgsl);
 *   chain:   C is the gradient of the chain below (io.term added first where it has one; its dropoutᵀ, unpooling
 *            of windows apart and act', from io.epi the saved values and io.argmax) in a dX with no bias,
 *            activation or accumulation
 *            (shaders/lib/matmul_out_chain.wgsl, lib/chain_store.wgsl); C is then the chain input's size.
 */
export type MatmulEpilogue =
  | { kind: 'dropout'; dropout: ChainDropout }
  | { kind: 'add' }
  | ({ kind: 'chain' } & EpilogueChain);

export interface MatmulIO {
  a: BufferRef;
  b: BufferRef;
  bias?: BufferRef;
  c: BufferRef;
  dbias?: BufferRef;
  parts?: BufferRef;
  /**
   * The epilogue's tensor (dropped output, shortcut or saved values), the step counter its dropout reads, a
   * chain's argmax or its term (EpilogueChain.term).
   */
  epi?: BufferRef;
  counter?: BufferRef;
  argmax?: BufferRef;
  term?: BufferRef;
}

/**
 * The epilogue's module, constants, uniform fields, bindings (6, 7, 8) and the bytes it reads and writes besides
 * C's M·N (a dropped output; a shortcut; saved values, argmax, the unpooled rest), checked; the plain kernels
 * have none (their uniform's dropout and window fields are unread).
 */
function epilogueOf(s: MatmulShape, io: MatmulIO) {
  const e = s.epilogue;
  const plain = chainUniform(undefined);
  if (!e) return { kind: 'none' as const, constants: {}, params: plain, bindings: [], bytes: { reads: 0, writes: 0 } };
  if (e.kind === 'add') {
    if (!io.epi || s.accumulate) throw new ShapeError('a matmul adding a shortcut needs it, and accumulates nothing');
    const bytes = { reads: f32Bytes(s.m * s.n), writes: 0 }; // the shortcut
    return { kind: 'add' as const, constants: {}, params: plain, bindings: [io.epi], bytes };
  }
  if (!io.counter) throw new ShapeError(`a matmul with a ${e.kind} epilogue needs the step counter`);
  if (e.kind === 'dropout') {
    checkRate(e.dropout);
    if (!io.epi) throw new ShapeError('a matmul with a dropout epilogue needs its output tensor');
    const params = { ...plain, ...dropoutUniform(e.dropout) };
    const bytes = { reads: 0, writes: f32Bytes(s.m * s.n) }; // the dropped output
    return { kind: 'fused' as const, constants: {}, params, bindings: [io.counter, io.epi], bytes };
  }
  if (io.bias || s.accumulate || (s.act && s.act.kind !== 'linear'))
    throw new ShapeError('a matmul with a backward chain epilogue takes no bias, activation or accumulation');
  const chain = chainStoreOf(e, { counter: io.counter, saved: io.epi, argmax: io.argmax, term: io.term }, s.m * s.n);
  return { kind: 'chain' as const, ...chain };
}

/** Binding 3: the bias, or a stand-in; none where the chain epilogue (no bias added) leaves it out of the layout. */
const biasBinding = (gpu: Gpu, io: MatmulIO, epi: ReturnType<typeof epilogueOf>): BufferRef | null =>
  epi.kind === 'chain' ? null : (io.bias ?? gpu.dummy);

/** The modules of each epilogue: plain, the dropout's (lib/matmul_out_fused.wgsl), the add's, the chain's. */
const TILED_SHADERS = { none: 'matmul', fused: 'matmul_fused', add: 'matmul_add', chain: 'matmul_chain' } as const;
const LANE_SHADERS = {
  none: 'matmul_lanes',
  fused: 'matmul_lanes_fused',
  add: 'matmul_lanes_add',
  chain: 'matmul_lanes_chain',
} as const;

/** The loss fields of the matmul uniform, unread but by shaders/matmul_xent.wgsl. */
const NO_LOSS = { smoothing: { f32: 0 }, lossScale: { f32: 0 }, grad: 0 };

/** How a matmul may be tiled: `split` false where no partial-sums buffer can be given; `target` workgroups (tests). */
export interface MatmulOptions {
  split?: boolean;
  target?: number;
  /** The column sums of op(B) are wanted too (io.dbias). */
  dbias?: boolean;
  /** Only the split pass of a split plan: its partials left in io.parts for the planner to sum (tiled kernels). */
  unsummed?: boolean;
}

/** The tile and split the tiled kernel uses for this shape and options on this adapter (gemm.ts). */
export function matmulPlan(gpu: Gpu, s: MatmulShape, o: MatmulOptions = {}): GemmPlan {
  const need = { rows: s.m, cols: s.n, inner: s.k, sums: o.dbias ? (2 as const) : (0 as const) };
  return chooseGemm(gpu, { ...need, split: o.split ?? true, target: o.target });
}

/**
 * Floats of the partial-sums buffer matmul needs (io.parts) for this shape and options on this
 * adapter, 0 when it does not split (always on the lane kernels).
 */
export function matmulPartsLength(gpu: Gpu, s: MatmulShape, o: MatmulOptions = {}): number {
  return gpu.lanes > 0 ? 0 : partsLength(matmulPlan(gpu, s, o), s.m + (o.dbias ? 1 : 0), s.n);
}

/**
 * C (+)= act(op(A)·op(B) + bias): A [M,K], B [K,N] (or as transposed), bias [N], C [M,N]; with
 * `dbias` (tiled kernels, no bias) also dbias[n] = Σ_k op(B)[k,n]. One dispatch, or two when K is
 * split (then `parts` holds matmulPartsLength floats).
 */
export function matmul(gpu: Gpu, io: MatmulIO, s: MatmulShape, o: Omit<MatmulOptions, 'dbias'> = {}): Dispatch[] {
  const epi = epilogueOf(s, io);
  const variant = {
    TRANS_A: s.transA ? 1 : 0,
    TRANS_B: s.transB ? 1 : 0,
    HAS_BIAS: io.bias ? 1 : 0,
    ACCUM: s.accumulate ? 1 : 0,
    ...actConstants(s.act),
    ...epi.constants,
  };
  const label = `matmul ${s.m}x${s.k}x${s.n}${epilogueLabel(s.epilogue)}`;
  if (gpu.lanes === 0) return tiled(gpu, io, s, { ...o, dbias: io.dbias !== undefined }, { variant, label, epi });
  const bytesRead = f32Bytes(s.m * s.k, s.k * s.n, io.bias ? s.n : 0, s.accumulate ? s.m * s.n : 0);
  if (io.dbias || o.unsummed) throw new ShapeError(`${label}: the lane kernel computes no bias gradient or split`);
  // CPU adapters: the subgroup-lane kernel (shaders/matmul_lanes.wgsl).
  const t = laneTile(gpu.lanes, s.m, s.n);
  const [bm, bn] = [t.rowGroups * gpu.lanes, t.cols * gpu.lanes];
  const tiles = { rows: s.m, cols: s.n, inner: s.k, tiles: ceilDiv(s.n, bn) * ceilDiv(s.m, bm), tileM: bm, tileN: bn };
  const { reads: epiReads, writes: epiWrites } = epi.bytes;
  return [
    gpu.kernel({
      shader: LANE_SHADERS[epi.kind],
      params: { m: s.m, n: s.n, k: s.k, splits: 1, chunk: s.k, ...epi.params, ...NO_LOSS },
      constants: { ...laneConstants(gpu.lanes, t), ...variant },
      bindings: [io.a, io.b, biasBinding(gpu, io, epi), io.c, null, ...epi.bindings],
      workgroups: [ceilDiv(s.n, bn), ceilDiv(s.m, bm)],
      label,
      work: laneGemm(
        { ...tiles, bytesRead: bytesRead + epiReads, bytesWritten: f32Bytes(s.m * s.n) + epiWrites, steps: s.k },
        gpu.lanes,
      ),
    }),
  ];
}

/** ` + dropout`, ` + dropout+maxunpool+relu'`: what a label adds for the epilogue. */
function epilogueLabel(e: MatmulEpilogue | undefined): string {
  if (!e) return '';
  if (e.kind === 'add') return ' + add';
  return e.kind === 'dropout' ? ` + dropout p=${e.dropout.rate}` : chainLabel(e);
}

/** The tiled kernel (shaders/matmul.wgsl): one pass, or split-K partials and their reduction. */
function tiled(
  gpu: Gpu,
  io: MatmulIO,
  s: MatmulShape,
  o: MatmulOptions,
  d: { variant: Record<string, number>; label: string; epi: ReturnType<typeof epilogueOf> },
): Dispatch[] {
  const p = matmulPlan(gpu, s, o);
  if (o.unsummed && p.splits < 2) throw new ShapeError(`${d.label} does not split: nothing to leave unsummed`);
  if (o.unsummed && d.epi.kind !== 'none') throw new ShapeError(`${d.label} leaves no sum split past its epilogue`);
  const sums = o.dbias ? 2 : 0;
  const len = (s.m + (o.dbias ? 1 : 0)) * s.n;
  const label = o.dbias ? `${d.label} + bias grad` : d.label;
  const { reads: epiReads, writes: epiWrites } = d.epi.bytes;
  return gemmDispatches(gpu, {
    shader: TILED_SHADERS[d.epi.kind],
    plan: p,
    params: { m: s.m, n: s.n, k: s.k, splits: p.splits, chunk: p.chunk, ...d.epi.params, ...NO_LOSS },
    constants: { ...gemmConstants(p, { a: s.transA ? 1 : 0, b: s.transB ? 0 : 1, sums }), ...d.variant },
    epilogue: { ...d.variant, GEMM_SUMS: sums },
    inputs: [io.a, io.b],
    // Distinct dummies: one is bound read-only, the other writable (WebGPU refuses both on one buffer).
    outputs: [biasBinding(gpu, io, d.epi), io.c, io.dbias ?? gpu.dummy2, ...d.epi.bindings],
    parts: needParts(p, io.parts, label, p.splits * len),
    unsummed: o.unsummed,
    workgroups: [p.colTiles, p.rowTiles],
    label,
    work: {
      rows: s.m,
      cols: s.n,
      inner: s.k,
      bytesRead: f32Bytes(s.m * s.k, s.k * s.n),
      epilogueReads: f32Bytes(io.bias ? s.n : 0, s.accumulate ? s.m * s.n : 0) + epiReads,
      bytesWritten: f32Bytes(s.m * s.n, o.dbias ? s.n : 0),
      epilogueWrites: epiWrites,
    },
    sums,
    len,
  });
}

/** The logits' GEMM with the loss in its epilogue: its tile (every column; all rows, or bands of 32-row groups). */
function matmulXentPlan(gpu: Gpu, s: { m: number; k: number; n: number }): GemmPlan {
  if (gpu.lanes > 0 || s.n > 128) throw new ShapeError(`matmul ${s.m}x${s.k}x${s.n}: no loss epilogue here`);
  return chooseGemm(gpu, { rows: s.m, cols: s.n, inner: s.k, split: false, wholeRows: true });
}

/** The partial totals (pairs, one a 32-row group) matmulXent leaves: 0 where one workgroup adds them itself. */
const partialsOf = (p: GemmPlan, m: number): number => (p.rowTiles > 1 ? ceilDiv(m, XENT_GROUP) : 0);

/** The partial totals matmulXent leaves for this shape on this adapter (partialsOf). */
export const matmulXentPartials = (gpu: Gpu, s: { m: number; k: number; n: number }): number =>
  partialsOf(matmulXentPlan(gpu, s), s.m);

/**
 * logits = x·w + b (x [N,F], w [F,C], b [C]) with the softmax-xent loss of shaders/softmax_xent.wgsl in
 * the same dispatch (shaders/matmul_xent.wgsl): dlogits = (softmax − target)·scale (target smoothed by
 * `smoothing`) and the step counter's snapshot (counter[1] = counter[0]); the loss sum and correct count
 * added into stats when one workgroup holds every row (`partials` unwritten), else left in `partials`
 * (u32 [2·⌈N/32⌉]: matmulXentPartials pairs) as the loss pass leaves them, for its totals pass
 * (softmax_xent.ts xentTotal) or a step's update to add. The same bits as matmul then softmaxXent. On the
 * tiled kernels, for C ≤ 128 (one tile's columns).
 */
export function matmulXent(
  gpu: Gpu,
  io: { a: BufferRef; b: BufferRef; bias?: BufferRef; c: BufferRef; labels: BufferRef; dlogits?: BufferRef } & {
    stats: BufferRef;
    counter: BufferRef;
    partials: BufferRef;
  },
  s: { m: number; k: number; n: number },
  x: { smoothing: number; scale: number },
): Dispatch[] {
  const p = matmulXentPlan(gpu, s);
  const bands = p.rowTiles;
  const pairs = partialsOf(p, s.m);
  const variant = { TRANS_A: 0, TRANS_B: 0, HAS_BIAS: io.bias ? 1 : 0, ACCUM: 0, ...actConstants() };
  const loss = { smoothing: { f32: x.smoothing }, lossScale: { f32: x.scale }, grad: io.dlogits ? 1 : 0 };
  const what = `softmax_xent${io.dlogits ? '' : ' (eval)'}${bands > 1 ? '' : ' + totals'}`;
  const label = `matmul ${s.m}x${s.k}x${s.n} + ${what}`;
  return [
    gpu.kernel({
      shader: 'matmul_xent',
      entry: 'main_xent',
      params: { m: s.m, n: s.n, k: s.k, splits: 1, chunk: s.k, ...chainUniform(undefined), ...loss },
      constants: { ...gemmConstants(p, { a: 0, b: 1 }), ...variant },
      // dbias (5) is never written but bound: distinct unused buffers (an unread bias is the labels).
      bindings: [
        io.a,
        io.b,
        io.bias ?? io.labels,
        io.c,
        gpu.dummy,
        io.labels,
        io.dlogits ?? gpu.dummy2,
        io.stats,
        io.counter,
        io.partials,
      ],
      workgroups: [1, bands],
      label,
      // Its GEMM, then the rows' loss: one thread a row reading its logits as the loss pass does
      // (xentRowLoads), after a storage barrier, then the 32-row trees.
      work: planWork(p, {
        rows: s.m,
        cols: s.n,
        inner: s.k,
        tiles: bands,
        bytesRead: f32Bytes(s.m * s.k, s.k * s.n, io.bias ? s.n : 0, s.m, 2 * s.m * s.n),
        bytesWritten: f32Bytes(s.m * s.n, io.dlogits ? s.m * s.n : 0, pairs > 0 ? 2 * pairs : 2),
        extraShared: f32Bytes(256, 256), // lib/xent.wgsl row_loss and row_hit
        tail: { loads: xentRowLoads(s.n, io.dlogits !== undefined), barriers: 1 + treeBarriers(XENT_GROUP) },
      }),
    }),
  ];
}
