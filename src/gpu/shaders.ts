// The one place WGSL enters the program: every shader file, imported as text (esbuild's text loader
// in build.mjs, a vitest plugin in tests), with the library files it uses prepended.
import activation from '../../shaders/lib/activation.wgsl';
import random from '../../shaders/lib/random.wgsl';
import augment from '../../shaders/lib/augment.wgsl';
import rank1 from '../../shaders/lib/rank1.wgsl';
import gemm from '../../shaders/lib/gemm.wgsl';
import lanes from '../../shaders/lib/lanes.wgsl';
import stride from '../../shaders/lib/stride.wgsl';
import poolGeom from '../../shaders/lib/pool_geom.wgsl';
import poolWindow from '../../shaders/lib/pool_window.wgsl';
import poolReduce from '../../shaders/lib/pool_reduce.wgsl';
import poolBlock from '../../shaders/lib/pool_block.wgsl';
import conv from '../../shaders/lib/conv.wgsl';
import convIn from '../../shaders/lib/conv_in.wgsl';
import convInGather from '../../shaders/lib/conv_in_gather.wgsl';
import convOut from '../../shaders/lib/conv_out.wgsl';
import convOutPool from '../../shaders/lib/conv_out_pool.wgsl';
import convPut from '../../shaders/lib/conv_put.wgsl';
import convPutAdd from '../../shaders/lib/conv_put_add.wgsl';
import matmulIo from '../../shaders/lib/matmul_io.wgsl';
import matmulOut from '../../shaders/lib/matmul_out.wgsl';
import matmulOutFused from '../../shaders/lib/matmul_out_fused.wgsl';
import matmulOutAdd from '../../shaders/lib/matmul_out_add.wgsl';
import matmulOutChain from '../../shaders/lib/matmul_out_chain.wgsl';
import chainStore from '../../shaders/lib/chain_store.wgsl';
import convDxOut from '../../shaders/lib/conv_dx_out.wgsl';
import dxPhase from '../../shaders/lib/dx_phase.wgsl';
import convDxChain from '../../shaders/lib/conv_dx_chain.wgsl';
import matmul from '../../shaders/matmul.wgsl';
import matmulLanes from '../../shaders/matmul_lanes.wgsl';
import conv2dForward from '../../shaders/conv2d_forward.wgsl';
import winograd from '../../shaders/lib/winograd.wgsl';
import winogradConv from '../../shaders/lib/winograd_conv.wgsl';
import conv2dWinograd from '../../shaders/conv2d_winograd.wgsl';
import conv2dWinogradDx from '../../shaders/conv2d_winograd_dx.wgsl';
import conv2dWinogradDw from '../../shaders/conv2d_winograd_dw.wgsl';
import conv2dBackwardInput from '../../shaders/conv2d_backward_input.wgsl';
import conv2dBackwardWeights from '../../shaders/conv2d_backward_weights.wgsl';
import conv2dBackwardWeightsNarrow from '../../shaders/conv2d_backward_weights_narrow.wgsl';
import conv2dForwardLanes from '../../shaders/conv2d_forward_lanes.wgsl';
import conv2dBackwardInputLanes from '../../shaders/conv2d_backward_input_lanes.wgsl';
import conv2dBackwardWeightsLanes from '../../shaders/conv2d_backward_weights_lanes.wgsl';
import pool from '../../shaders/pool.wgsl';
import globalAvgPool from '../../shaders/global_avg_pool.wgsl';
import globalAvgPoolChain from '../../shaders/global_avg_pool_chain.wgsl';
import elementwise from '../../shaders/elementwise.wgsl';
import softmaxXent from '../../shaders/softmax_xent.wgsl';
import dropout from '../../shaders/dropout.wgsl';
import chain from '../../shaders/chain.wgsl';
import batchnorm from '../../shaders/batchnorm.wgsl';
import optimizer from '../../shaders/optimizer.wgsl';
import reduce from '../../shaders/reduce.wgsl';
import batch from '../../shaders/batch.wgsl';
import gradReduce from '../../shaders/grad_reduce.wgsl';
import gradSums from '../../shaders/lib/grad_sums.wgsl';
import xent from '../../shaders/lib/xent.wgsl';
import lossTotals from '../../shaders/lib/loss_totals.wgsl';
import matmulXent from '../../shaders/matmul_xent.wgsl';
import { laneStep, type LaneStepTile } from './lane-step.ts';

