// Matrix multiply with transposed variants, bias and activation fused into the write, and on the
// tiled kernels optionally the bias gradient (the column sums of op(B)) and split-K.
// Shapes and layout: shaders/matmul.wgsl; tiles and splits: gemm.ts.
import type { Act } from '../../dsl/ir.ts';
import { ShapeError } from '../errors.ts';
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { ceilDiv } from '../gpu/runtime.ts';
import { f32Bytes, laneGemm } from '../gpu/work.ts';
import { actConstants, actName } from './act.ts';
import { chooseGemm, gemmConstants, gemmDispatches, needParts, partsLength, planWork, type GemmPlan } from './gemm.ts';
import { laneConstants, laneTile } from './lanes.ts';
import { checkRate, type ChainDropout, type EpilogueChain } from './chain.ts';
import { dropoutUniform } from './dropout.ts';

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
 * What shaders/lib/matmul_out_fused.wgsl's EPILOGUE does after the GEMM:
 *   dropout: C is written, and io.epi = dropout(C) (the dense layer's forward with its dropout);
 *   chain:   C = act'(io.epi) ⊙ dropoutᵀ(v), the backward chain of the layer before (its activation's derivative
 *            from that layer's output Y, or its activation's input X) in a dX with no bias or activation.
 */
export type MatmulEpilogue = { kind: 'dropout'; dropout: ChainDropout } | ({ kind: 'chain' } & EpilogueChain);

export interface MatmulIO {
  a: BufferRef;
  b: BufferRef;
  bias?: BufferRef;
  c: BufferRef;
  dbias?: BufferRef;
  parts?: BufferRef;
  /** The epilogue's tensor (dropped output or saved values) and the step counter its dropout reads. */
  epi?: BufferRef;
  counter?: BufferRef;
}

/**
 * The epilogue's constants, uniform fields and bindings (6 counter, 7 epi), checked; the plain kernels have none
 * (their uniform's dropout fields are unread).
 */
function epilogueOf(s: MatmulShape, io: MatmulIO) {
  const e = s.epilogue;
  if (!e) return { fused: false, constants: {}, params: dropoutUniform(), bindings: [] };
  checkRate(e.dropout);
  if (!io.epi || !io.counter) throw new ShapeError(`a matmul with a ${e.kind} epilogue needs its tensor and counter`);
  if (e.kind === 'chain' && (io.bias || s.accumulate || (s.act && s.act.kind !== 'linear')))
    throw new ShapeError('a matmul with a backward chain epilogue takes no bias, activation or accumulation');
  const chain = e.kind === 'chain' ? { ...actConstants(e.act), FROM_OUTPUT: e.from === 'output' ? 1 : 0 } : {};
  return {
    fused: true,
    constants: { EPILOGUE: e.kind === 'dropout' ? 1 : 2, ...chain },
    params: dropoutUniform(e.dropout),
    bindings: [io.counter, io.epi],
  };
}

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
  const [epiReads, epiWrites] = epilogueBytes(s);
  return [
    gpu.kernel({
      shader: epi.fused ? 'matmul_lanes_fused' : 'matmul_lanes',
      params: { m: s.m, n: s.n, k: s.k, splits: 1, chunk: s.k, ...epi.params, ...NO_LOSS },
      constants: { ...laneConstants(gpu.lanes, t), ...variant },
      bindings: [io.a, io.b, io.bias ?? gpu.dummy, io.c, null, ...epi.bindings],
      workgroups: [ceilDiv(s.n, bn), ceilDiv(s.m, bm)],
      label,
      work: laneGemm(
        { ...tiles, bytesRead: bytesRead + epiReads, bytesWritten: f32Bytes(s.m * s.n) + epiWrites, steps: s.k },
        gpu.lanes,
      ),
    }),
  ];
}

/** ` + dropout`, ` + dropout+relu'`: what a label adds for the epilogue. */
function epilogueLabel(e: MatmulEpilogue | undefined): string {
  if (!e) return '';
  return e.kind === 'dropout' ? ` + dropout p=${e.dropout.rate}` : ` + dropout+${actName(e.act)}' p=${e.dropout.rate}`;
}

