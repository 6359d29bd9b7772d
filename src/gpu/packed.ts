// Named tensors packed into few buffers. Each tensor starts at a byte offset that is a multiple of
// the adapter's minStorageBufferOffsetAlignment, so a kernel binds one tensor as a range of its pack
// (a BufferRef with offset and size); a new pack begins only where the next tensor would take a pack
// past the largest buffer a kernel can bind whole. The trainable parameters, their gradients, the
// optimizer's slots and the weight averages share one layout, so one dispatch per pack updates every
// element of every tensor: the padding between tensors is zero in each of those buffers (WebGPU
// zero-fills new buffers, nothing writes there) and every update keeps a zero zero.
import type { BufferRef, Gpu } from './runtime.ts';
import { mustAt } from '../util/must.ts';

export interface PackEntry {
  name: string;
  shape: readonly number[];
  /** Which pack (buffer) holds it. */
  pack: number;
  /** Bytes into the pack: a multiple of the alignment. */
  offset: number;
  /** f32 elements. */
  count: number;
}

export interface PackLayout {
  /** In the order given. */
  entries: readonly PackEntry[];
  /** Bytes of each pack: the end of its last tensor. */
  packBytes: readonly number[];
}

/** What a layout needs of an adapter: binding alignment, and the largest buffer a kernel can bind whole. */
export type PackLimits = Pick<
  GPUSupportedLimits,
  'maxBufferSize' | 'maxStorageBufferBindingSize' | 'minStorageBufferOffsetAlignment'
>;

const count = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * Offsets for `tensors` in order. A tensor larger than a pack may be gets a pack of its own (and is
 * refused where it is allocated or bound, as it would be alone).
 */
export function packLayout(
  tensors: readonly { name: string; shape: readonly number[] }[],
  limits: Partial<PackLimits>,
): PackLayout {
  // WebGPU's default alignment is 256; a stand-in device (dry.ts) may not report one.
  const align = Math.max(4, limits.minStorageBufferOffsetAlignment ?? 256);
  const max = Math.min(limits.maxBufferSize ?? Infinity, limits.maxStorageBufferBindingSize ?? Infinity);
  const entries: PackEntry[] = [];
  const packBytes: number[] = [];
  for (const t of tensors) {
    const n = count(t.shape);
    const last = packBytes.length - 1;
    const at = last < 0 ? 0 : Math.ceil((packBytes[last] ?? 0) / align) * align;
    const fits = last >= 0 && at + n * 4 <= max;
    const pack = fits ? last : packBytes.length;
    const offset = fits ? at : 0;
    packBytes[pack] = offset + n * 4;
    entries.push({ name: t.name, shape: [...t.shape], pack, offset, count: n });
  }
  return { entries, packBytes };
}

/** Whether two layouts place every tensor alike (a gradient pack and its parameters', say). */
export function sameLayout(a: PackLayout, b: PackLayout): boolean {
  const key = (l: PackLayout): string =>
    JSON.stringify([l.packBytes, l.entries.map((e) => [e.name, e.pack, e.offset, e.count])]);
  return key(a) === key(b);
}

/** The buffer and byte range a BufferRef names. */
export function rangeOf(r: BufferRef): { buffer: GPUBuffer; offset: number; size: number } {
  if ('buffer' in r)
    return { buffer: r.buffer, offset: r.offset ?? 0, size: r.size ?? r.buffer.size - (r.offset ?? 0) };
  return { buffer: r, offset: 0, size: r.size };
}

/** The buffers of one layout on the GPU, zero-filled, with the tensors as named ranges. */
export class Packed {
  readonly buffers: GPUBuffer[];
  private readonly byName = new Map<string, PackEntry>();

  constructor(
    private readonly gpu: Gpu,
    readonly layout: PackLayout,
    label: string,
  ) {
    this.buffers = layout.packBytes.map((bytes, i) =>
      gpu.alloc(bytes, layout.packBytes.length > 1 ? `${label} ${i}` : label),
    );
    for (const e of layout.entries) this.byName.set(e.name, e);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  entry(name: string): PackEntry {
    const e = this.byName.get(name);
    if (!e) throw new Error(`no tensor "${name}" in this pack`);
    return e;
  }

  /** Tensor `name` as a binding: its byte range of its pack. */
  ref(name: string): BufferRef {
    const e = this.entry(name);
    return { buffer: mustAt(this.buffers, e.pack, `pack of "${name}"`), offset: e.offset, size: e.count * 4 };
  }

  /** Writes every tensor (`data(name)` gives each its values), one write per pack. */
  writeAll(data: (e: PackEntry) => Float32Array): void {
    const host = this.layout.packBytes.map((b) => new Float32Array(Math.ceil(b / 4)));
    for (const e of this.layout.entries) host[e.pack]?.set(data(e).subarray(0, e.count), e.offset / 4);
    host.forEach((h, i) => {
      this.gpu.write(mustAt(this.buffers, i, 'pack'), h);
    });
  }

  /** Every tensor's values by name, in layout order: one read per pack. */
  async read(): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const packs = await Promise.all(this.buffers.map((b) => this.gpu.readF32(b)));
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const e of this.layout.entries) {
      const p = mustAt(packs, e.pack, `pack of "${e.name}"`);
      out.set(e.name, { shape: [...e.shape], data: p.slice(e.offset / 4, e.offset / 4 + e.count) });
    }
    return out;
  }

  /** Records copies of every pack into `to`, a Packed of the same layout. */
  copyTo(enc: GPUCommandEncoder, to: Packed): void {
    this.buffers.forEach((b, i) => {
      const dst = to.buffers[i];
      if (dst) enc.copyBufferToBuffer(b, 0, dst, 0, Math.min(b.size, dst.size));
    });
  }

  release(): void {
    for (const b of this.buffers) this.gpu.release(b);
    this.buffers.length = 0;
  }
}