/** The libraries a first conv that gathers its batch opens with (its augmentation's and the GEMM's). */
const GATHER_HEAD = [conv, activation, random, augment, rank1, gemm];

const SHADERS = {
  matmul: [matmulIo, activation, matmulOut, rank1, gemm, matmul],
  // A dense layer's dropout in the epilogue (fuse.ts dense fusions).
  matmul_fused: [random, matmulIo, activation, matmulOutFused, rank1, gemm, matmul],
  // A dense layer whose output only a residual add reads adds the shortcut in its store (fuse-add.ts).
  matmul_add: [matmulIo, activation, matmulOutAdd, rank1, gemm, matmul],
  // A dense layer's dX that runs the backward chain below it as it stores (fuse.ts, BackwardFusion.dx).
  matmul_chain: [random, matmulIo, activation, poolGeom, chainStore, matmulOutChain, rank1, gemm, matmul],
  // The logits' GEMM with the softmax-xent loss in its epilogue (plan.ts lossStep).
  matmul_xent: [matmulIo, activation, matmulOut, rank1, gemm, matmul, xent, matmulXent],
  conv2d_forward: [conv, activation, rank1, gemm, convOut, convPut, convIn, conv2dForward],
  // A conv whose output only a residual add reads adds the shortcut in its store (fuse-add.ts AddActFusion.layer).
  conv2d_forward_add: [conv, activation, rank1, gemm, convOut, convPutAdd, convIn, conv2dForward],
  // The forward with a 2×2 max pooling and dropout in its epilogue (fuse.ts conv+maxpool+dropout).
  conv2d_forward_pool: [conv, activation, random, rank1, gemm, convOutPool, convIn, conv2dForward],
  // Both as a first conv that gathers its batch from the dataset (src/ops/conv2d_gather.ts).
  conv2d_forward_gather: [...GATHER_HEAD, convOut, convPut, convInGather, conv2dForward],
  conv2d_forward_pool_gather: [...GATHER_HEAD, convOutPool, convInGather, conv2dForward],
  // A 3×3, stride-1 conv's forward (plain or pooled) and dX (plain or running the chain below) by
  // Winograd's F(2×2, 3×3) (src/ops/conv2d_winograd.ts).
  conv2d_winograd: [conv, activation, convOut, convPut, rank1, winograd, winogradConv, conv2dWinograd],
  conv2d_winograd_add: [conv, activation, convOut, convPutAdd, rank1, winograd, winogradConv, conv2dWinograd],
  conv2d_winograd_pool: [conv, activation, random, convOutPool, convPut, rank1, winograd, winogradConv, conv2dWinograd],
  conv2d_winograd_dx: [conv, convDxOut, rank1, winograd, winogradConv, conv2dWinogradDx],
  conv2d_winograd_dx_chain: [
    conv,
    random,
    activation,
    poolGeom,
    chainStore,
    convDxChain,
    rank1,
    winograd,
    winogradConv,
    conv2dWinogradDx,
  ],
  // The weight gradient by F(3×3, 2×2), with the bias gradient (src/ops/conv2d_winograd.ts winogradWeights).
  conv2d_winograd_dw: [conv, rank1, winograd, conv2dWinogradDw],
  conv2d_backward_input: [conv, dxPhase, rank1, gemm, convDxOut, conv2dBackwardInput],
  // A conv's dX that runs the backward chain below it as it stores (fuse.ts, BackwardFusion.dx).
  conv2d_backward_input_chain: [
    conv,
    dxPhase,
    random,
    activation,
    poolGeom,
    chainStore,
    convDxChain,
    rank1,
    gemm,
    conv2dBackwardInput,
  ],
  conv2d_backward_weights: [conv, rank1, gemm, conv2dBackwardWeights],
  // The weight gradient of a conv with few taps (src/ops/conv2d_narrow.ts): no GEMM tile.
  conv2d_backward_weights_narrow: [conv, conv2dBackwardWeightsNarrow],
  // lib/lanes.wgsl opens with `enable subgroups;`, so it comes first.
  matmul_lanes: [lanes, matmulIo, activation, matmulOut, matmulLanes],
  matmul_lanes_fused: [lanes, random, matmulIo, activation, matmulOutFused, matmulLanes],
  matmul_lanes_add: [lanes, matmulIo, activation, matmulOutAdd, matmulLanes],
  matmul_lanes_chain: [lanes, random, matmulIo, activation, poolGeom, chainStore, matmulOutChain, matmulLanes],
  conv2d_forward_lanes: [lanes, conv, activation, convOut, convPut, conv2dForwardLanes],
  conv2d_forward_lanes_add: [lanes, conv, activation, convOut, convPutAdd, conv2dForwardLanes],
  conv2d_forward_lanes_pool: [lanes, conv, activation, random, convOutPool, convPut, conv2dForwardLanes],
  conv2d_backward_input_lanes: [lanes, conv, dxPhase, convDxOut, conv2dBackwardInputLanes],
  conv2d_backward_input_lanes_chain: [
    lanes,
    conv,
    dxPhase,
    random,
    activation,
    poolGeom,
    chainStore,
    convDxChain,
    conv2dBackwardInputLanes,
  ],
  conv2d_backward_weights_lanes: [lanes, conv, conv2dBackwardWeightsLanes],
  pool: [stride, poolGeom, poolWindow, poolReduce, pool],
  global_avg_pool: [stride, globalAvgPool],
  // Its backward running the chain below as it stores (fuse.ts, BackwardFusion.dx; src/ops/global_pool.ts).
  global_avg_pool_chain: [stride, random, activation, poolGeom, chainStore, globalAvgPoolChain],
  elementwise: [stride, activation, elementwise],
  softmax_xent: [xent, lossTotals, softmaxXent],
  dropout: [stride, random, dropout],
  chain: [stride, random, activation, poolGeom, poolWindow, poolReduce, poolBlock, chain],
  batchnorm: [stride, activation, poolGeom, poolWindow, poolBlock, batchnorm],
  // The update, and the update that adds up the weight gradients' split-K sums on its way (deferred.ts).
  optimizer: [stride, gradSums, lossTotals, optimizer],
  reduce: [stride, reduce],
  grad_reduce: [gradSums, gradReduce],
  batch: [random, augment, batch],
} satisfies Record<string, string[]>;

