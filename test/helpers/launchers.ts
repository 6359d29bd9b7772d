// Every kernel launcher of the engine, run against a recording stand-in for the Gpu (no device, no
// pipelines): what test/uniforms.test.ts checks the uniforms of and test/cost.test.ts the work
// descriptions of. Each launch is named and keeps the shapes it was given, so a test can compare a
// description with the tensors' sizes.
import type { Dispatch, Gpu, KernelSpec } from '../../src/gpu/runtime.ts';
import { ceilDiv, grid } from '../../src/gpu/runtime.ts';
import { batchnormBackward, batchnormForward } from '../../src/ops/batchnorm.ts';
import { conv2dBackwardInput, conv2dBackwardWeights, conv2dForward, type Conv2dShape } from '../../src/ops/conv2d.ts';
import { dropoutBackward, dropoutForward } from '../../src/ops/dropout.ts';
import { backwardChain, poolDropoutForward, poolForwardParts, type EpilogueChain } from '../../src/ops/chain.ts';
import {
  accumulate,
  activationBackward,
  activationBackwardSum,
  activationForward,
  add,
  copy,
  fill,
} from '../../src/ops/elementwise.ts';
import { matmul, matmulXent } from '../../src/ops/matmul.ts';
import { adamUpdate, advanceCounter, sgdUpdate } from '../../src/ops/optimizer.ts';
import {
  avgPoolBackward,
  avgPoolForward,
  maxPoolBackward,
  maxPoolForward,
  type PoolShape,
} from '../../src/ops/pool.ts';
import { globalAvgPoolBackward, globalAvgPoolForward } from '../../src/ops/global_pool.ts';
import { confusionAccumulate, nonFiniteCheck, sumRows } from '../../src/ops/reduce.ts';
import { reduceGradients, type GradSegment } from '../../src/ops/grad-reduce.ts';
import { softmax, softmaxXent } from '../../src/ops/softmax_xent.ts';
import { gatherEval, gatherTrain, type GpuDataset } from '../../src/data/batch.ts';

export type Tuning = { lanes: number; gemmSide: 8 | 16; units: number };

/** The two kernel families: the tiled GPU kernels (an H100's sizes and units) and the CPU lane kernels. */
export const FAMILIES: [string, Tuning][] = [
  ['tiled kernels', { lanes: 0, gemmSide: 16, units: 132 }],
  ['lane kernels', { lanes: 8, gemmSide: 8, units: 8 }],
];

/** A stand-in for the Gpu that records what launchers ask for instead of making pipelines. */
export function recorder(tuning: Tuning): { gpu: Gpu; specs: KernelSpec[] } {
  const specs: KernelSpec[] = [];
  const buffer = {} as GPUBuffer;
  const fake = {
    ...tuning,
    spreadLimit: Infinity,
    treeThreads: tuning.lanes > 0 ? 16 : 256,
    winograd: true,
    adapter: { cpu: tuning.lanes > 0 },
    limits: { maxStorageBuffersPerShaderStage: 16 },
    uniformAsStorage: () => buffer,
    dummy: buffer,
    dummy2: buffer,
    spread: (count: number) => grid(ceilDiv(count, 64)),
    kernel: (spec: KernelSpec): Dispatch => {
      specs.push(spec);
      const none = {} as never;
      const w = typeof spec.workgroups === 'number' ? [spec.workgroups] : spec.workgroups;
      const workgroups = [w[0] ?? 1, w[1] ?? 1, w[2] ?? 1] as const;
      return { label: spec.label ?? '', pipeline: none, bindGroup: none, workgroups, params: [], work: spec.work };
    },
  };
  return { gpu: fake as unknown as Gpu, specs };
}

/** One launcher call: its name, the shapes it was given, and the kernels it asked for. */
export interface Launch {
  launcher: string;
  shape: Record<string, unknown>;
  specs: KernelSpec[];
}

