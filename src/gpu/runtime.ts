// The backend contract: allocate, write, read, dispatch, release. Everything GPU-side in the engine
// goes through a Gpu; nothing here imports node:*. Beside it: the pipeline cache (pipelines.ts),
// uniforms packed by name (uniforms.ts), error and loss reporting (health.ts).
import { GpuError } from '../errors.ts';
import { DeviceHealth } from './health.ts';
import { PipelineCache, type Composed } from './pipelines.ts';
import type { ShaderName } from './shaders.ts';
import { packUniform, type Uniform } from './uniforms.ts';
import type { Work } from './work.ts';
import { lanesFor, tuningOf, type GpuTuning } from './tuning.ts';

export type { Param, Uniform } from './uniforms.ts';
export type { Work } from './work.ts';

/** What a kernel binds: a whole buffer or a byte range of one. */
export type BufferRef = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

/** One recorded compute dispatch: created once at plan time, replayed every step. */
export interface Dispatch {
  readonly label: string;
  readonly pipeline: GPUComputePipeline;
  readonly bindGroup: GPUBindGroup;
  readonly workgroups: readonly [number, number, number];
  /** Its uniform buffers (a pair's two) and any other buffer it owns (KernelSpec.owns), released with Gpu.free. */
  readonly params: readonly GPUBuffer[];
  /** What it computes and moves, as its launcher describes it (work.ts): what the cost model reads. */
  readonly work: Work;
  /** What Gpu.kernel made it of, by binding number (the uniform first): what pairing it needs (pair.ts). */
  readonly source?: {
    shader: ShaderName;
    entry: string;
    constants: Record<string, number>;
    bound: (BufferRef | null)[];
  };
}

export interface KernelSpec {
  shader: ShaderName;
  entry?: string;
  /**
   * WGSL `override` constants: variant flags and tile sizes only. Every distinct set is its own
   * pipeline, and a pipeline costs seconds to compile on a CPU adapter, so shapes go in `params`. (One
   * exception, on the GPU tiles only: a GEMM's inner dimension where it is under 16, GEMM_KK, gemm.ts.)
   */
  constants?: Record<string, number>;
  /** Shapes and scalars by the field names of the entry point's uniform struct (uniforms.ts), at binding 0. */
  params?: Uniform;
  /**
   * Storage bindings of @group(0) in binding order (after the uniform, if any); exactly those the
   * entry point uses, with null for a binding number it does not use (entry points of one shader
   * that share some variables: the split-K reductions of lib/gemm.wgsl).
   */
  bindings: (BufferRef | null)[];
  /** Buffers among `bindings` the dispatch owns, released with it (a gathering conv's copy of the gather settings). */
  owns?: GPUBuffer[];
  workgroups: number | readonly [number, number?, number?];
  label?: string;
  /** Its work, described beside the dispatch (work.ts); every launcher gives one (test/cost.test.ts). */
  work: Work;
}

export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A software rasterizer (lavapipe, SwiftShader, WARP): correct, slow. */
  cpu: boolean;
  /** The subgroup size when the adapter has exactly one (min = max), else null. */
  subgroupSize: number | null;
}

export { DEFAULT_GPU_UNITS, lanesFor, type GpuTuning } from './tuning.ts';

export interface GpuOptions {
  /** Overrides of the adapter's own tuning (tests and benchmarks run the other variants). */
  tuning?: Partial<GpuTuning>;
  /** Make a view of this Gpu: same device, memory accounting, error reporting and pipeline cache. */
  shareWith?: Gpu;
}

/** Everything mutable a Gpu has, shared by the tuned views of one device. */
interface Shared {
  health: DeviceHealth;
  pipelines: PipelineCache;
  memory: { live: number; peak: number; readonly sizes: WeakMap<GPUBuffer, number> };
  dummies: GPUBuffer[];
  /** The GPU object the device came from: Dawn frees its instance (and crashes the device) once it is garbage. */
  readonly instance: GPU | null;
}

