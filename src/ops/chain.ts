// Fused chains of a layer's output, its pooling and its dropout, one kernel each way (shaders/chain.wgsl
// has the math, layout and dispatch geometry). Not graph ops of their own: the planner
// (src/graph/fuse.ts) picks them in place of the unfused ops, and each is tested against the
// composition of the unfused references (pool.ref.ts, dropout.ref.ts, act.ref.ts).
import type { Act } from '../../dsl/ir.ts';
import type { BufferRef, Dispatch, Gpu } from '../gpu/runtime.ts';
import { f32Bytes, perThread, streamWork } from '../gpu/work.ts';
import { actConstants, actName, gradFromOutput } from './act.ts';
import { FmgpuError } from '../errors.ts';
import { poolGeometry, windowsApart, type PoolShape } from './pool.ts';
import { dropoutUniform } from './dropout.ts';
import { readerSums } from './gemm.ts';

export type PoolKind = 'max' | 'avg';

/** A pooling in a chain: its kind and its input's window (`accumulate` is not used). */
export interface ChainPool {
  kind: PoolKind;
  shape: PoolShape;
}

/** A dropout in a chain: rate in (0, 1) and the layer's seed (as DropoutShape). */
export interface ChainDropout {
  rate: number;
  seed: number;
}

/**
 * The backward of a chain: the activation's derivative (from the layer's output Y, or from the
 * activation's input X), then optionally the pooling, then optionally the dropout, over `count`
 * elements of the layer's output.
 */
export interface BackwardChain {
  count: number;
  act: Act;
  from: 'output' | 'input';
  pool?: ChainPool;
  dropout?: ChainDropout;
  /** dy arrives as a stride-1 conv's unsummed dX partials (DyParts): the chain sums them. */
  dyParts?: DyParts;
}

/**
 * A chain that a dense layer's or conv's dX runs as it stores (shaders/lib/chain_store.wgsl): its dropoutᵀ,
 * unpooling (windows apart) and act', over the chain's input (the pooling's input, or the dX's own shape).
 * `term`: first a second contribution to the gradient the dX stores is added (EpilogueChainIO.term; a tensor two
 * layers read: src/graph/junction.ts); not with a max pooling, whose argmax binding the term takes.
 */
export type EpilogueChain = Pick<BackwardChain, 'act' | 'from' | 'pool' | 'dropout'> & { term?: boolean };

/**
 * A conv's dX left as its split-K partial sums, `splits` (2 to 16: one reduce_splits thread an
 * output) of `length` floats, over `channels` planes of `plane` values (shaders/chain.wgsl src_at).
 */
export interface DyParts {
  splits: number;
  channels: number;
  plane: number;
  length: number;
}

/** The POOL override of the shaders that pool or unpool (chain.wgsl, lib/chain_store.wgsl, batchnorm.wgsl). */
export const POOL_CODES: Record<PoolKind | 'none', number> = { none: 0, max: 1, avg: 2 };

/**
 * The buffers of a chain run in a dX's store: the step counter, the saved values for act', a max pooling's argmax,
 * the term added first (EpilogueChain.term).
 */
export interface EpilogueChainIO {
  counter: BufferRef;
  saved?: BufferRef;
  argmax?: BufferRef;
  term?: BufferRef;
}

export function checkRate(d: ChainDropout | undefined): void {
  if (d && !(d.rate > 0 && d.rate < 1)) throw new RangeError(`a fused dropout's rate must be in (0, 1), got ${d.rate}`);
}

/**
 * The uniform fields of lib/chain_store.wgsl for chain `c`: its dropout's and its pooling window's (without
 * a chain, their defaults, which the other kernels sharing the uniform leave unread).
 */
export function chainUniform(c: EpilogueChain | undefined) {
  const f = windowFields(c?.pool?.shape);
  return {
    ...dropoutUniform(c?.dropout),
    ...{ poolH: f.h, poolW: f.w, poolOh: f.oh, poolOw: f.ow, poolKh: f.kh, poolKw: f.kw, poolSh: f.sh, poolSw: f.sw },
    ...{ poolPadTop: f.padTop, poolPadLeft: f.padLeft },
  };
}

