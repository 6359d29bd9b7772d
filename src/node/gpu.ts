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

/**
 * Dawn's instances, one per set of flags, kept for the life of the process. Dawn tears a collected
 * instance down under its destroyed devices' driver threads: opening, destroying and dropping devices
 * in a loop ended in a bus error, an abort in pthread_mutex_lock or a hang within a few dozen rounds on
 * lavapipe, and never with the instance kept. A browser likewise has one navigator.gpu.
 */
const instances = new Map<string, GPU>();

export async function openNodeGpu(options: NodeGpuOptions = {}): Promise<Gpu> {
  installGlobals();
  const flags: string[] = [];
  if (options.backend) flags.push(`backend=${options.backend}`);
  if (options.adapter) flags.push(`adapter=${options.adapter}`);
  flags.push(...(options.dawnFlags ?? []));
  const key = flags.join('\n');
  const instance = instances.get(key) ?? create(flags);
  instances.set(key, instance);
  return openGpu(instance, options);
}
