// One GPU device per test file, opened before its tests and released after them.
import { afterAll, beforeAll } from 'vitest';
import { openNodeGpu } from '../../src/node/gpu.ts';
import type { Gpu } from '../../src/gpu/runtime.ts';

export function useGpu(): () => Gpu {
  let gpu: Gpu | undefined;
  beforeAll(async () => {
    gpu = await openNodeGpu();
  });
  afterAll(() => {
    gpu?.destroy();
  });
  return () => {
    if (!gpu) throw new Error('GPU not opened yet: call the getter inside a test');
    return gpu;
  };
}

/** Uploads float64 test data as f32. */
export function f32(x: ArrayLike<number>): Float32Array {
  return Float32Array.from(x as ArrayLike<number>);
}

/** The totals a softmax-xent stats buffer has accumulated: word 0 the loss sum (f32 bits), word 1 the correct count. */
export async function readStats(g: Gpu, stats: GPUBuffer): Promise<{ lossSum: number; correct: number }> {
  const words = await g.read(stats, 8);
  return { lossSum: new Float32Array(words)[0]!, correct: new Uint32Array(words)[1]! };
}

/**
 * The grid-stride kernels' workgroup cap (Gpu.spreadLimit, lib/stride.wgsl) a test's name asks for,
 * as a view of `g`: "2-D grid" dispatches one thread per element (past 65,535 workgroups the grid is
 * 2-D, as on a GPU, whatever the adapter); "one workgroup" makes a single workgroup loop over every
 * element. Other names get `g` itself, with the adapter's own cap.
 */
export function spreadFromName(g: Gpu, name: string): Gpu {
  const limit = name.includes('2-D grid') ? Infinity : name.includes('one workgroup') ? 1 : null;
  return limit === null ? g : g.withTuning({ spreadLimit: limit });
}

/**
 * Which GEMM-shaped kernels (matmul, conv2d) a test runs: the adapter's own; the other family (the
 * tiled GPU kernels on a CPU adapter that runs the subgroup-lane ones, the lane kernels on an
 * adapter whose subgroups allow them); the tiled kernels with the other largest workgroup side (8
 * threads on CPU adapters, 16 on GPUs: src/ops/gemm.ts); the tiled kernels as an H100 gets them
 * ("gpu tiles": side 16, 132 units, so the tiles and split-K of the cost model's plans); or the lane
 * kernels with 4 lanes, the size of SwiftShader's subgroups (Chromium's CPU adapter), which an
 * adapter with subgroups of at least 4 runs as one partly filled subgroup.
 */
export type GemmVariant = 'own' | 'other family' | 'other side' | 'gpu tiles' | 'four lanes';

/** `g` tuned to run `variant` (a view sharing its device and pipelines); `skip` when the adapter cannot run it. */
export function useGemmVariant(g: Gpu, variant: GemmVariant, skip: (why: string) => void): Gpu {
  if (variant === 'other side') return g.withTuning({ lanes: 0, gemmSide: g.gemmSide === 8 ? 16 : 8 });
  if (variant === 'gpu tiles') return g.withTuning({ lanes: 0, gemmSide: 16, units: 132 });
  if (variant === 'four lanes') {
    if (!g.hasSubgroups || (g.adapter.subgroupSize ?? 0) < 4)
      skip(`${g.adapter.description} has no subgroups of one size of at least 4 lanes`);
    return g.withTuning({ lanes: 4 });
  }
  if (variant === 'other family') {
    const usable = g.usableLanes;
    if (g.lanes === 0 && usable === 0)
      skip(`${g.adapter.description} has no subgroups of one size 4, 8 or 16 for the lane kernels`);
    return g.withTuning({ lanes: g.lanes > 0 ? 0 : usable });
  }
  return g;
}