export class Gpu implements Readonly<GpuTuning> {
  readonly device: GPUDevice;
  readonly adapter: AdapterReport;
  readonly limits: GPUSupportedLimits;
  readonly hasSubgroups: boolean;
  readonly hasTimestamps: boolean;
  // The tuning (GpuTuning's fields), set from tuningOf in the constructor.
  readonly gemmSide!: 8 | 16;
  readonly lanes!: number;
  readonly units!: number;
  readonly spreadLimit!: number;
  readonly treeThreads!: number;
  readonly winograd!: boolean;
  private readonly shared: Shared;

  constructor(device: GPUDevice, adapter: AdapterReport, instance: GPU | null = null, options: GpuOptions = {}) {
    this.device = device;
    this.adapter = adapter;
    this.limits = device.limits;
    this.hasSubgroups = device.features.has('subgroups');
    this.hasTimestamps = device.features.has('timestamp-query');
    this.shared = options.shareWith?.shared ?? {
      health: new DeviceHealth(device),
      pipelines: new PipelineCache(device),
      memory: { live: 0, peak: 0, sizes: new WeakMap() },
      dummies: [],
      instance,
    };
    Object.assign(this, tuningOf(adapter.cpu, this.usableLanes, options.tuning));
  }

  /** The GPU object the device came from: whoever wraps the device in another Gpu must keep it alive. */
  get instance(): GPU | null {
    return this.shared.instance;
  }

  /** This device with other tuning: shares memory, errors and the pipeline cache (keyed by constants). */
  withTuning(tuning: Partial<GpuTuning>): Gpu {
    const { gemmSide, lanes, units, spreadLimit, treeThreads, winograd } = this;
    const t = { gemmSide, lanes, units, spreadLimit, treeThreads, winograd, ...tuning };
    return new Gpu(this.device, this.adapter, null, { tuning: t, shareWith: this });
  }

  /** The lanes the subgroup-lane kernels could run with on this device (lanesFor), 0 without subgroups. */
  get usableLanes(): number {
    return this.hasSubgroups ? lanesFor(this.adapter.subgroupSize) : 0;
  }

  /** Whether the device was lost (not released by destroy()). */
  get lost(): boolean {
    return this.shared.health.lost;
  }

  /** Bytes held by buffers allocated here and not yet released. */
  get liveBytes(): number {
    return this.shared.memory.live;
  }
  get peakBytes(): number {
    return this.shared.memory.peak;
  }

  alloc(
    bytes: number,
    label = 'buffer',
    usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  ): GPUBuffer {
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    if (size > this.limits.maxBufferSize) {
      throw new GpuError(
        `buffer "${label}" needs ${size} bytes but the adapter allows at most ${this.limits.maxBufferSize}`,
      );
    }
    const m = this.shared.memory;
    const buffer = this.shared.health.allocating(label, size, m.live, () =>
      this.device.createBuffer({ size, usage, label }),
    );
    m.sizes.set(buffer, size);
    m.live += size;
    m.peak = Math.max(m.peak, m.live);
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    const m = this.shared.memory;
    const size = m.sizes.get(buffer);
    if (size === undefined) return;
    m.sizes.delete(buffer);
    m.live -= size;
    buffer.destroy();
  }

  /** A 16-byte buffer for bindings a kernel declares but a variant does not read (no bias). Not counted as live. */
  get dummy(): GPUBuffer {
    return this.dummyAt(0);
  }

  /** Another dummy, for a second unused writable binding (WebGPU refuses two on one buffer). */
  get dummy2(): GPUBuffer {
    return this.dummyAt(1);
  }