/** A pooling's window as the shaders' uniforms spell it (shaders/lib/pool_geom.wgsl): all 1 and 0 without one. */
function windowFields(s: PoolShape | undefined) {
  const g = s ? poolGeometry(s) : { oh: 1, ow: 1, padTop: 0, padLeft: 0 };
  return {
    h: s?.h ?? 1,
    w: s?.w ?? 1,
    oh: g.oh,
    ow: g.ow,
    kh: s?.kh ?? 1,
    kw: s?.kw ?? 1,
    sh: s?.strideH ?? 1,
    sw: s?.strideW ?? 1,
    padTop: g.padTop,
    padLeft: g.padLeft,
  };
}

/**
 * What a dX kernel that stores `dx` values through chain `c` takes (lib/chain_store.wgsl): its constants,
 * uniform fields, bindings 6, 7, 8 and the floats it writes (the chain's input). The chain is checked.
 */
export function chainStoreOf(c: EpilogueChain, io: EpilogueChainIO, dx: number) {
  checkChain(c, io);
  const s = c.pool?.shape;
  if (s && !windowsApart(s)) throw new FmgpuError('a dX runs no chain whose pooling windows overlap');
  const out = s ? pooledCount(s) : dx;
  if (out !== dx) throw new FmgpuError(`a chain over ${out} outputs stored by a dX of ${dx}`);
  const count = s ? s.n * s.c * s.h * s.w : dx;
  if (c.term && (!io.term || c.pool?.kind === 'max'))
    throw new FmgpuError(
      'a chain adding a term needs its buffer, and pools no max (the term takes the argmax binding)',
    );
  // An unread saved or argmax binding takes the counter (read-only bindings may share a buffer).
  const bindings = [io.counter, io.saved ?? io.counter, (c.term ? io.term : io.argmax) ?? io.counter];
  // Besides the dX's own values: the saved values act' reads, the argmax or the term, and the unpooled rest written.
  const reads = f32Bytes(c.act.kind === 'linear' ? 0 : count, c.pool?.kind === 'max' || c.term ? dx : 0);
  const bytes = { reads, writes: f32Bytes(count - dx) };
  const constants = { ...chainConstants(c), TERM: c.term ? 1 : 0 };
  return { constants, params: chainUniform(c), bindings, count, bytes };
}

/** A chain's checks, shared by its kernel and a dX that runs it: the rate, act' from Y, the tensors it reads. */
function checkChain(c: EpilogueChain, io: { argmax?: BufferRef; saved?: BufferRef }): void {
  checkRate(c.dropout);
  if (c.from === 'output' && !gradFromOutput(c.act))
    throw new FmgpuError(`the gradient of ${actName(c.act)} cannot be computed from its output; save its input`);
  if (c.pool?.kind === 'max' && !io.argmax) throw new FmgpuError('a fused max unpooling needs its argmax buffer');
  if (c.act.kind !== 'linear' && !io.saved)
    throw new FmgpuError(`a fused ${actName(c.act)}' needs the saved tensor it reads`);
}

/** The overrides shaders/chain.wgsl and lib/chain_store.wgsl share: pooling, dropout, where act' reads, the act. */
function chainConstants(c: EpilogueChain): Record<string, number> {
  return {
    POOL: POOL_CODES[c.pool?.kind ?? 'none'],
    DROPOUT: c.dropout ? 1 : 0,
    FROM_OUTPUT: c.from === 'output' ? 1 : 0,
    ...actConstants(c.act),
  };
}

/** Outputs of a pooling. */
function pooledCount(s: PoolShape): number {
  const g = poolGeometry(s);
  return s.n * s.c * g.oh * g.ow;
}

/** The uniform of shaders/chain.wgsl: the window (all 1 without pooling) and the dropout. */
function chainParams(count: number, pool: ChainPool | undefined, d: ChainDropout | undefined, parts?: DyParts) {
  const s = pool?.shape;
  return {
    count,
    planes: s ? s.n * s.c : count,
    ...windowFields(s),
    ...dropoutUniform(d),
    srcC: parts?.channels ?? 1,
    srcHw: parts?.plane ?? 1,
    srcLen: parts?.length ?? 1,
  };
}

