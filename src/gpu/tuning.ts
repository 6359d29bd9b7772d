// How the GEMM-shaped and grid-stride kernels are sized on an adapter (a Gpu's tuning), and the
// subgroup lanes the lane kernels use: re-exported by runtime.ts.
/**
 * Lanes the subgroup-lane kernels use with this subgroup size: 4 (Chromium's SwiftShader) or 8
 * (lavapipe), the sizes the kernel tests run here; else 0 (the tiled kernels).
 */
export function lanesFor(subgroupSize: number | null): number {
  return subgroupSize === 4 || subgroupSize === 8 ? subgroupSize : 0;
}

/** How the GEMM-shaped and grid-stride kernels are sized on this adapter: fixed when a Gpu is made. */
export interface GpuTuning {
  /**
   * At most this many threads per side of a tiled GEMM's workgroup (shaders/lib/gemm.wgsl, tiles from
   * src/ops/gemm.ts), so the largest tile is (8·side)² at 8×8 per thread: 8 on a CPU adapter (64×64;
   * it runs the tiled kernels only without usable subgroups, see `lanes`), 16 on a GPU (128×128).
   */
  gemmSide: 8 | 16;
  /**
   * Lanes of the subgroup-lane GEMM kernels (matmul, conv; shaders/lib/lanes.wgsl), 0 when the
   * tiled kernels run instead: the subgroup size on a CPU adapter whose subgroups have one size, 4
   * or 8 (lavapipe: 8, where they measured 2–8× faster than the 8×8 tiles), 0 on GPUs.
   */
  lanes: number;
  /**
   * Compute units (SMs, CUs) a GEMM's tile and split-K fill with two workgroups each (src/ops/gemm.ts).
   * WebGPU does not report it and nothing guesses it from a device name: the Gpu's opener says it
   * (`tuning: { units }`; the cost tool passes its device profile's to src/gpu/dry.ts). Unsaid: 8 on a
   * CPU adapter (the lane kernels' split-K aims at 16 workgroups) and DEFAULT_GPU_UNITS on a GPU.
   */
  units: number;
  /**
   * At most this many workgroups for a one-thread-per-element kernel (lib/stride.wgsl): unbounded
   * on GPUs; 256 on CPU adapters, where each workgroup then loops over many elements, because
   * lavapipe pays about a microsecond per workgroup (relu backward over 1.6M elements: 20 → 4 ms).
   */
  spreadLimit: number;
  /**
   * At most this many threads in a workgroup that reduces through a shared-memory tree (a power of two, at
   * most 256): a batch norm's slice passes (shaders/batchnorm.wgsl WG) and global average pooling's forward
   * (at most 64). 256 on a GPU; 16 on a CPU adapter, where each barrier of a tree costs in proportion to the
   * workgroup's threads (lavapipe: a 64×32×28×28 batch norm forward with relu 25 → 10 ms).
   */
  treeThreads: number;
  /**
   * Whether the tiled kernels may run a 3×3, stride-1 conv's forward by Winograd's F(2×2, 3×3) where
   * src/ops/conv2d_plan.ts winogradPlan's rule chooses it: true unless the opener says
   * (`tuning: { winograd: false }`; the cost tool's --no-winograd), to set the direct GEMM beside it.
   */
  winograd: boolean;
}

/**
 * The compute units assumed of a GPU adapter whose opener did not say (GpuTuning.units): between an
 * integrated GPU's 8–32 and a data-centre GPU's 132, so that neither is far from two workgroups per
 * unit; 132-class behaviour (an H100) takes `units: 132`.
 */
export const DEFAULT_GPU_UNITS = 64;

/** An adapter's tuning: what its opener says, else each field's default above for a CPU adapter or a GPU. */
export function tuningOf(cpu: boolean, usableLanes: number, t: Partial<GpuTuning> = {}): GpuTuning {
  const tree = t.treeThreads ?? (cpu ? 16 : 256);
  if (!Number.isInteger(tree) || tree < 1 || tree > 256 || (tree & (tree - 1)) !== 0)
    throw new RangeError(`tree reductions take a power of two from 1 to 256 threads, got ${tree}`);
  return {
    gemmSide: t.gemmSide ?? (cpu ? 8 : 16),
    lanes: t.lanes ?? (cpu ? usableLanes : 0),
    units: t.units ?? (cpu ? 8 : DEFAULT_GPU_UNITS),
    spreadLimit: t.spreadLimit ?? (cpu ? 256 : Infinity),
    treeThreads: tree,
    winograd: t.winograd ?? true,
  };
}
