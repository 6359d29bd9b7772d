// Two independent dispatches as one (horizontal fusion): the workgroups of both GEMMs in one grid, a
// workgroup running the one it belongs to (the WGSL: wgsl-pair.ts). A layer's dX and dW read the
// same dY and write apart, and each alone leaves much of a large GPU idle or costs a dispatch gap;
// together they fill it in one. The planner pairs neighbours of its lists that allow it (pairAdjacent):
//   - both tiled GEMMs (a GPU's: the lane kernels of a CPU adapter measured no faster paired on lavapipe,
//     bench/RESULTS.md) of one workgroup size, made by Gpu.kernel (not already paired);
//   - independent (dependence): no buffer one writes is bound by the other, except apart (the same
//     gradient pack, other ranges), and no buffer written by one and read by the other (WebGPU's usage
//     rule); a partner a few dispatches on moves up to its pair past ones it does not depend on;
//   - within the adapter's storage-buffer, uniform-buffer, per-dimension workgroup and workgroup-memory
//     limits (the halves share their GEMM tiles' staging; the device profiles hold WebGPU's default
//     16 KB until a GPU's own limits are recorded).
// The second half's dummies are others than the first's (Gpu.dummyAt), so no dummy is bound writable twice.
import { shaderSource } from './shaders.ts';
import type { BufferRef, Dispatch, Gpu } from './runtime.ts';
import { sharedLimit, stageBytes, type PairHalf, type Work } from './work.ts';
import { rangeOf } from './packed.ts';
import { bindingAccess, pairConstants, pairSource, type Access, type PairedSource } from './wgsl-pair.ts';

/** A second half's dummy i is the pair's dummy i + this (kernels bind dummy and dummy2 at most). */
const DUMMY_SHIFT = 2;

/** Composed modules by name, or why two entry points cannot be composed. */
const sources = new Map<string, PairedSource | string>();

type Source = NonNullable<Dispatch['source']>;

/** Its bindings' access, read from the entry's reflection (wgsl-scan.ts entryVars, cached with the scan). */
const accessOf = (s: Pick<Source, 'shader' | 'entry'>): Map<number, Access> =>
  bindingAccess(shaderSource(s.shader), s.entry);

/** The storage buffers an entry point binds, as its WGSL declares and uses them. */
export const storageBindings = (s: Pick<Source, 'shader' | 'entry'>): number =>
  [...accessOf(s).values()].filter((a) => a !== 'uniform').length;

/** Whether this adapter binds every storage buffer of an entry point (WebGPU's default limit, 8, if unsaid). */
export const bindsStorage = (gpu: Gpu, s: Pick<Source, 'shader' | 'entry'>): boolean =>
  storageBindings(s) <= (gpu.limits.maxStorageBuffersPerShaderStage ?? 8);

/** The paired module of two entry points, or why there is none (a builtin it cannot hand on, a name it uses). */
function pairedOf(a: Source, b: Source): (PairedSource & { name: string }) | string {
  const name = `pair(${a.shader}.${a.entry}, ${b.shader}.${b.entry})`;
  let p = sources.get(name);
  if (p === undefined) {
    const code = (s: Source) => ({ code: shaderSource(s.shader), entry: s.entry });
    try {
      p = pairSource(code(a), code(b));
    } catch (e) {
      p = (e as Error).message;
    }
    sources.set(name, p);
  }
  return typeof p === 'string' ? p : { ...p, name };
}

const count = (d: Dispatch): number => d.workgroups[0] * d.workgroups[1] * d.workgroups[2];

/** The index of a dummy buffer bound whole (Gpu.dummyAt), else -1. */
const dummyOf = (gpu: Gpu, b: BufferRef | null): number => (b && !('buffer' in b) ? gpu.dummyIndex(b) : -1);

/** The second half's bindings with its dummies moved past the first's. */
function movedDummies(gpu: Gpu, bound: readonly (BufferRef | null)[]): (BufferRef | null)[] {
  return bound.map((b) => {
    const i = dummyOf(gpu, b);
    return i < 0 ? b : gpu.dummyAt(i + DUMMY_SHIFT);
  });
}

interface Use {
  buffer: GPUBuffer;
  from: number;
  to: number;
  access: Access;
}

/** The buffers a kernel binds (its dummies left out: they hold nothing), with their access. */
function usesOf(gpu: Gpu, s: Source, bound: readonly (BufferRef | null)[]): Use[] {
  const access = accessOf(s);
  return bound.flatMap((b, i) => {
    if (!b || dummyOf(gpu, b) >= 0) return [];
    const { buffer, offset: from, size } = rangeOf(b);
    const to = from + size;
    // A binding the entry point's WGSL does not show (it cannot be bound) counts as written.
    return [{ buffer, from, to, access: access.get(i) ?? 'read_write' }];
  });
}

/** Workgroup memory of a pair: the GEMM tiles' staging (lib/gemm.wgsl gemm_ab) shared, the rest side by side. */
function pairShared(a: Work, b: Work): number {
  const parts = (w: Work): [number, number] => {
    const s = w.shape;
    if (s.kind !== 'gemm' || w.sharedBytes === 0) return [0, w.sharedBytes];
    const staged = s.staged ?? stageBytes(s.tileM + s.tileN);
    return [staged, w.sharedBytes - staged];
  };
  const [pa, pb] = [parts(a), parts(b)];
  return Math.max(pa[0], pb[0]) + pa[1] + pb[1];
}

