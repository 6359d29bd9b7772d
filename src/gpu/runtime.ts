// The backend contract: allocate, write, read, dispatch, release, plus one pipeline cache.
// Everything GPU-side in the engine goes through a Gpu; nothing here imports node:*.
import { GpuError } from '../errors.ts';
import { shaderSource, type ShaderName } from './shaders.ts';

/** What a kernel binds: a whole buffer or a byte range of one. */
export type BufferRef = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

/** One recorded compute dispatch: created once at plan time, replayed every step. */
export interface Dispatch {
  readonly label: string;
  readonly pipeline: GPUComputePipeline;
  readonly bindGroup: GPUBindGroup;
  readonly workgroups: readonly [number, number, number];
  /** Its uniform buffer, released with Gpu.free. */
  readonly params: GPUBuffer | null;
}

/** A uniform value: a plain number is a u32; wrap floats and signed values. */
export type Param = number | { f32: number } | { i32: number };

function packParams(values: readonly Param[]): ArrayBuffer {
  const buf = new ArrayBuffer(Math.max(16, Math.ceil((values.length * 4) / 16) * 16));
  const view = new DataView(buf);
  values.forEach((v, i) => {
    if (typeof v === 'number') {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`uniform ${i} = ${v} is not a u32`);
      view.setUint32(i * 4, v, true);
    } else if ('f32' in v) view.setFloat32(i * 4, v.f32, true);
    else view.setInt32(i * 4, v.i32, true);
  });
  return buf;
}

export interface KernelSpec {
  shader: ShaderName;
  entry?: string;
  /**
   * WGSL `override` constants: variant flags and tile sizes only. Every distinct set is its own
   * pipeline, and a pipeline costs seconds to compile on a CPU adapter, so shapes go in `params`.
   */
  constants?: Record<string, number>;
  /** Shapes and scalars, in the order of the shader's `Params` struct, bound as a uniform at binding 0. */
  params?: readonly Param[];
  /** Storage bindings of @group(0) in binding order (after the uniform, if any); exactly those the entry point uses. */
  bindings: BufferRef[];
  workgroups: number | readonly [number, number?, number?];
  label?: string;
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

/**
 * Lanes the subgroup-lane kernels use with this subgroup size: 4 (Chromium's SwiftShader) or 8
 * (lavapipe), the sizes the kernel tests run here; else 0 (the tiled kernels).
 */
export function lanesFor(subgroupSize: number | null): number {
  return subgroupSize === 4 || subgroupSize === 8 ? subgroupSize : 0;
}

export class Gpu {
  readonly device: GPUDevice;
  readonly adapter: AdapterReport;
  readonly limits: GPUSupportedLimits;
  readonly hasSubgroups: boolean;
  readonly hasTimestamps: boolean;
  /**
   * Threads per side of a tiled GEMM-shaped kernel's workgroup (shaders/lib/gemm.wgsl): 8 on a CPU
   * adapter (measured faster on lavapipe; they run the tiled kernels only without usable subgroups,
   * see `lanes`), 16 on a GPU. Tests set it to run both variants.
   */
  gemmSide: 8 | 16;
  /**
   * Lanes of the subgroup-lane GEMM kernels (matmul, conv; shaders/lib/lanes.wgsl), 0 when the
   * tiled kernels run instead: the subgroup size on a CPU adapter whose subgroups have one size, 4
   * or 8 (lavapipe: 8, where they measured 2–8× faster than the 8×8 tiles), 0 on GPUs. Tests set it
   * to run both families.
   */
  lanes: number;
  /**
   * At most this many workgroups for a one-thread-per-element kernel (lib/stride.wgsl): unbounded
   * on GPUs; 256 on CPU adapters, where each workgroup then loops over many elements, because
   * lavapipe pays about a microsecond per workgroup (relu backward over 1.6M elements: 20 → 4 ms).
   */
  spreadLimit: number;
  private live = 0;
  private peak = 0;
  private readonly sizes = new WeakMap<GPUBuffer, number>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly errors: string[] = [];
  /** The first allocation the out-of-memory scope caught, explained; reported before the errors it causes. */
  private outOfMemory: string | null = null;
  /** Allocation scopes not yet popped: checks wait for them, so an out-of-memory error is never missed. */
  private scopes: Promise<void>[] = [];
  private lostReason: string | null = null;
  /** Rejects once the device is lost: raced against every wait on the GPU, so nothing hangs on a dead device. */
  private readonly lostSignal: Promise<never>;
  /** destroy() was called: the loss that follows is ours, not a fault. */
  private closing = false;
  private dummyBuffer: GPUBuffer | null = null;

