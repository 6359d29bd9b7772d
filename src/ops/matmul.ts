// Matrix multiply with transposed variants, bias and activation fused into the write.
// Shapes and layout: shaders/matmul.wgsl.
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { ceilDiv } from '../gpu/runtime.ts';
import { actConstants, type Act } from './act.ts';

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

export function matmul(gpu: Gpu, io: { a: BufferRef; b: BufferRef; bias?: BufferRef; c: BufferRef }, s: MatmulShape): Dispatch {
  return gpu.kernel({
    shader: 'matmul',
    params: [s.m, s.n, s.k],
    constants: {
      GEMM_T: gpu.gemmSide,
      TRANS_A: s.transA ? 1 : 0,
      TRANS_B: s.transB ? 1 : 0,
      HAS_BIAS: io.bias ? 1 : 0,
      ACCUM: s.accumulate ? 1 : 0,
      ...actConstants(s.act),
    },
    bindings: [io.a, io.b, io.bias ?? gpu.dummy, io.c],
    workgroups: [ceilDiv(s.n, 64), ceilDiv(s.m, 64)],
    label: `matmul ${s.m}x${s.k}x${s.n}`,
  });
}