  /** The i-th dummy (a pair's second half takes others than its first's: pair.ts); -1 for a non-dummy. */
  dummyAt(i: number): GPUBuffer {
    const d = this.shared.dummies;
    while (d.length <= i)
      d.push(this.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE, label: `dummy ${d.length}` }));
    return d[i] as GPUBuffer;
  }
  dummyIndex(b: GPUBuffer): number {
    return this.shared.dummies.indexOf(b);
  }

  /**
   * Entry `entry`'s uniform record packed into a storage buffer: another kernel binds a pass's settings
   * as storage and keeps its own uniform (a first conv gathering its batch: lib/conv_in_gather.wgsl).
   */
  uniformAsStorage(shader: ShaderName, entry: string, params: Uniform, label: string): GPUBuffer {
    const layout = this.shared.pipelines.uniform(shader, entry);
    if (!layout) throw new GpuError(`${shader}.${entry} reads no uniform`);
    return this.upload(new Uint8Array(packUniform(layout, params, `${shader}.${entry}`)), label);
  }

  /** A new storage buffer holding `data`. */
  upload(data: ArrayBufferView, label = 'upload'): GPUBuffer {
    const buffer = this.alloc(data.byteLength, label);
    this.write(buffer, data);
    return buffer;
  }

  write(buffer: GPUBuffer, data: ArrayBufferView, byteOffset = 0): void {
    // writeBuffer needs a multiple of 4 bytes.
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength % 4 === 0) this.device.queue.writeBuffer(buffer, byteOffset, bytes);
    else {
      const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      padded.set(bytes);
      this.device.queue.writeBuffer(buffer, byteOffset, padded);
    }
  }

  /** Copies `bytes` from `buffer` back to the CPU once the queued work is done. */
  async read(buffer: GPUBuffer, bytes = buffer.size, byteOffset = 0): Promise<ArrayBuffer> {
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      label: 'readback',
    });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(buffer, byteOffset, staging, 0, size);
    this.device.queue.submit([enc.finish()]);
    try {
      await this.mapRead(staging, buffer.label);
    } catch (e) {
      staging.destroy();
      throw e;
    }
    const out = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    staging.destroy();
    return out;
  }

  /**
   * Maps a MAP_READ buffer once the queued work is done, raced against device loss; then throws
   * what went wrong meanwhile (check()). `what` names the data in the error of a failed map.
   */
  async mapRead(staging: GPUBuffer, what: string): Promise<void> {
    const health = this.shared.health;
    try {
      await health.untilLost(staging.mapAsync(GPUMapMode.READ));
    } catch (e) {
      // A map that fails as the device goes may fail before the loss is reported: give the loss a
      // moment to arrive, so that the error names it rather than the map.
      await health.settle();
      await health.check();
      throw e instanceof GpuError ? e : new GpuError(`reading buffer "${what}" back failed: ${(e as Error).message}`);
    }
    try {
      await health.check();
    } catch (e) {
      staging.unmap();
      throw e;
    }
  }

  async readF32(buffer: GPUBuffer, count?: number, offset = 0): Promise<Float32Array> {
    return new Float32Array(await this.read(buffer, (count ?? buffer.size / 4) * 4, offset * 4));
  }
  async readU32(buffer: GPUBuffer, count?: number, offset = 0): Promise<Uint32Array> {
    return new Uint32Array(await this.read(buffer, (count ?? buffer.size / 4) * 4, offset * 4));
  }

  /** Throws what went wrong since the last check (health.ts): a lost device, then out of memory, then validation. */
  check(): Promise<void> {
    return this.shared.health.check();
  }

  /** Workgroups of 64 threads for a grid-stride kernel over `count` elements (lib/stride.wgsl). */
  spread(count: number): [number, number] {
    return grid(Math.max(1, Math.min(ceilDiv(count, 64), this.spreadLimit)));
  }

  /** A compute pipeline, cached by shader (or a composed module's name and code: pair.ts), entry, constants. */
  pipeline(shader: ShaderName | Composed, entry = 'main', constants: Record<string, number> = {}): GPUComputePipeline {
    return this.shared.pipelines.pipeline(shader, entry, constants);
  }

  get pipelineCount(): number {
    return this.shared.pipelines.size;
  }

  kernel(spec: KernelSpec): Dispatch {
    const entry = spec.entry ?? 'main';
    const label = spec.label ?? `${spec.shader}.${entry}`;
    const layout = this.shared.pipelines.uniform(spec.shader, entry);
    if ((layout === null) !== (spec.params === undefined))
      throw new GpuError(`kernel ${label}: ${layout ? `needs its uniform ${layout.struct}` : 'reads no uniform'}`);
    const params: GPUBuffer[] = [];
    if (layout && spec.params) {
      const data = packUniform(layout, spec.params, `${spec.shader}.${entry}`);
      params.push(this.alloc(data.byteLength, `${label} params`, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST));
      this.device.queue.writeBuffer(params[0] as GPUBuffer, 0, data);
    }
    const bound = [...params, ...spec.bindings];
    params.push(...(spec.owns ?? []));
    const w = typeof spec.workgroups === 'number' ? [spec.workgroups] : spec.workgroups;
    const workgroups = [w[0] ?? 1, w[1] ?? 1, w[2] ?? 1] as const;
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (workgroups.some((n) => n > max)) {
      throw new GpuError(
        `kernel ${label} needs ${workgroups.join('x')} workgroups but the adapter allows ${max} per dimension`,
      );
    }
    const source = { shader: spec.shader, entry, constants: spec.constants ?? {}, bound };
    // Compiled when first recorded: a kernel the planner pairs with another (pair.ts) never is on its own.
    let made: { pipeline: GPUComputePipeline; bindGroup: GPUBindGroup } | null = null;
    const make = () => {
      if (made) return made;
      const pipeline = this.pipeline(spec.shader, entry, spec.constants);
      made = { pipeline, bindGroup: this.bindGroup(pipeline, bound, label) };
      return made;
    };
    return {
      ...{ label, workgroups, params, work: spec.work, source },
      get pipeline() {
        return make().pipeline;
      },
      get bindGroup() {
        return make().bindGroup;
      },
    };
  }

  /** A bind group of `bound[i]` at binding i (null: a binding the entry point does not use). */
  bindGroup(pipeline: GPUComputePipeline, bound: readonly (BufferRef | null)[], label: string): GPUBindGroup {
    const entries = bound.flatMap((b, i) => (b ? [{ binding: i, resource: 'buffer' in b ? b : { buffer: b } }] : []));
    return this.device.createBindGroup({ label, layout: pipeline.getBindGroupLayout(0), entries });
  }

  /** Releases what dispatches own (their uniform buffers). */
  free(dispatches: readonly Dispatch[]): void {
    for (const d of dispatches) for (const p of d.params) this.release(p);
  }

  /** Records dispatches into an open compute pass. */
  encode(pass: GPUComputePassEncoder, dispatches: readonly Dispatch[]): void {
    for (const d of dispatches) {
      if (d.workgroups[0] === 0 || d.workgroups[1] === 0 || d.workgroups[2] === 0) continue;
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
    }
  }

  /** One command buffer, one compute pass, one submit. */
  run(dispatches: readonly Dispatch[]): void {
    const enc = this.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    this.encode(pass, dispatches);
    pass.end();
    this.device.queue.submit([enc.finish()]);
  }

  /** Resolves when every submitted command has finished; throws any GPU error seen. */
  async sync(): Promise<void> {
    await this.shared.health.untilLost(this.device.queue.onSubmittedWorkDone());
    await this.check();
  }

  destroy(): void {
    this.shared.health.closing = true;
    this.shared.pipelines.clear();
    this.device.destroy();
  }
}

/** Splits a 1-D workgroup count into a 2-D grid that respects the per-dimension limit. */
export function grid(workgroups: number, max = 65535): [number, number] {
  if (workgroups <= max) return [workgroups, 1];
  const y = Math.ceil(workgroups / max);
  return [Math.ceil(workgroups / y), y];
}

export const ceilDiv = (a: number, b: number): number => Math.floor((a + b - 1) / b);
