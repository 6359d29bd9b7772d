// One training step of a model as a GPU would run it, planned without a GPU: the trainer's own plan
// (plans.ts buildTrainPlan: gather, forward, loss, backward, optimizer with the weight averages, which
// ends the step) built on a stand-in device (src/gpu/dry.ts) that tunes itself
// as a GPU adapter (GEMM_T 16, no lane kernels, one thread per element), so every dispatch and its
// work description is the one an H100 would get. Nothing is compiled or run: a plan takes milliseconds. The cost model
// (src/gpu/cost.ts predictStep) prices it; `bench/cost.ts` and `fmgpu summary --cost` use both.
// Needs WebGPU's usage constants (GPUBufferUsage) as globals: a browser has them, Node gets them
// from src/node/gpu.ts installGlobals.
import type { ModelIR } from '../../dsl/index.ts';
import { dryGpu, type DryLimits } from '../gpu/dry.ts';
import type { Described } from '../gpu/cost.ts';
import type { Dispatch } from '../gpu/runtime.ts';
import { buildGraph } from '../model/build.ts';
import { describeFusion, findFusions } from '../graph/fuse.ts';
import { ParamStore } from '../model/params.ts';
import { WeightAverage } from './ema.ts';
import { fitOptions } from './fit-options.ts';
import { OptimizerState } from './optimizer.ts';
import { buildTrainPlan } from './plans.ts';

/** The dispatches of one training step of `ir` at this batch size, in order, on a GPU adapter. */
export function planTrainStep(ir: ModelIR, batch: number, limits: Partial<DryLimits> = {}): Dispatch[] {
  const gpu = dryGpu(limits);
  const o = fitOptions(ir, { batch });
  const params = new ParamStore(gpu, buildGraph(ir, 1).params);
  const [counter, stats, rates] = [gpu.alloc(16), gpu.alloc(16), gpu.alloc(4)];
  const { h, w, c } = ir.input;
  const data = { images: gpu.alloc(batch * c * h * w), labels: gpu.alloc(batch), n: batch, c, h, w, release: () => {} };
  const optimizer = new OptimizerState(gpu, params, o.optimizer);
  const ema = o.ema && o.ema > 0 ? new WeightAverage(gpu, params) : null;
  const settings = { batch, fullSteps: 1, tail: 0, seed: o.seed, labelSmoothing: o.labelSmoothing, augment: o.augment };
  const averages = ema ? { averages: ema.averages, decay: o.ema ?? 0 } : undefined;
  return buildTrainPlan(gpu, ir, { params, counter, stats, data, rates }, settings, {
    key: 'cost',
    update: (p, step) => optimizer.updates(params, p, step, averages),
  }).step;
}

/**
 * The fusions the planner makes in a training step of `ir` (src/graph/fuse.ts), one line per fused
 * kernel naming the layers and ops it joins, under a heading. They depend on the graph only, not on
 * the batch size or the adapter, except three: a conv pools in its epilogue where the adapter runs its
 * forward in one pass (conv2d.ts forwardPools), else its pooling runs on its own; a batchnorm pools in its
 * pass where the adapter binds fuse.ts BN_POOL_BUFFERS storage buffers a kernel (adds, BN_ADD_BUFFERS, in
 * training); and a chain runs "in convN's dX" where the adapter does not split that dX 2 to 16 ways
 * (fuse.ts dxSplits), else it keeps its kernel and sums the dX's partials (the cost table shows which).
 * The plan's own savings (a conv's partials summed by its reader, the logits' GEMM ending in the loss,
 * the weight gradients' one reduce pass: src/graph/fused-steps.ts, deferred.ts) are not fusions of the
 * graph and not listed. Then the inference plan's, under their own heading.
 */
export function fusionLines(ir: ModelIR): string[] {
  const built = buildGraph(ir, 1);
  const listed = (training: boolean, where: string): string[] => {
    const lines = findFusions(built.graph, { training, logits: built.logits }).map((f) => `  ${describeFusion(f)}`);
    if (lines.length === 0) return [`Fused kernels ${where}: none`];
    return [`Fused kernels ${where} (${lines.length}; each replaces the unfused dispatches of its ops):`, ...lines];
  };
  // At inference a conv's pooling and a batchnorm's or add's activation fuse (nothing drops out or goes back).
  return [...listed(true, 'in a training step'), ...listed(false, 'at inference')];
}

/**
 * The dispatches of a planned step that run two GEMMs side by side (src/gpu/pair.ts), one line each, under
 * a heading. Unlike the fusions they depend on the batch size and the adapter: which GEMMs are
 * independent neighbours, and whose tiles have workgroups of one size.
 */
function pairLines(step: readonly Described[], batch: number): string[] {
  const pairs = step.filter((d) => d.work.shape.kind === 'pair').map((d) => `  ${d.label}`);
  if (pairs.length === 0) return [`GEMMs side by side at batch ${batch}: none`];
  return [`GEMMs side by side at batch ${batch} (${pairs.length}; each pair one dispatch):`, ...pairs];
}