/** Bytes the epilogue reads (saved values) and writes (the dropped output) besides C. */
function epilogueBytes(s: MatmulShape): [number, number] {
  const mn = f32Bytes(s.m * s.n);
  return s.epilogue?.kind === 'chain' ? [mn, 0] : s.epilogue ? [0, mn] : [0, 0];
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
  const sums = o.dbias ? 2 : 0;
  const len = (s.m + (o.dbias ? 1 : 0)) * s.n;
  const label = o.dbias ? `${d.label} + bias grad` : d.label;
  const [epiReads, epiWrites] = epilogueBytes(s);
  return gemmDispatches(gpu, {
    shader: d.epi.fused ? 'matmul_fused' : 'matmul',
    plan: p,
    params: { m: s.m, n: s.n, k: s.k, splits: p.splits, chunk: p.chunk, ...d.epi.params, ...NO_LOSS },
    constants: { ...gemmConstants(p, { a: s.transA ? 1 : 0, b: s.transB ? 0 : 1, sums }), ...d.variant },
    epilogue: { ...d.variant, GEMM_SUMS: sums },
    inputs: [io.a, io.b],
    // Distinct dummies: one is bound read-only, the other writable (WebGPU refuses both on one buffer).
    outputs: [io.bias ?? gpu.dummy, io.c, io.dbias ?? gpu.dummy2, ...d.epi.bindings],
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

/** The logits' GEMM with the softmax-xent loss in its epilogue: at most this many rows (one tile's). */
export const XENT_ROWS = 128;

/**
 * logits = x·w + b (x [N,F], w [F,C], b [C]) with the softmax-xent loss of shaders/softmax_xent.wgsl in
 * the same dispatch (shaders/matmul_xent.wgsl): dlogits = (softmax − target)·scale (target smoothed by
 * `smoothing`), stats += (loss sum, correct count) and the step counter's snapshot (counter[1] = counter[0]),
 * the same bits as matmul then softmaxXent. One workgroup, on the tiled kernels, for N ≤ XENT_ROWS.
 */
export function matmulXent(
  gpu: Gpu,
  io: { a: BufferRef; b: BufferRef; bias?: BufferRef; c: BufferRef; labels: BufferRef; dlogits?: BufferRef } & {
    stats: BufferRef;
    counter: BufferRef;
  },
  s: { m: number; k: number; n: number },
  x: { smoothing: number; scale: number },
): Dispatch[] {
  if (gpu.lanes > 0 || s.m > XENT_ROWS) throw new ShapeError(`matmul ${s.m}x${s.k}x${s.n}: no loss epilogue here`);
  const p = chooseGemm(gpu, { rows: s.m, cols: s.n, inner: s.k, split: false, whole: true });
  const variant = { TRANS_A: 0, TRANS_B: 0, HAS_BIAS: io.bias ? 1 : 0, ACCUM: 0, ...actConstants() };
  const loss = { smoothing: { f32: x.smoothing }, lossScale: { f32: x.scale }, grad: io.dlogits ? 1 : 0 };
  const label = `matmul ${s.m}x${s.k}x${s.n} + softmax_xent${io.dlogits ? '' : ' (eval)'} + totals`;
  return [
    gpu.kernel({
      shader: 'matmul_xent',
      entry: 'main_xent',
      params: { m: s.m, n: s.n, k: s.k, splits: 1, chunk: s.k, ...dropoutUniform(), ...loss },
      constants: { ...gemmConstants(p, { a: 0, b: 1 }), ...variant },
      // dbias (5) is never written but bound: three distinct unused buffers (an unread bias is the labels).
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
      ],
      workgroups: [1, 1],
      label,
      // Priced as its GEMM in one tile; the rows' loss after it (one thread a row walking its logits three
      // times, then the 64-row trees) is a few hundred cycles beside the K loop.
      work: planWork(p, {
        rows: s.m,
        cols: s.n,
        inner: s.k,
        tiles: 1,
        bytesRead: f32Bytes(s.m * s.k, s.k * s.n, io.bias ? s.n : 0, s.m, 2 * s.m * s.n),
        bytesWritten: f32Bytes(s.m * s.n, io.dlogits ? s.m * s.n : 0, 2),
      }),
    }),
  ];
}
