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