/** Why `a` and `b` cannot run as one dispatch (the rules at the top), or null when they can. */
export function unpairable(gpu: Gpu, a: Dispatch, b: Dispatch): string | null {
  const [sa, sb] = [a.source, b.source];
  if (!sa || !sb) return 'not a kernel of its own';
  if (gpu.lanes > 0) return "the CPU adapter's lane kernels (measured no faster paired on lavapipe)";
  if (a.work.shape.kind !== 'gemm' || b.work.shape.kind !== 'gemm') return 'not two GEMMs';
  if (a.work.threads !== b.work.threads) return 'workgroups of other sizes';
  if (count(a) === 0 || count(b) === 0) return 'no workgroups';
  if (count(a) + count(b) > gpu.limits.maxComputeWorkgroupsPerDimension) return 'too many workgroups';
  if (pairShared(a.work, b.work) > sharedLimit(gpu)) return 'too much workgroup memory';
  const bindings = [sa, sb].flatMap((s) => [...accessOf(s).values()]);
  const storage = bindings.filter((a) => a !== 'uniform').length;
  if (storage > gpu.limits.maxStorageBuffersPerShaderStage) return 'too many storage buffers';
  // The halves' uniforms and the pair's grids.
  if (bindings.length - storage + 1 > gpu.limits.maxUniformBuffersPerShaderStage) return 'too many uniforms';
  const paired = pairedOf(sa, sb);
  return typeof paired === 'string' ? paired : dependence(gpu, a, b);
}

/**
 * Why `a` and `b` must run one after the other, or null: each binds apart from what the other writes
 * (ranges of one buffer both write, as the gradient packs), and no buffer one writes the other reads.
 */
export function dependence(gpu: Gpu, a: Dispatch, b: Dispatch): string | null {
  if (!a.source || !b.source) return 'not a kernel of its own';
  const [ua, ub] = [usesOf(gpu, a.source, a.source.bound), usesOf(gpu, b.source, b.source.bound)];
  for (const x of ua)
    for (const y of ub) {
      if (x.buffer !== y.buffer || (x.access !== 'read_write' && y.access !== 'read_write')) continue;
      if (x.access !== y.access || (x.from < y.to && y.from < x.to)) return `both bind ${x.buffer.label}`;
    }
  return null;
}

/** `a` and `b` as one dispatch; unpairable(gpu, a, b) must be null. Takes over their uniform buffers. */
export function pair(gpu: Gpu, a: Dispatch, b: Dispatch): Dispatch {
  const [sa, sb] = [a.source as Source, b.source as Source];
  const p = pairedOf(sa, sb);
  if (typeof p === 'string') throw new Error(`pairing ${a.label} and ${b.label}: ${p}`);
  const constants = { ...sa.constants, ...pairConstants(sb.constants) };
  const pipeline = gpu.pipeline({ name: p.name, code: p.code }, 'pair', constants);
  const grid = gpu.alloc(32, `${a.label} pair grid`, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  gpu.write(grid, new Uint32Array([...a.workgroups, count(a), ...b.workgroups, count(b)]));
  // Each half's bindings up to the next's (a kernel may pass null for bindings its module lacks), the grids last.
  const upTo = (bound: readonly (BufferRef | null)[], n: number, what: string) => {
    if (bound.slice(n).some((x) => x)) throw new Error(`pairing ${what}: a binding past its module's`);
    return Array.from({ length: n }, (_, i) => bound[i] ?? null);
  };
  const theirs = movedDummies(gpu, upTo(sb.bound, p.grid - p.offset, b.label));
  const bound = [...upTo(sa.bound, p.offset, a.label), ...theirs, grid];
  const label = `${a.label} ∥ ${b.label}`;
  const half = (d: Dispatch): PairHalf => ({ label: d.label, workgroups: count(d), work: d.work });
  const work: Work = {
    flops: a.work.flops + b.work.flops,
    paddedFlops: a.work.paddedFlops + b.work.paddedFlops,
    bytesRead: a.work.bytesRead + b.work.bytesRead,
    bytesWritten: a.work.bytesWritten + b.work.bytesWritten,
    threads: a.work.threads,
    sharedBytes: pairShared(a.work, b.work),
    shape: { kind: 'pair', halves: [half(a), half(b)] },
  };
  return {
    ...{ label, pipeline, bindGroup: gpu.bindGroup(pipeline, bound, label) },
    ...{ workgroups: [count(a) + count(b), 1, 1], params: [...a.params, ...b.params, grid], work },
  };
}

/** How far ahead a dispatch's partner may be: the ones between must not depend on it (a dX's reduce pass). */
const REACH = 3;

/**
 * The list with dispatches paired, in order: each with the first of the next REACH that it can run
 * beside (unpairable) and that can move up past the ones between (dependence), as a layer's dW past
 * its dX's split-K reduce.
 */
export function pairAdjacent(gpu: Gpu, list: readonly Dispatch[]): Dispatch[] {
  const ds = [...list];
  const out: Dispatch[] = [];
  while (ds.length > 0) {
    const a = ds.shift() as Dispatch;
    const j = ds.slice(0, REACH).findIndex((b, k) => {
      if (unpairable(gpu, a, b) !== null) return false;
      return ds.slice(0, k).every((c) => dependence(gpu, c, b) === null);
    });
    out.push(j < 0 ? a : pair(gpu, a, ...(ds.splice(j, 1) as [Dispatch])));
  }
  return out;
}
