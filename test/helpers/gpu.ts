// One GPU device per test file, opened before its tests and released after them.
import { afterAll, beforeAll, onTestFinished } from 'vitest';
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

/**
 * Sets the grid-stride kernels' workgroup cap (Gpu.spreadLimit, lib/stride.wgsl) from a test's name
 * and restores it after the test: "2-D grid" dispatches one thread per element (past 65,535
 * workgroups the grid is 2-D, as on a GPU, whatever the adapter); "one workgroup" makes a single
 * workgroup loop over every element. Other names keep the adapter's own cap.
 */
export function spreadFromName(g: Gpu, name: string): void {
  const limit = name.includes('2-D grid') ? Infinity : name.includes('one workgroup') ? 1 : null;
  if (limit === null) return;
  const old = g.spreadLimit;
  g.spreadLimit = limit;
  onTestFinished(() => {
    g.spreadLimit = old;
  });
}

/**
 * Which GEMM-shaped kernels (matmul, conv2d) a test runs: the adapter's own; the other family (the
 * tiled GPU kernels on a CPU adapter that runs the subgroup-lane ones, the lane kernels on an
 * adapter whose subgroups allow them); the tiled kernels with the other workgroup side (8×8
 * threads on CPU adapters, 16×16 on GPUs: shaders/lib/gemm.wgsl); or the lane kernels with 4 lanes,
 * the size of SwiftShader's subgroups (Chromium's CPU adapter), which an adapter with subgroups of
 * at least 4 runs as one partly filled subgroup.
 */
export type GemmVariant = 'own' | 'other family' | 'other side' | 'four lanes';

/** Switches `g` to `variant` for the current test and back after it; `skip` when the adapter cannot run it. */
export function useGemmVariant(g: Gpu, variant: GemmVariant, skip: (why: string) => void): void {
  const { gemmSide, lanes } = g;
  onTestFinished(() => {
    g.gemmSide = gemmSide;
    g.lanes = lanes;
  });
  if (variant === 'other side') {
    g.lanes = 0;
    g.gemmSide = gemmSide === 8 ? 16 : 8;
  } else if (variant === 'four lanes') {
    if (!g.hasSubgroups || (g.adapter.subgroupSize ?? 0) < 4)
      skip(`${g.adapter.description} has no subgroups of one size of at least 4 lanes`);
    g.lanes = 4;
  } else if (variant === 'other family') {
    const usable = g.usableLanes;
    if (lanes === 0 && usable === 0)
      skip(`${g.adapter.description} has no subgroups of one size 4, 8 or 16 for the lane kernels`);
    g.lanes = lanes > 0 ? 0 : usable;
  }
}
