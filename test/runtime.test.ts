// The Gpu's tuning is fixed when it is made; other variants are views over the same device that
// share its memory accounting, error reporting and pipeline cache.
import { describe, expect, it } from 'vitest';
import { useGpu } from './helpers/gpu.ts';
import { fill } from '../src/ops/elementwise.ts';
import { matmul } from '../src/ops/matmul.ts';
import type { KernelSpec } from '../src/gpu/runtime.ts';
import { streamWork } from '../src/gpu/work.ts';

describe('Gpu tuning and views', () => {
  const gpu = useGpu();

  it("defaults to the adapter's own tuning", () => {
    const g = gpu();
    expect(g.gemmSide).toBe(g.adapter.cpu ? 8 : 16);
    expect(g.lanes).toBe(g.adapter.cpu ? g.usableLanes : 0);
    expect(g.spreadLimit).toBe(g.adapter.cpu ? 256 : Infinity);
    expect(g.treeThreads).toBe(g.adapter.cpu ? 16 : 256);
  });

  it('refuses tree reductions of threads not a power of two from 1 to 256', () => {
    const g = gpu();
    for (const threads of [0, 24, 512]) {
      expect(() => g.withTuning({ treeThreads: threads }), `${threads}`).toThrow(/power of two/);
    }
  });

  it('a view changes only what it is given and shares memory, pipelines and the device', async () => {
    const g = gpu();
    const v = g.withTuning({ spreadLimit: 1 });
    expect([v.gemmSide, v.lanes, v.spreadLimit, v.treeThreads]).toEqual([g.gemmSide, g.lanes, 1, g.treeThreads]);
    expect(v.device).toBe(g.device);
    expect(v.dummy).toBe(g.dummy);
    const before = g.liveBytes;
    const b = v.alloc(1024, 'from the view');
    expect(g.liveBytes).toBe(before + 1024);
    const d = fill(v, { dst: b }, 256, 2);
    expect(d[0]!.workgroups).toEqual([1, 1, 1]); // one workgroup loops over every element
    const pipelines = g.pipelineCount;
    const again = fill(g, { dst: b }, 256, 3);
    expect(g.pipelineCount).toBe(pipelines); // same shader, entry and constants: the view's pipeline
    g.run([...d, ...again]);
    expect(Array.from(await g.readF32(b, 256))).toEqual(new Array(256).fill(3));
    g.free([...d, ...again]);
    g.release(b);
    expect(g.liveBytes).toBe(before);
  });

  it('views with other GEMM tiles get their own pipelines from the shared cache', () => {
    const g = gpu();
    const other = g.withTuning({ lanes: 0, gemmSide: g.gemmSide === 8 ? 16 : 8 });
    const before = g.pipelineCount;
    const d = matmul(other, { a: g.dummy, b: g.dummy, c: g.dummy }, { m: 1, n: 1, k: 1 });
    // A kernel compiles when first recorded (a kernel the planner pairs never is on its own: src/gpu/pair.ts).
    expect(g.pipelineCount).toBe(before);
    expect(d[0]?.pipeline).toBeDefined();
    expect(g.pipelineCount).toBe(before + 1);
    expect(other.pipelineCount).toBe(g.pipelineCount);
    g.free(d);
  });

  it('refuses a uniform record that does not match the shader, naming the field', () => {
    const g = gpu();
    const work = streamWork({ flops: 0, bytesRead: 0, bytesWritten: 4, perThread: 1 });
    const spec: KernelSpec = { shader: 'elementwise', entry: 'fill', bindings: [g.dummy], workgroups: 1, work };
    expect(() => g.kernel({ ...spec, params: { count: 1, value: { f32: 0 }, fromOutput: 0 } })).toThrow(
      'uniform Params of elementwise.fill is missing accumulate',
    );
    expect(() => g.kernel({ ...spec })).toThrow('kernel elementwise.fill: needs its uniform Params');
    expect(() =>
      g.kernel({ shader: 'optimizer', entry: 'advance_counter', bindings: [g.dummy], workgroups: 1, params: {}, work }),
    ).toThrow('reads no uniform');
  });
});
