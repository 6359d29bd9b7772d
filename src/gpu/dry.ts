// A Gpu over a stand-in device that stores, compiles and runs nothing: for planning a step's
// dispatches, with their work descriptions, where no GPU is at hand (bench/cost.ts; `fmgpu summary
// --cost`). It reports a GPU adapter, so the Gpu tunes itself as on one (GEMM tiles up to 16×16
// threads, no lane kernels, one thread per element; the units the caller says, the profile's) and
// the plan is the one a GPU runs. Uniforms are still packed
// and checked against the shaders. Nothing can be read back. Needs the WebGPU globals
// (GPUBufferUsage): a browser has them; under Node, src/node/gpu.ts installGlobals() first.
import { GpuError } from '../errors.ts';
import { Gpu, type AdapterReport } from './runtime.ts';
import { DEFAULT_SHARED } from './work.ts';

/**
 * What the stand-in is told of the device it stands for: the limits a plan is checked against (the
 * WebGPU defaults unless a device profile says more) and, optionally, its compute units, which the
 * GEMM tiles and splits are chosen to fill (GpuTuning.units; the GPU default when unsaid).
 */
export type DryLimits = Pick<
  GPUSupportedLimits,
  | 'maxBufferSize'
  | 'maxStorageBufferBindingSize'
  | 'maxComputeWorkgroupsPerDimension'
  | 'maxStorageBuffersPerShaderStage'
  | 'maxUniformBuffersPerShaderStage'
  | 'maxComputeWorkgroupStorageSize'
> & { units?: number; winograd?: boolean };

const DEFAULT_LIMITS: DryLimits = {
  maxBufferSize: 268435456,
  maxStorageBufferBindingSize: 134217728,
  maxComputeWorkgroupsPerDimension: 65535,
  maxStorageBuffersPerShaderStage: 8,
  maxUniformBuffersPerShaderStage: 12,
  maxComputeWorkgroupStorageSize: DEFAULT_SHARED,
};

const nothing = (): void => undefined;

function standInBuffer(d: GPUBufferDescriptor): GPUBuffer {
  const refuse = (): never => {
    throw new GpuError('a planning stand-in device holds no data: nothing can be read back');
  };
  return {
    size: d.size,
    usage: d.usage,
    label: d.label ?? '',
    mapState: 'unmapped',
    destroy: nothing,
    mapAsync: () => Promise.reject(new GpuError('a planning stand-in device holds no data')),
    getMappedRange: refuse,
    unmap: nothing,
  } as unknown as GPUBuffer;
}

function standInEncoder(): GPUCommandEncoder {
  const pass = { setPipeline: nothing, setBindGroup: nothing, dispatchWorkgroups: nothing, end: nothing };
  return {
    beginComputePass: () => pass,
    copyBufferToBuffer: nothing,
    finish: () => ({}),
  } as unknown as GPUCommandEncoder;
}

/** A GPUDevice with just what a Gpu and the planner call, doing nothing. */
function standInDevice(limits: DryLimits): GPUDevice {
  return {
    limits: { ...DEFAULT_LIMITS, ...limits },
    features: new Set<string>(),
    lost: new Promise<never>(nothing),
    addEventListener: nothing,
    pushErrorScope: nothing,
    popErrorScope: () => Promise.resolve(null),
    createBuffer: standInBuffer,
    createShaderModule: () => ({}),
    createComputePipeline: () => ({ getBindGroupLayout: () => ({}) }),
    createBindGroup: () => ({}),
    createCommandEncoder: standInEncoder,
    queue: { writeBuffer: nothing, submit: nothing, onSubmittedWorkDone: () => Promise.resolve() },
    destroy: nothing,
  } as unknown as GPUDevice;
}

export const DRY_ADAPTER: AdapterReport = {
  vendor: '',
  architecture: '',
  device: '',
  description: 'planning stand-in (no GPU)',
  cpu: false,
  subgroupSize: null,
};

/** A Gpu that plans as a GPU adapter (of `units` compute units, when given) would and runs nothing. */
export function dryGpu(limits: Partial<DryLimits> = {}): Gpu {
  const { units, winograd, ...rest } = limits;
  const tuning = {
    tuning: { ...(units === undefined ? {} : { units }), ...(winograd === undefined ? {} : { winograd }) },
  };
  return new Gpu(standInDevice({ ...DEFAULT_LIMITS, ...rest }), DRY_ADAPTER, null, tuning);
}
