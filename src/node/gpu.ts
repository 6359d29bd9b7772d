// Node entry to WebGPU: Dawn's bindings (npm `webgpu`). Installs Dawn's globals (GPUBufferUsage, …),
// which the engine reads, then opens a device. Release with gpu.destroy() so the process can exit.
import { create, globals } from 'webgpu';
import { openGpu, type OpenOptions } from '../gpu/device.ts';
import type { Gpu } from '../gpu/runtime.ts';

export interface NodeGpuOptions extends OpenOptions {
  /** Dawn backend: vulkan, metal, d3d12, … (default: Dawn's choice). */
  backend?: string;
  /** Substring of the adapter name to pick, e.g. "llvmpipe" or "NVIDIA". */
  adapter?: string;
  /** Extra Dawn instance flags, e.g. 'disable-dawn-features=timestamp_quantization' (benchmarks). */
  dawnFlags?: string[];
}

let installed = false;

export function installGlobals(): void {
  if (installed) return;
  Object.assign(globalThis, globals);
  installed = true;
}

export async function openNodeGpu(options: NodeGpuOptions = {}): Promise<Gpu> {
  installGlobals();
  const flags: string[] = [];
  if (options.backend) flags.push(`backend=${options.backend}`);
  if (options.adapter) flags.push(`adapter=${options.adapter}`);
  flags.push(...(options.dawnFlags ?? []));
  return openGpu(create(flags), options);
}