const windowDesc = (s: PoolShape): string => `${s.n}x${s.c}x${s.h}x${s.w} ${s.kh}x${s.kw}/${s.strideH}x${s.strideW}`;

/**
 * y = dropout(pool(x)) in one pass: y[o] = pool(x)[o]·keep(o)/(1 − p), the mask drawn as dropoutForward
 * draws it for the pool's output; max pooling also writes argmax (as maxPoolForward).
 */
export function poolDropoutForward(
  gpu: Gpu,
  io: { x: BufferRef; counter: BufferRef; y: BufferRef; argmax?: BufferRef },
  pool: ChainPool,
  d: ChainDropout,
): Dispatch[] {
  checkRate(d);
  const s = pool.shape;
  const g = poolGeometry(s);
  const count = s.n * s.c * g.oh * g.ow;
  const inp = s.n * s.c * s.h * s.w;
  if (pool.kind === 'max' && !io.argmax) throw new FmgpuError('a fused max pooling needs its argmax buffer');
  const workgroups = gpu.spread(count);
  return [
    gpu.kernel({
      shader: 'chain',
      entry: 'pool_dropout_forward',
      constants: { POOL: POOL_CODES[pool.kind], DROPOUT: 1 },
      params: chainParams(count, pool, d),
      bindings: [io.x, io.counter, io.y, io.argmax ?? gpu.dummy],
      workgroups,
      label: `chain.${pool.kind}pool+dropout forward ${windowDesc(s)} p=${d.rate}`,
      work: streamWork({
        flops: count * (s.kh * s.kw + 2),
        bytesRead: f32Bytes(inp, 1),
        bytesWritten: f32Bytes((pool.kind === 'max' ? 2 : 1) * count),
        perThread: perThread(count, workgroups),
        loads: s.kh * s.kw,
      }),
    }),
  ];
}

/**
 * A conv's output and its pooling (and dropout) in one pass from the conv's unsummed forward partials
 * (conv2dForward `unsummed`): y = act(Σ parts + bias), written whole, then pooled = dropout(pool(y)), as
 * the conv's reduce pass and poolDropoutForward (or the unfused pooling) would write them. Pooling
 * windows apart (stride ≥ window); a thread per window, over its block of y.
 */
export function poolForwardParts(
  gpu: Gpu,
  io: { parts: BufferRef; bias?: BufferRef; counter: BufferRef; y: BufferRef; pooled: BufferRef; argmax?: BufferRef },
  c: { pool: ChainPool; act: Act; parts: DyParts; dropout?: ChainDropout },
): Dispatch[] {
  checkRate(c.dropout);
  const s = c.pool.shape;
  const g = poolGeometry(s);
  const count = s.n * s.c * g.oh * g.ow;
  const inp = s.n * s.c * s.h * s.w;
  const splits = c.parts.splits;
  if (!windowsApart(s)) throw new FmgpuError(`a pooling of overlapping windows cannot sum its input's partials`);
  if (!readerSums(splits) || c.parts.length !== inp || c.parts.channels !== s.c || c.parts.plane !== s.h * s.w)
    throw new FmgpuError(`a pooling sums 2 to 16 partials of its ${inp} inputs, got ${splits} of ${c.parts.length}`);
  if (c.pool.kind === 'max' && !io.argmax) throw new FmgpuError('a fused max pooling needs its argmax buffer');
  const workgroups = gpu.spread(count);
  const name = ['sum', c.act.kind === 'linear' ? '' : actName(c.act), `${c.pool.kind}pool`, c.dropout ? 'dropout' : '']
    .filter(Boolean)
    .join('+');
  return [
    gpu.kernel({
      shader: 'chain',
      entry: 'pool_forward_parts',
      constants: {
        POOL: POOL_CODES[c.pool.kind],
        DROPOUT: c.dropout ? 1 : 0,
        SRC_SPLITS: splits,
        HAS_BIAS: io.bias ? 1 : 0,
        ...actConstants(c.act),
      },
      params: chainParams(count, c.pool, c.dropout, c.parts),
      bindings: [io.parts, io.counter, io.pooled, io.argmax ?? gpu.dummy, null, io.y, io.bias ?? gpu.dummy2],
      workgroups,
      label: `chain.${name} forward ${windowDesc(s)}${c.dropout ? ` p=${c.dropout.rate}` : ''} + ${splits} splits`,
      // Per window: its block's partials (independent loads), then y and the pooled value written.
      work: streamWork({
        flops: inp * (splits + 2) + count * 2,
        bytesRead: f32Bytes(splits * inp, s.c),
        bytesWritten: f32Bytes(inp + (c.pool.kind === 'max' ? 2 : 1) * count),
        perThread: perThread(count, workgroups),
        loads: splits * Math.ceil(inp / count),
      }),
    }),
  ];
}

