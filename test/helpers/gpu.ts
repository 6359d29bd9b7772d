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
