// Matrix multiply with transposed variants, bias and activation fused into the write.
// Shapes and layout: shaders/matmul.wgsl.
import type { Act } from '../../dsl/ir.ts';
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { ceilDiv } from '../gpu/runtime.ts';
import { f32Bytes, laneGemm, tiledGemm } from '../gpu/work.ts';
import { actConstants } from './act.ts';
import { laneConstants, laneTile } from './lanes.ts';

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
}

/** C (+)= act(op(A)·op(B) + bias): A [M,K], B [K,N] (or as transposed), bias [N], C [M,N]. One dispatch. */
export function matmul(
  gpu: Gpu,
  io: { a: BufferRef; b: BufferRef; bias?: BufferRef; c: BufferRef },
  s: MatmulShape,
): Dispatch[] {
  const variant = {
    TRANS_A: s.transA ? 1 : 0,
    TRANS_B: s.transB ? 1 : 0,
    HAS_BIAS: io.bias ? 1 : 0,
    ACCUM: s.accumulate ? 1 : 0,
    ...actConstants(s.act),
  };
  // CPU adapters: the subgroup-lane kernel (shaders/matmul_lanes.wgsl); GPUs: 64×64 tiles.
  const t = gpu.lanes > 0 ? laneTile(gpu.lanes, s.m, s.n) : null;
  const [bm, bn] = t ? [t.rowGroups * gpu.lanes, t.cols * gpu.lanes] : [64, 64];
  const tiles = {
    rows: s.m,
    cols: s.n,
    inner: s.k,
    tiles: ceilDiv(s.n, bn) * ceilDiv(s.m, bm),
    tileM: bm,
    tileN: bn,
    bytesRead: f32Bytes(s.m * s.k, s.k * s.n, io.bias ? s.n : 0, s.accumulate ? s.m * s.n : 0),
    bytesWritten: f32Bytes(s.m * s.n),
  };
  const work = t
    ? laneGemm({ ...tiles, steps: s.k }, gpu.lanes)
    : tiledGemm({ ...tiles, kSteps: ceilDiv(s.k, 16) }, gpu.gemmSide);
  return [
    gpu.kernel({
      shader: t ? 'matmul_lanes' : 'matmul',
      params: { m: s.m, n: s.n, k: s.k },
      constants: { ...(t ? laneConstants(gpu.lanes, t) : { GEMM_T: gpu.gemmSide }), ...variant },
      bindings: [io.a, io.b, io.bias ?? gpu.dummy, io.c],
      workgroups: [ceilDiv(s.n, bn), ceilDiv(s.m, bm)],
      label: `matmul ${s.m}x${s.k}x${s.n}`,
      work,
    }),
  ];
}