/** The kernel label's name of a chain's ops, in backward order: `dropout+maxunpool+relu'` (`sum+relu'`: a term). */
export function chainName(c: Omit<BackwardChain, 'count'> & { term?: boolean }): string {
  const parts = [
    c.term ? 'sum' : '',
    c.dropout ? 'dropout' : '',
    c.pool ? `${c.pool.kind}unpool` : '',
    c.act.kind === 'linear' ? '' : `${actName(c.act)}'`,
  ];
  return parts.filter(Boolean).join('+');
}

/** What a dX kernel's label adds for the chain it runs as it stores: ` + dropout+maxunpool+relu' p=0.25`. */
export const chainLabel = (c: EpilogueChain): string => ` + ${chainName(c)}${c.dropout ? ` p=${c.dropout.rate}` : ''}`;

/**
 * dx = act'(·) ⊙ unpool(dropoutᵀ(dy)) in one pass over the layer's output (count elements): dy is
 * the gradient of the chain's last output (or, with c.dyParts, its unsummed partials), saved the
 * layer's output Y (from 'output') or the activation's input X (from 'input'), argmax the max
 * pooling's. dx is overwritten.
 */
export function backwardChain(
  gpu: Gpu,
  io: { dy: BufferRef; counter: BufferRef; dx: BufferRef; argmax?: BufferRef; saved?: BufferRef },
  c: BackwardChain,
): Dispatch[] {
  checkChain(c, io);
  const s = c.pool?.shape;
  const out = s ? pooledCount(s) : c.count;
  const windows = s ? Math.ceil(s.kh / s.strideH) * Math.ceil(s.kw / s.strideW) : 1;
  // Max pooling without overlap: a thread per window writes its block (one mask, one argmax read).
  const blocks = c.pool?.kind === 'max' && s !== undefined && windowsApart(s);
  const threads = blocks ? out : c.count;
  const workgroups = gpu.spread(threads);
  const splits = c.dyParts?.splits ?? 1;
  if (c.dyParts && (!readerSums(splits) || c.dyParts.length !== out))
    throw new FmgpuError(`a chain sums 2 to 16 partials of its ${out} gradients, got ${splits} of ${c.dyParts.length}`);
  const reads = (c.pool?.kind === 'max' ? 1 + splits : splits) * out + (c.act.kind === 'linear' ? 0 : c.count);
  return [
    gpu.kernel({
      shader: 'chain',
      entry: blocks ? 'backward_chain_blocks' : 'backward_chain',
      constants: { ...chainConstants(c), SRC_SPLITS: c.dyParts ? splits : 0 },
      params: chainParams(c.count, c.pool, c.dropout, c.dyParts),
      bindings: [io.dy, io.counter, io.dx, io.argmax ?? gpu.dummy, io.saved ?? gpu.dummy2],
      workgroups,
      label: `chain.${chainName(c)} backward ${s ? windowDesc(s) : c.count}${c.dropout ? ` p=${c.dropout.rate}` : ''}${
        c.dyParts ? ` + ${splits} splits` : ''
      }`,
      // Per element: its windows' argmax (or counts), their dy and mask, then the saved value; with
      // blocks, per window: its argmax, dy and mask, then its cells' saved values (independent loads).
      work: streamWork({
        flops: (blocks ? out * 2 + c.count * 2 : c.count * (2 * windows + 2)) + (splits - 1) * out,
        bytesRead: f32Bytes(reads, 1),
        bytesWritten: f32Bytes(c.count),
        perThread: perThread(threads, workgroups),
        loads: blocks ? 2 : 2 * windows + 1,
      }),
    }),
  ];
}