/**
 * The conv passes of a planned step that run by Winograd (src/ops/conv2d_winograd.ts: each a GEMM whose
 * operands are transformed as fetched), one line each, the halves of pairs included: which depends on
 * the batch size and the adapter (conv2d_plan.ts winogradPlan).
 */
function winogradLines(step: readonly Described[], batch: number): string[] {
  const halves = step.flatMap((d): { label: string; work: Described['work'] }[] =>
    d.work.shape.kind === 'pair' ? [...d.work.shape.halves] : [d],
  );
  const wino = halves.filter((d) => d.work.shape.kind === 'gemm' && d.work.shape.transform).map((d) => `  ${d.label}`);
  const head = `Conv passes by Winograd at batch ${batch}`;
  if (wino.length === 0) return [`${head}: none`];
  return [`${head} (${wino.length}; 16 multiply-adds where the direct conv takes 36):`, ...wino];
}

/**
 * What a step planned for a device adds to the fusions: where it gathers the batch, its Winograd and narrow
 * passes, its pairs, the dX passes completing a gradient two layers give, where its loss runs and what its update
 * adds up as it ends the step.
 */
export const deviceLines = (step: readonly Described[], batch: number): string[] => [
  gatherLine(step, batch),
  ...winogradLines(step, batch),
  ...narrowLines(step, batch),
  ...pairLines(step, batch),
  ...junctionLines(step, batch),
  ...wholeLines(step, batch),
  ...endLines(step, batch),
];

/** The batch norm passes that take their channels whole (src/ops/batchnorm-slices.ts bnWhole), one line each. */
function wholeLines(step: readonly Described[], batch: number): string[] {
  const whole = step
    .filter((d) => /^batchnorm (stats\+train|sums\+backward) /.test(d.label))
    .map((d) => `  ${d.label}`);
  if (whole.length === 0) return [];
  const what = 'one slice a channel: each pass makes the statistics or sums it uses, no pass of their own';
  return [`Batch norm passes taking their channels whole at batch ${batch} (${whole.length}; ${what}):`, ...whole];
}

/**
 * The dX passes that add a tensor's earlier gradient (and its writer's act') as they store (src/graph/junction.ts:
 * a residual block's input, read by the block and its shortcut), one line each, the halves of pairs included.
 */
function junctionLines(step: readonly Described[], batch: number): string[] {
  const halves = step.flatMap((d): { label: string }[] =>
    d.work.shape.kind === 'pair' ? [...d.work.shape.halves] : [d],
  );
  const sums = halves.filter((d) => / \+ sum(\+\S+)?( split \d+)?$/.test(d.label)).map((d) => `  ${d.label}`);
  if (sums.length === 0) return [];
  const what = "the earlier gradient added, and the writer's act', as it stores";
  return [
    `Gradients of tensors two layers read, completed in a dX at batch ${batch} (${sums.length}; ${what}):`,
    ...sums,
  ];
}

/** The weight gradients of few taps by the narrow kernel (src/ops/conv2d_narrow.ts), one line each. */
function narrowLines(step: readonly Described[], batch: number): string[] {
  const narrow = step.filter((d) => d.label.startsWith('conv2d backward weights narrow')).map((d) => `  ${d.label}`);
  if (narrow.length === 0) return [];
  return [
    `Weight gradients of few taps at batch ${batch} (8 out-channels × 12 columns a thread, no GEMM tile):`,
    ...narrow,
  ];
}

/**
 * Where the loss runs, one line: in the logits' GEMM (src/ops/matmul.ts matmulXent) or its own pass; and the
 * update that ends the step, with what it adds up on its way (weight gradients' split-K sums, loss totals).
 */
function endLines(step: readonly Described[], batch: number): string[] {
  const loss = step.find((d) => d.label.includes('softmax_xent'));
  const update = step.find((d) => d.label.includes('+ step end'));
  const where = loss?.label.startsWith('matmul') ? "in the logits' GEMM" : 'in its own pass';
  return [
    ...(loss ? [`The loss at batch ${batch} ${where}: ${loss.label}`] : []),
    ...(update ? [`The step ended at batch ${batch} by its update: ${update.label}`] : []),
  ];
}

/**
 * Where a planned step gathers its batch, one line: in the first conv's forward (src/ops/conv2d_gather.ts),
 * which depends on the adapter and the first layer, or in the gather's own pass.
 */
function gatherLine(step: readonly Described[], batch: number): string {
  const fused = step.find((d) => d.work.shape.kind === 'gemm' && d.work.shape.gather !== undefined);
  return fused
    ? `The batch gathered at batch ${batch} in the first conv's forward: ${fused.label}`
    : `The batch gathered at batch ${batch} in its own pass (the first layer is no conv this adapter gathers in)`;
}