  /** The GPU object the device came from: Dawn frees its instance (and crashes the device) once it is garbage. */
  // biome-ignore lint/correctness/noUnusedPrivateClassMembers: held, never read, so that it is not garbage
  private readonly instance: GPU | null;

  constructor(device: GPUDevice, adapter: AdapterReport, instance: GPU | null = null) {
    this.device = device;
    this.instance = instance;
    this.adapter = adapter;
    this.limits = device.limits;
    this.hasSubgroups = device.features.has('subgroups');
    this.hasTimestamps = device.features.has('timestamp-query');
    this.gemmSide = adapter.cpu ? 8 : 16;
    this.lanes = adapter.cpu ? this.usableLanes : 0;
    this.spreadLimit = adapter.cpu ? 256 : Infinity;
    device.addEventListener('uncapturederror', (e) => {
      this.errors.push((e as GPUUncapturedErrorEvent).error.message);
    });
    // Any loss we did not ask for is a fault: a driver reset, a removed GPU, or a destroy() from
    // elsewhere (tests simulate a loss that way).
    this.lostSignal = device.lost.then((info) => {
      if (!this.closing) this.lostReason = `${info.reason}${info.message ? `: ${info.message.split('\n')[0]}` : ''}`;
      throw new GpuError(this.closing ? 'the GPU device was released' : this.lostMessage());
    });
    this.lostSignal.catch(() => undefined); // observed by the races below, not an unhandled rejection
  }

  /** The lanes the subgroup-lane kernels could run with on this device (lanesFor), 0 without subgroups. */
  get usableLanes(): number {
    return this.hasSubgroups ? lanesFor(this.adapter.subgroupSize) : 0;
  }

  private lostMessage(): string {
    return `the GPU device was lost (${this.lostReason})`;
  }

  /** Whether the device was lost (not released by destroy()). */
  get lost(): boolean {
    return this.lostReason !== null;
  }