export const CONV: Conv2dShape = {
  n: 4,
  c: 3,
  h: 28,
  w: 28,
  k: 8,
  kh: 3,
  kw: 3,
  strideH: 1,
  strideW: 1,
  padding: 'same',
};
/** A layer whose every pass splits K on the tiled kernels (the reference network's second, at batch 2). */
const CONV2: Conv2dShape = { ...CONV, n: 2, c: 32, h: 14, w: 14, k: 64 };
const dropped = { rate: 0.5, seed: 1 };
const POOL: PoolShape = { n: 2, c: 3, h: 6, w: 6, kh: 3, kw: 3, strideH: 2, strideW: 2, padding: 'same' };
/** Windows that do not overlap: the chain's one-thread-a-window entry. */
const POOL2: PoolShape = { ...POOL, kh: 2, kw: 2 };
/** A batchnorm's 4×4 output pooled 2×2 in its own pass. */
const POOL_BN: PoolShape = { ...POOL2, h: 4, w: 4, padding: 'valid' };
const b = {} as GPUBuffer;
const chainIO = { counter: b, saved: b, argmax: b };
/** The chain below a layer whose input `s` is the 2×2 pooling of a relu layer's output (and dropped out). */
function unpooled(s: { n: number; c: number; h: number; w: number }, kind: 'max' | 'avg'): EpilogueChain {
  const shape: PoolShape = {
    n: s.n,
    c: s.c,
    h: 2 * s.h,
    w: 2 * s.w,
    kh: 2,
    kw: 2,
    strideH: 2,
    strideW: 2,
    padding: 'valid',
  };
  return { act: { kind: 'relu' }, from: 'output', pool: { kind, shape }, dropout: dropped };
}
const data: GpuDataset = { images: b, labels: b, n: 100, h: 28, w: 28, release: () => undefined };
/** A gather of CONV's batch (3 channels) run in its forward: the dataset's side and the labels written. */
const gathered = {
  data: { ...data, c: 3 },
  indices: b,
  counter: b,
  settings: {},
  batch: 4,
  bilinear: false,
  erase: true,
  augmented: true,
};
const gather = { from: gathered, labels: b };
const bnIo = { x: b, gamma: b, beta: b, runMean: b, runVar: b, y: b, saveMean: b, saveInvStd: b, partial: b };
const step = { counter: b, lrTable: b, param: b, grad: b };
/** A conv's and a dense layer's deferred weight gradients (src/graph/deferred.ts). */
const SEGMENTS: GradSegment[] = [
  { layout: { splits: 523, rows: 32, cols: 10, sums: 'column' }, parts: 0, dw: 0, db: 288, label: 'conv1' },
  { layout: { splits: 16, rows: 129, cols: 10, sums: 'row' }, parts: 167360, dw: 320, db: 1600, label: 'dense' },
];

/**
 * Every launcher, with the options that pick its other entry points: [name, shape, call], and 'tiled'
 * for a launcher the tiled kernels alone have.
 */
