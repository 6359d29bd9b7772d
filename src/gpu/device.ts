// Opening a device from any `GPU` object: navigator.gpu in a page, Dawn's under Node (src/node/gpu.ts).
import { GpuError } from '../errors.ts';
import { Gpu, type AdapterReport } from './runtime.ts';

export interface OpenOptions {
  powerPreference?: GPUPowerPreference;
  /** Ask for a fallback (software) adapter. */
  forceFallback?: boolean;
}

export const NO_ADAPTER_HELP =
  'no WebGPU adapter found. On Linux install the Vulkan loader and a Vulkan driver ' +
  '(for a CPU-only machine: apt-get install libvulkan1 and, from bookworm-backports, mesa-vulkan-drivers); ' +
  'in a browser use a recent Chrome or Edge, or enable WebGPU in its flags';

const CPU_ADAPTERS = /llvmpipe|lavapipe|swiftshader|warp|software|basic render/i;

export function describeAdapter(adapter: GPUAdapter): AdapterReport {
  const info = adapter.info;
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  const fallback = (info as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  const { subgroupMinSize: min, subgroupMaxSize: max } = info as { subgroupMinSize?: number; subgroupMaxSize?: number };
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    cpu: fallback || CPU_ADAPTERS.test(text),
    subgroupSize: min !== undefined && min > 0 && min === max ? min : null,
  };
}

/** A one-line name for logs: "llvmpipe: Mesa 25.0.7 (CPU fallback)". */
export function adapterName(a: AdapterReport): string {
  const name = a.description || [a.vendor, a.architecture, a.device].filter(Boolean).join(' ') || 'unknown adapter';
  return a.cpu ? `${name} (CPU fallback)` : name;
}

export async function openGpu(gpu: GPU, options: OpenOptions = {}): Promise<Gpu> {
  const adapter = await gpu.requestAdapter({
    powerPreference: options.powerPreference ?? 'high-performance',
    forceFallbackAdapter: options.forceFallback ?? false,
  });
  if (!adapter) throw new GpuError(NO_ADAPTER_HELP);
  // Ask for what the adapter really has, not WebGPU's conservative defaults.
  const want: (keyof GPUSupportedLimits)[] = [
    'maxBufferSize',
    'maxStorageBufferBindingSize',
    'maxComputeWorkgroupStorageSize',
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX',
    'maxComputeWorkgroupSizeY',
    'maxComputeWorkgroupsPerDimension',
    'maxStorageBuffersPerShaderStage',
  ];
  const requiredLimits: Record<string, number> = {};
  for (const k of want) requiredLimits[k] = adapter.limits[k] as number;
  const requiredFeatures: GPUFeatureName[] = [];
  for (const f of ['subgroups', 'timestamp-query'] as GPUFeatureName[])
    if (adapter.features.has(f)) requiredFeatures.push(f);
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'fmgpu' });
  } catch (e) {
    throw new GpuError(`the WebGPU adapter refused a device: ${(e as Error).message}`);
  }
  return new Gpu(device, describeAdapter(adapter), gpu);
}