export type ShaderName = keyof typeof SHADERS;

/** A lane kernel's tile from its pipeline constants (the defaults of lib/lanes.wgsl's overrides). */
const laneTileOf = (c: Record<string, number>): LaneStepTile => ({
  lanes: c.LANES ?? 8,
  rowGroups: c.ROW_GROUPS ?? 2,
  cols: c.COLS ?? 8,
});

/**
 * Whether `name` is a lane kernel (it includes lib/lanes.wgsl): its module ends with the step written out
 * for its tile.
 */
const isLaneShader = (name: ShaderName): boolean => (SHADERS[name] as string[]).includes(lanes);

/** The WGSL of shader `name`; a lane kernel's for the tile its pipeline `constants` set. */
export function shaderSource(name: ShaderName, constants: Record<string, number> = {}): string {
  const code = SHADERS[name].join('\n');
  return isLaneShader(name) ? `${code}\n${laneStep(laneTileOf(constants))}` : code;
}

/** The module shaderSource(name, constants) makes: the shader's name, with a lane kernel's tile. */
export function moduleName(name: ShaderName, constants: Record<string, number> = {}): string {
  if (!isLaneShader(name)) return name;
  const t = laneTileOf(constants);
  return `${name}@${t.rowGroups}x${t.lanes}x${t.cols}`;
}

export const shaderNames = Object.keys(SHADERS) as ShaderName[];