const CALLS: [string, Record<string, unknown>, (g: Gpu) => unknown, 'tiled'?][] = [
  ['conv2dForward', { ...CONV }, (g) => conv2dForward(g, { x: b, w: b, b, y: b }, CONV, { kind: 'relu' })],
  // A residual add in the store: the lane kernels, or (tiled) Winograd's.
  [
    'conv2dForward',
    { ...CONV, shortcut: 1, winograd: 16 },
    (g) => conv2dForward(g, { x: b, w: b, b, y: b, shortcut: b }, CONV, { kind: 'relu' }, { winograd: 16 }),
  ],
  ['conv2dBackwardInput', { ...CONV }, (g) => conv2dBackwardInput(g, { dy: b, w: b, dx: b }, CONV)],
  [
    'conv2dBackwardInput',
    { ...CONV, strideH: 2, strideW: 2 },
    (g) => conv2dBackwardInput(g, { dy: b, w: b, dx: b }, { ...CONV, strideH: 2, strideW: 2 }),
  ],
  [
    'conv2dBackwardWeights',
    { ...CONV },
    (g) => conv2dBackwardWeights(g, { dy: b, x: b, dw: b, db: b, parts: b }, CONV, { target: 64 }),
  ],
  [
    'conv2dBackwardWeights',
    { ...CONV },
    (g) => conv2dBackwardWeights(g, { dy: b, x: b, dw: b }, CONV, { split: false }),
  ],
  ['conv2dForward', { ...CONV2 }, (g) => conv2dForward(g, { x: b, w: b, b, y: b, parts: b }, CONV2)],
  // The direct tiled kernels' residual add, whole and split (the reduce pass adds it).
  [
    'conv2dForward',
    { ...CONV, shortcut: 1, winograd: 0 },
    (g) => conv2dForward(g, { x: b, w: b, y: b, shortcut: b }, CONV, undefined, { winograd: false }),
    'tiled',
  ],
  [
    'conv2dForward',
    { ...CONV2, shortcut: 1, winograd: 0 },
    (g) => conv2dForward(g, { x: b, w: b, y: b, parts: b, shortcut: b }, CONV2, undefined, { winograd: false }),
    'tiled',
  ],
  [
    'conv2dForward',
    { ...CONV, pool: '2x2' },
    (g) =>
      conv2dForward(g, { x: b, w: b, b, y: b, pool: { pooled: b, argmax: b, counter: b, dropout: dropped } }, CONV),
  ],
  // By Winograd's F(2×2, 3×3), plain and pooled (conv2d_winograd.ts).
  [
    'conv2dForward',
    { ...CONV, winograd: 32 },
    (g) => conv2dForward(g, { x: b, w: b, b, y: b }, CONV, { kind: 'relu' }, { winograd: 32 }),
    'tiled',
  ],
  [
    'conv2dForward',
    { ...CONV, pool: '2x2', winograd: 16 },
    (g) =>
      conv2dForward(g, { x: b, w: b, y: b, pool: { pooled: b, argmax: b, counter: b } }, CONV, undefined, {
        winograd: 16,
      }),
    'tiled',
  ],
  // dX by Winograd's F(2×2, 3×3), plain and running the chain below (max unpooling, dropout, relu').
  [
    'conv2dBackwardInput',
    { ...CONV, winograd: 16 },
    (g) => conv2dBackwardInput(g, { dy: b, w: b, dx: b }, CONV, { winograd: 16 }),
    'tiled',
  ],
  [
    'conv2dBackwardInput',
    { ...CONV, chain: 'maxpool', winograd: 32 },
    (g) =>
      conv2dBackwardInput(g, { dy: b, w: b, dx: b, chain: chainIO }, CONV, {
        chain: unpooled(CONV, 'max'),
        winograd: 32,
      }),
    'tiled',
  ],
  // The weight gradient by Winograd's F(3×3, 2×2): split (its partials, then the direct dW's reduce_splits)
  // and in one pass.
  [
    'conv2dBackwardWeights',
    { ...CONV, winograd: 16 },
    (g) => conv2dBackwardWeights(g, { dy: b, x: b, dw: b, db: b, parts: b }, CONV, { winograd: 16 }),
    'tiled',
  ],
  [
    'conv2dBackwardWeights',
    { ...CONV, winograd: 32 },
    (g) => conv2dBackwardWeights(g, { dy: b, x: b, dw: b }, CONV, { winograd: 32, split: false }),
    'tiled',
  ],
  // The weight gradient of a conv of few taps (a first layer of one channel: 9): split, and in one pass.
  [
    'conv2dBackwardWeights',
    { ...CONV, c: 1 },
    (g) => conv2dBackwardWeights(g, { dy: b, x: b, dw: b, db: b, parts: b }, { ...CONV, c: 1 }),
    'tiled',
  ],
  [
    'conv2dBackwardWeights',
    { ...CONV, n: 1, c: 1, h: 6, w: 6 },
    (g) => conv2dBackwardWeights(g, { dy: b, x: b, dw: b }, { ...CONV, n: 1, c: 1, h: 6, w: 6 }),
    'tiled',
  ],
  // A first conv gathering its batch (CONV's 4×3×28×28) as it fetches it, plain and pooled.
  ['conv2dForward', { ...CONV, gather: 'train' }, (g) => conv2dForward(g, { x: b, w: b, y: b, gather }, CONV), 'tiled'],
  [
    'conv2dForward',
    { ...CONV, pool: '2x2', gather: 'train' },
    (g) => conv2dForward(g, { x: b, w: b, b, y: b, pool: { pooled: b, argmax: b, counter: b }, gather }, CONV),
    'tiled',
  ],
  ['conv2dBackwardInput', { ...CONV2 }, (g) => conv2dBackwardInput(g, { dy: b, w: b, dx: b, parts: b }, CONV2)],
  // The chain below run as dX stores: max unpooling of CONV's 28×28 input from 56×56 (and dropout, relu').
  [
    'conv2dBackwardInput',
    { ...CONV, chain: 'maxpool' },
    (g) => conv2dBackwardInput(g, { dy: b, w: b, dx: b, chain: chainIO }, CONV, { chain: unpooled(CONV, 'max') }),
  ],
  [
    'conv2dBackwardInput',
    { ...CONV2, chain: 'avgpool' },
    (g) =>
      conv2dBackwardInput(g, { dy: b, w: b, dx: b, parts: b, chain: chainIO }, CONV2, {
        chain: unpooled(CONV2, 'avg'),
      }),
  ],
  [
    'matmul',
    { m: 8, n: 8, k: 8 },
    (g) => matmul(g, { a: b, b, c: b }, { m: 8, n: 8, k: 8, act: { kind: 'leaky', alpha: 0.1 } }),
  ],
  [
    'matmul',
    { m: 64, n: 128, k: 1152 },
    (g) => matmul(g, { a: b, b, bias: b, c: b, parts: b }, { m: 64, n: 128, k: 1152, act: { kind: 'relu' } }),
  ],
  [
    'matmul',
    { m: 1152, n: 128, k: 256 },
    // The bias gradient alongside on the tiled kernels (the lane kernel has none).
    (g) =>
      matmul(
        g,
        { a: b, b, c: b, dbias: g.lanes > 0 ? undefined : b, parts: b },
        { m: 1152, n: 128, k: 256, transA: true },
      ),
  ],
  [
    'matmul',
    { m: 64, n: 128, k: 1152, epilogue: 'dropout' },
    (g) =>
      matmul(
        g,
        { a: b, b, bias: b, c: b, parts: b, epi: b, counter: b },
        { m: 64, n: 128, k: 1152, act: { kind: 'relu' }, epilogue: { kind: 'dropout', dropout: dropped } },
      ),
  ],
  [
    'matmul',
    { m: 8, n: 8, k: 8, epilogue: 'dropout' },
    (g) =>
      matmul(
        g,
        { a: b, b, c: b, epi: b, counter: b },
        { m: 8, n: 8, k: 8, act: { kind: 'relu' }, epilogue: { kind: 'dropout', dropout: dropped } },
      ),
  ],
  // A residual add in the store: whole (8³), and split on the tiled kernels (the reduce pass adds it).
  [
    'matmul',
    { m: 8, n: 8, k: 8, epilogue: 'add' },
    (g) =>
      matmul(
        g,
        { a: b, b, bias: b, c: b, epi: b },
        { m: 8, n: 8, k: 8, act: { kind: 'relu' }, epilogue: { kind: 'add' } },
      ),
  ],
  [
    'matmul',
    { m: 64, n: 128, k: 1152, epilogue: 'add' },
    (g) => matmul(g, { a: b, b, c: b, parts: b, epi: b }, { m: 64, n: 128, k: 1152, epilogue: { kind: 'add' } }),
  ],
  [
    'matmul',
    { m: 64, n: 128, k: 1152, epilogue: 'chain' },
    (g) =>
      matmul(
        g,
        { a: b, b, c: b, parts: b, epi: b, counter: b },
        {
          m: 64,
          n: 128,
          k: 1152,
          transB: true,
          epilogue: { kind: 'chain', dropout: dropped, act: { kind: 'relu' }, from: 'output' },
        },
      ),
  ],
  [
    'matmul',
    { m: 64, n: 1152, k: 128, epilogue: 'chain', pool: 'max' },
    (g) =>
      matmul(
        g,
        { a: b, b, c: b, parts: b, epi: b, counter: b, argmax: b },
        {
          ...{ m: 64, n: 1152, k: 128, transB: true },
          epilogue: { kind: 'chain', ...unpooled({ n: 64, c: 128, h: 3, w: 3 }, 'max') },
        },
      ),
  ],
  ['maxPoolForward', { ...POOL }, (g) => maxPoolForward(g, { x: b, y: b, argmax: b }, POOL)],
  ['maxPoolBackward', { ...POOL }, (g) => maxPoolBackward(g, { dy: b, argmax: b, dx: b }, POOL)],
  [
    'maxPoolBackward',
    { ...POOL, kh: 2, kw: 2 },
    (g) => maxPoolBackward(g, { dy: b, argmax: b, dx: b }, { ...POOL, kh: 2, kw: 2 }),
  ],
  ['avgPoolForward', { ...POOL }, (g) => avgPoolForward(g, { x: b, y: b }, POOL)],
  ['avgPoolBackward', { ...POOL }, (g) => avgPoolBackward(g, { dy: b, dx: b }, POOL)],
  [
    'globalAvgPoolForward',
    { n: 2, c: 3, h: 4, w: 4 },
    (g) => globalAvgPoolForward(g, { x: b, y: b }, { n: 2, c: 3, h: 4, w: 4 }),
  ],
  [
    'globalAvgPoolBackward',
    { n: 2, c: 3, h: 4, w: 4 },
    (g) => globalAvgPoolBackward(g, { dy: b, dx: b }, { n: 2, c: 3, h: 4, w: 4 }),
  ],
  // Running the chain below as it stores (2×2 max unpooling, dropoutᵀ, relu').
  [
    'globalAvgPoolBackward',
    { n: 2, c: 3, h: 2, w: 2, chain: 1 },
    (g) =>
      globalAvgPoolBackward(
        g,
        { dy: b, dx: b, chain: { ...chainIO, chain: unpooled({ n: 2, c: 3, h: 2, w: 2 }, 'max') } },
        {
          n: 2,
          c: 3,
          h: 2,
          w: 2,
        },
      ),
  ],
  ['activationForward', { count: 10 }, (g) => activationForward(g, { x: b, y: b }, 10, { kind: 'tanh' })],
  [
    'activationBackward',
    { count: 10 },
    (g) => activationBackward(g, { dy: b, saved: b, dx: b }, 10, { kind: 'tanh' }, 'output'),
  ],
  [
    'activationBackwardSum',
    { count: 10 },
    (g) => activationBackwardSum(g, { dy: b, dy2: b, saved: b, dx: b }, 10, { kind: 'relu' }),
  ],
  ['add', { count: 10 }, (g) => add(g, { a: b, b, c: b }, 10)],
  ['accumulate', { count: 10 }, (g) => accumulate(g, { a: b, c: b }, 10)],
  ['copy', { count: 10 }, (g) => copy(g, { src: b, dst: b }, 10)],
  ['fill', { count: 10 }, (g) => fill(g, { dst: b }, 10, 0)],
  [
    'dropoutForward',
    { count: 10 },
    (g) => dropoutForward(g, { x: b, counter: b, y: b }, { count: 10, rate: 0.5, seed: 1 }),
  ],
  [
    'dropoutBackward',
    { count: 10 },
    (g) => dropoutBackward(g, { dy: b, counter: b, dx: b }, { count: 10, rate: 0.5, seed: 1 }),
  ],
  [
    'poolForwardParts',
    { ...POOL2, splits: 8 },
    (g) =>
      poolForwardParts(
        g,
        { parts: b, bias: b, counter: b, y: b, pooled: b, argmax: b },
        {
          pool: { kind: 'max', shape: POOL2 },
          act: { kind: 'relu' },
          dropout: dropped,
          parts: {
            splits: 8,
            channels: POOL2.c,
            plane: POOL2.h * POOL2.w,
            length: POOL2.n * POOL2.c * POOL2.h * POOL2.w,
          },
        },
      ),
  ],
  [
    'poolDropoutForward',
    { ...POOL },
    (g) => poolDropoutForward(g, { x: b, counter: b, y: b, argmax: b }, { kind: 'max', shape: POOL }, dropped),
  ],
  [
    'backwardChain',
    { ...POOL },
    (g) =>
      backwardChain(
        g,
        { dy: b, counter: b, dx: b, argmax: b, saved: b },
        {
          count: POOL.n * POOL.c * POOL.h * POOL.w,
          act: { kind: 'relu' },
          from: 'output',
          pool: { kind: 'avg', shape: POOL },
          dropout: dropped,
        },
      ),
  ],
  [
    'backwardChain',
    { ...POOL2 },
    (g) =>
      backwardChain(
        g,
        { dy: b, counter: b, dx: b, argmax: b, saved: b },
        {
          count: POOL2.n * POOL2.c * POOL2.h * POOL2.w,
          act: { kind: 'relu' },
          from: 'output',
          pool: { kind: 'max', shape: POOL2 },
        },
      ),
  ],
  ['batchnormForward', { n: 2, c: 3, hw: 4 }, (g) => batchnormForward(g, bnIo, { n: 2, c: 3, hw: 4, training: true })],
  // Two slices a channel (M = 600 allows them): the statistics (sums) in a pass of their own, then combined.
  [
    'batchnormForward',
    { n: 2, c: 3, hw: 300, slices: 2 },
    (g) => batchnormForward(g, bnIo, { n: 2, c: 3, hw: 300, training: true, slices: 2 }),
  ],
  [
    'batchnormBackward',
    { n: 2, c: 3, hw: 300, slices: 2 },
    (g) =>
      batchnormBackward(
        g,
        { ...bnIo, dy: b, dx: b, dgamma: b, dbeta: b },
        { n: 2, c: 3, hw: 300, training: true, slices: 2 },
      ),
  ],
  ['batchnormForward', { n: 2, c: 3, hw: 4 }, (g) => batchnormForward(g, bnIo, { n: 2, c: 3, hw: 4, training: false })],
  [
    'batchnormBackward',
    { n: 2, c: 3, hw: 4 },
    (g) => batchnormBackward(g, { ...bnIo, dy: b, dx: b, dgamma: b, dbeta: b }, { n: 2, c: 3, hw: 4, training: true }),
  ],
  [
    'batchnormForward',
    { n: 2, c: 3, hw: 4 },
    (g) => batchnormForward(g, bnIo, { n: 2, c: 3, hw: 4, training: true, act: { kind: 'relu' } }),
  ],
  [
    'batchnormForward',
    { n: 2, c: 3, hw: 4, shortcut: 1 },
    (g) => batchnormForward(g, { ...bnIo, shortcut: b }, { n: 2, c: 3, hw: 4, training: true, act: { kind: 'relu' } }),
  ],
  [
    'batchnormForward',
    { n: 2, c: 3, hw: 4, shortcut: 1, training: 0 },
    (g) => batchnormForward(g, { ...bnIo, shortcut: b }, { n: 2, c: 3, hw: 4, training: false, act: { kind: 'relu' } }),
  ],
  [
    'batchnormForward',
    { n: 2, c: 3, hw: 16, pool: '2x2', training: 0 },
    (g) =>
      batchnormForward(
        g,
        { ...bnIo, pooled: b },
        { n: 2, c: 3, hw: 16, training: false, act: { kind: 'relu' }, pool: { kind: 'max', shape: POOL_BN } },
      ),
  ],
  [
    'batchnormForward',
    { n: 2, c: 3, hw: 16, pool: '2x2' },
    (g) =>
      batchnormForward(
        g,
        { ...bnIo, pooled: b, argmax: b },
        { n: 2, c: 3, hw: 16, training: true, act: { kind: 'relu' }, pool: { kind: 'max', shape: POOL_BN } },
      ),
  ],
  [
    'batchnormForward',
    { n: 2, c: 3, hw: 16, xParts: 8 },
    (g) =>
      batchnormForward(
        g,
        { ...bnIo, xParts: { parts: b, splits: 8, bias: b } },
        { n: 2, c: 3, hw: 16, training: true },
      ),
  ],
  [
    'batchnormBackward',
    { n: 2, c: 3, hw: 4 },
    (g) =>
      batchnormBackward(
        g,
        { ...bnIo, dy: b, dx: b, dgamma: b, dbeta: b },
        { n: 2, c: 3, hw: 4, training: true, act: { kind: 'relu' } },
      ),
  ],
  [
    'softmaxXent',
    { n: 4, classes: 10 },
    (g) => softmaxXent(g, { logits: b, labels: b, dlogits: b, loss: b, stats: b, partials: b }, { n: 4, classes: 10 }),
  ],
  [
    'softmaxXent',
    // Over one workgroup: the partials and their totals pass; a training step's counter snapshot.
    { n: 300, classes: 10 },
    (g) =>
      softmaxXent(
        g,
        { logits: b, labels: b, dlogits: b, loss: b, stats: b, partials: b, counter: b },
        { n: 300, classes: 10 },
      ),
  ],
  ['softmax', { n: 4, classes: 10 }, (g) => softmax(g, { logits: b, probs: b }, 4, 10)],
  ['sumRows', { m: 4, n: 10 }, (g) => sumRows(g, { x: b, out: b }, { m: 4, n: 10 })],
  [
    'matmulXent',
    { m: 64, n: 10, k: 128 },
    (g) =>
      matmulXent(
        g,
        { a: b, b, bias: b, c: b, labels: b, dlogits: b, stats: b, counter: b, partials: b },
        { m: 64, k: 128, n: 10 },
        { smoothing: 0.1, scale: 1 / 64 },
      ),
    'tiled',
  ],
  ['reduceGradients', { segments: 2 }, (g) => reduceGradients(g, { parts: b, grads: b }, SEGMENTS)],
  // The updates that sum those on their way (a training plan's gradSums).
  [
    'sgdUpdate',
    { count: 2000, segments: 2 },
    (g) => sgdUpdate(g, { ...step, sums: { parts: b, segments: SEGMENTS } }, { count: 2000 }),
  ],
  [
    'adamUpdate',
    { count: 2000, segments: 2 },
    (g) => adamUpdate(g, { ...step, m: b, v: b, sums: { parts: b, segments: SEGMENTS } }, { count: 2000 }),
  ],
  // …and add the loss's partial totals as they end the step (a training plan's totals).
  [
    'sgdUpdate',
    { count: 2000, segments: 2, totals: 8 },
    (g) =>
      sgdUpdate(
        g,
        { ...step, sums: { parts: b, segments: SEGMENTS }, totals: { partials: b, groups: 8, stats: b } },
        { count: 2000 },
      ),
  ],
  [
    'adamUpdate',
    { count: 2000, totals: 8 },
    (g) => adamUpdate(g, { ...step, m: b, v: b, totals: { partials: b, groups: 8, stats: b } }, { count: 2000 }),
  ],
  [
    'confusionAccumulate',
    { m: 4, classes: 10 },
    (g) => confusionAccumulate(g, { labels: b, scores: b, confusion: b }, { m: 4, classes: 10 }),
  ],
  ['nonFiniteCheck', { n: 10 }, (g) => nonFiniteCheck(g, { x: b, flag: b }, { n: 10 })],
  ['sgdUpdate', { count: 10 }, (g) => sgdUpdate(g, { ...step, velocity: b }, { count: 10, momentum: 0.9 })],
  ['adamUpdate', { count: 10 }, (g) => adamUpdate(g, { ...step, m: b, v: b }, { count: 10 })],
  [
    'adamUpdate',
    { count: 10 },
    (g) => adamUpdate(g, { ...step, m: b, v: b, ema: { avg: b, decay: 0.99 } }, { count: 10, tensors: 2 }),
  ],
  ['advanceCounter', {}, (g) => advanceCounter(g, { counter: b })],
  [
    'gatherTrain',
    { batch: 4, h: 28, w: 28 },
    (g) =>
      gatherTrain(
        g,
        { data, indices: { buffer: b, size: 400 }, counter: b, x: b, labels: b },
        { batch: 4, stepsPerEpoch: 2, seed: 1 },
      ),
  ],
  ['gatherEval', { batch: 4, h: 28, w: 28 }, (g) => gatherEval(g, { data, x: b, labels: b }, { batch: 4, offset: 0 })],
];

/** Runs every launcher on a recorder with this tuning; returns each call with the kernels it asked for. */
export function launchAll(tuning: Tuning): Launch[] {
  const { gpu, specs } = recorder(tuning);
  return CALLS.filter(([, , , only]) => !only || tuning.lanes === 0).map(([launcher, shape, call]) => {
    const before = specs.length;
    call(gpu);
    return { launcher, shape, specs: specs.slice(before) };
  });
}
