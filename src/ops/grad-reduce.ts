// The weight gradients' split-K reductions of a training step, all in one pass (shaders/grad_reduce.wgsl):
// a weight-gradient GEMM that splits K can leave its partial sums unsummed (the planner's choice,
// src/graph/deferred.ts), and this pass sums every such layer's partials into dW and db at the end of
// the backward, in place of a reduce pass per layer. Its arithmetic is gemm.ts reduceSplits', so the
// gradients are the same bits either way. The update can run the same sums on its way instead
// (src/ops/optimizer.ts `sums`, from segmentTable): then this pass is not made.
import { ShapeError } from '../errors.ts';
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { ceilDiv, grid } from '../gpu/runtime.ts';
import { chainWork, f32Bytes, treeBarriers } from '../gpu/work.ts';
import { redThreads } from './gemm.ts';

/** Segments one dispatch takes: the shaders' tables hold 32 (3 vec4s each, 1.5 KB of uniform). */
export const SEGMENTS = 32;

/**
 * How a weight-gradient GEMM lays out its split-K partial sums: `splits` tiles of rows × cols, the
 * bias gradient (the GEMM's sums) none, in the last column (a conv: rows K, cols C·KH·KW + 1) or in
 * the last row (a dense layer: rows F + 1, cols U).
 */
export interface SplitLayout {
  splits: number;
  rows: number;
  cols: number;
  sums: 'none' | 'column' | 'row';
}

/** Floats of a layout's partial sums. */
export const splitLength = (l: SplitLayout): number => l.splits * l.rows * l.cols;

/** Floats a layout's sums write at its dW and at its db offsets (lib/grad_sums.wgsl gs_written). */
export function writtenLengths(l: SplitLayout): { dw: number; db: number } {
  if (l.sums === 'column') return { dw: l.rows * (l.cols - 1), db: l.rows };
  if (l.sums === 'row') return { dw: (l.rows - 1) * l.cols, db: l.cols };
  return { dw: l.rows * l.cols, db: 0 };
}

/** One layer's partials (at `parts`, in floats, into io.parts) and where its dW and db go (floats into io.grads). */
export interface GradSegment {
  layout: SplitLayout;
  parts: number;
  dw: number;
  db: number;
  label: string;
}

const SUMS = { none: 0, column: 1, row: 2 } as const;

/**
 * Sums each segment's partials in a fixed order into io.grads (the gradient buffer, bound whole): one
 * dispatch per SEGMENTS segments.
 */
export function reduceGradients(
  gpu: Gpu,
  io: { parts: BufferRef; grads: GPUBuffer },
  segments: readonly GradSegment[],
): Dispatch[] {
  const out: Dispatch[] = [];
  for (let i = 0; i < segments.length; i += SEGMENTS) out.push(reducePass(gpu, io, segments.slice(i, i + SEGMENTS)));
  return out;
}

/**
 * The segment table of lib/grad_sums.wgsl for up to SEGMENTS segments (checked), with the workgroups their
 * sums take (256 threads each) and what the cost model needs of them.
 */
export function segmentTable(segments: readonly GradSegment[]) {
  if (segments.length > SEGMENTS) throw new ShapeError(`a pass sums ${SEGMENTS} segments, got ${segments.length}`);
  const table: number[] = [];
  let groups = 0;
  let depth = 0;
  let barriers = 0;
  let flops = 0;
  for (const s of segments) {
    const { splits, rows, cols, sums } = s.layout;
    const len = rows * cols;
    if (splits < 2 || len < 1) throw new ShapeError(`${s.label}: a deferred reduction needs at least 2 splits`);
    const redY = redThreads(splits);
    const n = writtenLengths(s.layout);
    table.push(groups, len, splits, s.parts, redY, cols, SUMS[sums], rows, s.dw, s.db, n.dw, n.db);
    groups += ceilDiv(len, 256 / redY);
    depth = Math.max(depth, ceilDiv(splits, redY));
    barriers = Math.max(barriers, redY > 1 ? treeBarriers(redY) : 0);
    flops += splits * len;
  }
  const outputs = segments.reduce((a, s) => a + s.layout.rows * s.layout.cols, 0);
  const list = `${segments.map((s) => `${s.label} ${s.layout.splits}`).join(', ')} splits`;
  return { table, groups, depth, barriers, flops, outputs, list };
}

function reducePass(gpu: Gpu, io: { parts: BufferRef; grads: GPUBuffer }, segments: readonly GradSegment[]): Dispatch {
  const t = segmentTable(segments);
  return gpu.kernel({
    shader: 'grad_reduce',
    params: { count: segments.length, seg: t.table },
    bindings: [io.parts, io.grads],
    workgroups: grid(t.groups),
    label: `weight gradients reduce: ${t.list}`,
    work: chainWork({
      flops: t.flops,
      bytesRead: f32Bytes(t.flops),
      bytesWritten: f32Bytes(t.outputs),
      threads: 256,
      depth: t.depth,
      barriers: t.barriers,
      sharedBytes: 1024,
    }),
  });
}
