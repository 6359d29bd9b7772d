// The conv2d passes on the subgroup-lane kernels that CPU adapters run instead of the tiled ones
// (Gpu.lanes > 0; shaders/conv2d_*_lanes.wgsl, tiles from lanes.ts): conv2d.ts's launchers hand a
// pass here with its uniform and description. The weight gradient computes db in the same pass
// (SUMS), splits its positions over a few workgroups (weightSplits) and sums the partials with
// reduce_splits of the tiled weight-gradient shader (one pass: at most 16 partials a thread).
import { ShapeError } from '../errors.ts';
import type { BufferRef, Dispatch, Gpu, Uniform } from '../gpu/runtime.ts';
import { ceilDiv, grid } from '../gpu/runtime.ts';
import { f32Bytes, laneGemm, type GemmTiles } from '../gpu/work.ts';
import { reduceSplits } from './gemm.ts';
import { laneConstants, laneTile } from './lanes.ts';

/** A pass's uniform (struct Params of shaders/lib/conv.wgsl) for `colTiles` column tiles and a split. */
export type ConvParams = (colTiles: number, split?: { chunk: number; splits: number }) => Uniform;

/** A lane kernel's tile and constants for a rows × cols GEMM (lanes.ts). */
function laneTiling(gpu: Gpu, rows: number, cols: number) {
  const t = laneTile(gpu.lanes, rows, cols);
  return { bm: t.rowGroups * gpu.lanes, bn: t.cols * gpu.lanes, constants: laneConstants(gpu.lanes, t) };
}

/**
 * A forward or dX lane kernel: `work.rows` × `cols` (its own columns), a workgroup per tile; a dX's
 * stride `phases` in a third dimension, `cols` and `steps` the largest phase's (else 1, and work.inner).
 */
export function laneKernel(
  gpu: Gpu,
  o: {
    shader:
      | 'conv2d_forward_lanes'
      | 'conv2d_forward_lanes_pool'
      | 'conv2d_forward_lanes_add'
      | 'conv2d_backward_input_lanes'
      | 'conv2d_backward_input_lanes_chain';
    cols: number;
    phases?: number;
    steps?: number;
    params: ConvParams;
    constants: Record<string, number>;
    bindings: (BufferRef | null)[];
    label: string;
    work: Omit<GemmTiles, 'tiles' | 'tileM' | 'tileN' | 'kSteps'> & { epilogueReads: number };
  },
): Dispatch[] {
  const t = laneTiling(gpu, o.work.rows, o.cols);
  const colTiles = ceilDiv(o.cols, t.bn);
  const tiles = colTiles * ceilDiv(o.work.rows, t.bm);
  const phases = o.phases ?? 1;
  const { epilogueReads, ...w } = o.work;
  const tiling = { tiles: tiles * phases, tileM: t.bm, tileN: t.bn, steps: o.steps ?? w.inner };
  return [
    gpu.kernel({
      shader: o.shader,
      params: o.params(colTiles),
      constants: { ...t.constants, ...o.constants },
      bindings: o.bindings,
      workgroups: [...grid(tiles), phases],
      label: o.label,
      work: laneGemm({ ...w, ...tiling, bytesRead: w.bytesRead + epilogueReads }, gpu.lanes),
    }),
  ];
}

/**
 * How the lane kernels' weight gradient splits its inner dimension (`inner` = N·OH·OW positions) so
 * that about `target` workgroups share `tiles` output tiles: chunks of at least 64 positions, a
 * multiple of 16. One split when the tiles alone fill the adapter.
 */
export function weightSplits(inner: number, tiles: number, target: number): { splits: number; chunk: number } {
  const want = Math.max(1, Math.min(Math.ceil(target / tiles), Math.floor(inner / 64)));
  const chunk = Math.ceil(Math.ceil(inner / want) / 16) * 16;
  return { splits: Math.ceil(inner / chunk), chunk };
}

/** The weight gradient's GEMM: K rows (out-channels), C·KH·KW columns, N·OH·OW positions. */
export interface WeightGemm {
  k: number;
  ckk: number;
  positions: number;
}

/** The lane kernels' weight-gradient tile and split-K (aiming at `target`, else 2·units workgroups). */
export function laneWeights(gpu: Gpu, s: WeightGemm, target?: number) {
  const t = laneTiling(gpu, s.k, s.ckk);
  const colTiles = ceilDiv(s.ckk, t.bn);
  const tiles = colTiles * ceilDiv(s.k, t.bm);
  return { ...t, colTiles, tiles, ...weightSplits(s.positions, tiles, target ?? 2 * gpu.units) };
}

/** Floats of the lane weight gradient's partial sums (io.parts): splits × K·(C·KH·KW + 1 with db), 0 unsplit. */
export function laneWeightPartsLength(gpu: Gpu, s: WeightGemm, o: { target?: number; bias?: boolean }): number {
  const { splits } = laneWeights(gpu, s, o.target);
  return splits > 1 ? splits * s.k * (s.ckk + (o.bias ? 1 : 0)) : 0;
}

/** The lane kernels' weight gradient: dw and db in one pass (split-K: partials, then their reduction). */
export function laneWeightGradient(
  gpu: Gpu,
  io: { dy: BufferRef; x: BufferRef; dw: BufferRef; db?: BufferRef; parts?: BufferRef },
  o: WeightGemm & {
    params: ConvParams;
    what: string;
    target?: number;
    /** The covered part's override constants (conv2d_plan.ts coverOf). */
    constants?: Record<string, number>;
    work: Omit<GemmTiles, 'tiles' | 'tileM' | 'tileN' | 'kSteps'>;
  },
): Dispatch[] {
  const t = laneWeights(gpu, o, o.target);
  const sums = io.db ? 1 : 0;
  const len = o.k * (o.ckk + sums);
  const parts = t.splits > 1 ? io.parts : null;
  if (parts === undefined)
    throw new ShapeError(
      `conv2d backward weights ${o.what} splits its sum ${t.splits} ways and needs a partial-sums buffer ` +
        `of ${t.splits * len} floats (weightPartsLength)`,
    );
  const p = o.params(t.colTiles, { chunk: t.chunk, splits: t.splits });
  const lane = {
    ...o.work,
    bytesWritten: f32Bytes(t.splits * len),
    tiles: t.tiles * t.splits,
    tileM: t.bm,
    tileN: t.bn,
  };
  const what = `${o.what}${sums ? ' + bias grad' : ''}`;
  const out = [
    gpu.kernel({
      shader: 'conv2d_backward_weights_lanes',
      params: p,
      constants: { ...t.constants, ...o.constants, SUMS: sums },
      bindings: [io.dy, io.x, parts ?? io.dw, (parts ? null : io.db) ?? gpu.dummy],
      workgroups: [...grid(t.tiles), t.splits],
      label: `conv2d backward weights ${what}${t.splits > 1 ? ` split ${t.splits}` : ''}`,
      work: laneGemm({ ...lane, steps: Math.min(t.chunk, o.positions) }, gpu.lanes),
    }),
  ];
  if (parts) {
    const reduce = { shader: 'conv2d_backward_weights' as const, params: p, constants: { GEMM_SUMS: sums }, len };
    const label = `conv2d backward weights reduce ${what} ${t.splits} splits`;
    const bindings = [parts, null, io.dw, io.db ?? gpu.dummy];
    out.push(reduceSplits(gpu, { ...reduce, bindings, splits: t.splits, label }));
  }
  return out;
}