  /** `p`, unless the device is lost first: then a GpuError that says so. */
  private untilLost<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.lostSignal]);
  }

  /** Bytes held by buffers allocated here and not yet released. */
  get liveBytes(): number {
    return this.live;
  }
  get peakBytes(): number {
    return this.peak;
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
    // The out-of-memory scope is popped asynchronously; check() waits for it before reporting.
    this.device.pushErrorScope('out-of-memory');
    const buffer = this.device.createBuffer({ size, usage, label });
    const live = this.live;
    this.scopes.push(
      this.device.popErrorScope().then(
        (e) => {
          if (e && this.outOfMemory === null) this.outOfMemory = outOfMemoryMessage(label, size, live, e.message);
        },
        () => undefined, // the device is gone: the loss is reported instead
      ),
    );
    this.sizes.set(buffer, size);
    this.live += size;
    this.peak = Math.max(this.peak, this.live);
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    const size = this.sizes.get(buffer);
    if (size === undefined) return;
    this.sizes.delete(buffer);
    this.live -= size;
    buffer.destroy();
  }

  /** A 16-byte buffer for bindings a kernel declares but a variant does not read (e.g. no bias). Not counted as live. */
  get dummy(): GPUBuffer {
    this.dummyBuffer ??= this.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE, label: 'dummy' });
    return this.dummyBuffer;
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
      await this.untilLost(staging.mapAsync(GPUMapMode.READ));
    } catch (e) {
      staging.destroy();
      // A map that fails as the device goes may fail before the loss is reported: give the loss a
      // moment to arrive, so that the error names it rather than the map.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([this.lostSignal, new Promise((r) => (timer = setTimeout(r, 200)))]).catch(() => undefined);
      clearTimeout(timer);
      await this.check();
      throw e instanceof GpuError
        ? e
        : new GpuError(`reading buffer "${buffer.label}" back failed: ${(e as Error).message}`);
    }
    const out = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    staging.destroy();
    await this.check();
    return out;
  }

  async readF32(buffer: GPUBuffer, count?: number, offset = 0): Promise<Float32Array> {
    return new Float32Array(await this.read(buffer, (count ?? buffer.size / 4) * 4, offset * 4));
  }
  async readU32(buffer: GPUBuffer, count?: number, offset = 0): Promise<Uint32Array> {
    return new Uint32Array(await this.read(buffer, (count ?? buffer.size / 4) * 4, offset * 4));
  }

  /**
   * Throws what went wrong since the last check: a lost device first, then an allocation that ran
   * out of memory (the validation errors that follow from its invalid buffer say nothing useful),
   * then the first validation error.
   */
  async check(): Promise<void> {
    // A lost device may never answer its scopes: the loss is what gets reported then.
    while (this.scopes.length > 0) await this.untilLost(Promise.all(this.scopes.splice(0))).catch(() => undefined);
    if (this.lostReason !== null) throw new GpuError(this.lostMessage());
    if (this.outOfMemory !== null) {
      const message = this.outOfMemory;
      this.outOfMemory = null;
      this.errors.length = 0;
      throw new GpuError(message);
    }
    if (this.errors.length > 0) {
      const first = this.errors[0]!;
      this.errors.length = 0;
      throw new GpuError(`GPU error: ${first.split('\n')[0]}`);
    }
  }

  /** Workgroups of 64 threads for a grid-stride kernel over `count` elements (lib/stride.wgsl). */
  spread(count: number): [number, number] {
    return grid(Math.max(1, Math.min(ceilDiv(count, 64), this.spreadLimit)));
  }

  /** A compute pipeline, cached by shader, entry point and override constants. */
  pipeline(shader: ShaderName, entry = 'main', constants: Record<string, number> = {}): GPUComputePipeline {
    const keys = Object.keys(constants).sort();
    const key = `${shader}:${entry}:${keys.map((k) => `${k}=${constants[k]}`).join(',')}`;
    let p = this.pipelines.get(key);
    if (!p) {
      let module = this.modules.get(shader);
      if (!module) {
        module = this.device.createShaderModule({ code: shaderSource(shader), label: shader });
        this.modules.set(shader, module);
      }
      p = this.device.createComputePipeline({
        layout: 'auto',
        label: key,
        compute: { module, entryPoint: entry, constants },
      });
      this.pipelines.set(key, p);
    }
    return p;
  }

  get pipelineCount(): number {
    return this.pipelines.size;
  }

  kernel(spec: KernelSpec): Dispatch {
    const entry = spec.entry ?? 'main';
    const pipeline = this.pipeline(spec.shader, entry, spec.constants);
    const label = spec.label ?? `${spec.shader}.${entry}`;
    let params: GPUBuffer | null = null;
    const resources: BufferRef[] = [];
    if (spec.params) {
      const data = packParams(spec.params);
      params = this.alloc(data.byteLength, `${label} params`, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      this.device.queue.writeBuffer(params, 0, data);
      resources.push(params);
    }
    resources.push(...spec.bindings);
    const bindGroup = this.device.createBindGroup({
      label,
      layout: pipeline.getBindGroupLayout(0),
      entries: resources.map((b, i) => ({ binding: i, resource: 'buffer' in b ? b : { buffer: b } })),
    });
    const w = typeof spec.workgroups === 'number' ? [spec.workgroups] : spec.workgroups;
    const workgroups = [w[0] ?? 1, w[1] ?? 1, w[2] ?? 1] as const;
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (workgroups.some((n) => n > max)) {
      throw new GpuError(
        `kernel ${label} needs ${workgroups.join('x')} workgroups but the adapter allows ${max} per dimension`,
      );
    }
    return { label, pipeline, bindGroup, workgroups, params };
  }

  /** Releases what dispatches own (their uniform buffers). */
  free(dispatches: readonly Dispatch[]): void {
    for (const d of dispatches) if (d.params) this.release(d.params);
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
    await this.untilLost(this.device.queue.onSubmittedWorkDone());
    await this.check();
  }

  destroy(): void {
    this.closing = true;
    this.pipelines.clear();
    this.modules.clear();
    this.device.destroy();
  }
}

/** One line for an allocation the out-of-memory error scope caught. */
function outOfMemoryMessage(label: string, size: number, live: number, detail: string): string {
  const mb = (n: number): string => `${(n / 2 ** 20).toLocaleString('en-US', { maximumFractionDigits: 1 })} MiB`;
  const why = detail.split('\n')[0]!.trim();
  return `out of GPU memory: buffer "${label}" (${mb(size)}) could not be allocated with ${mb(live)} already in use${why ? ` (${why})` : ''}: use a smaller batch or a smaller model`;
}

/** Ops return one dispatch or several; callers that collect them want a list. */
export const dispatchList = (d: Dispatch | Dispatch[]): Dispatch[] => (Array.isArray(d) ? d : [d]);

/** Splits a 1-D workgroup count into a 2-D grid that respects the per-dimension limit. */
export function grid(workgroups: number, max = 65535): [number, number] {
  if (workgroups <= max) return [workgroups, 1];
  const y = Math.ceil(workgroups / max);
  return [Math.ceil(workgroups / y), y];
}

export const ceilDiv = (a: number, b: number): number => Math.floor((a + b - 1) / b);
