// The weight gradient of a conv with few taps (C·KH·KW ≤ NARROW_TAPS: a first layer of one channel) on the
// tiled kernels: shaders/conv2d_backward_weights_narrow.wgsl, its plan weightNarrowPlan (conv2d_plan.ts).
// The direct GEMM would pad its C·KH·KW + 1 columns to a 16-wide tile of 4×4 blocks, which read workgroup
// memory twice as fast as they multiply; here a thread holds 8 out-channels × 12 columns and reads each
// position's taps and dy once, with no workgroup memory in the loop. Its partials are the direct GEMM's
// layout, so the same reduction (or a training step's update) sums them.
import type { BufferRef, Dispatch, Gpu, Uniform } from '../gpu/runtime.ts';
import { f32Bytes, type Work } from '../gpu/work.ts';
import { coverOf, type Conv2dShape } from './conv2d_plan.ts';
import { thenWeightReduce, type NarrowWeightPlan, type WeightIo } from './conv2d_weights.ts';
import { needParts } from './gemm.ts';

/** Lanes a channel group walks the positions with, out-channels and columns a thread holds (the shader's). */
const LANES = 32;
const CHANNELS = 8;
const COLUMNS = 12;

/**
 * The pass's work: a GEMM of K × (taps + 1) over the positions, each workgroup 16 × 12 outputs over its
 * chunk, one position a lane a step (taps + 8 loads, 96 multiply-adds), then three trees of 32 lanes.
 */
function narrowWork(
  s: Conv2dShape,
  p: NarrowWeightPlan,
  w: { positions: number; read: number; written: number },
): Work {
  const taps = s.c * s.kh * s.kw;
  const steps = Math.ceil(p.chunk / LANES);
  const threads = 2 * LANES;
  return {
    flops: 2 * s.k * (taps + 1) * w.positions,
    paddedFlops: 2 * p.splits * p.blocks * threads * CHANNELS * COLUMNS * steps,
    bytesRead: w.read,
    bytesWritten: w.written,
    threads,
    sharedBytes: 16 * 2 * CHANNELS * LANES,
    shape: {
      kind: 'gemm',
      tileM: 2 * CHANNELS,
      tileN: COLUMNS,
      tileK: 1,
      kSteps: steps,
      rowsPerThread: CHANNELS,
      colsPerThread: COLUMNS,
      // Its loads a step come from the caches, not workgroup memory: counted as the tiles' loads are.
      sharedLoads: taps + CHANNELS,
      globalLoads: taps + CHANNELS,
      indexed: false,
      // No lib/gemm.wgsl staging (gemm_ab) for a pair to share: its trees' memory is its own.
      staged: 0,
      tail: { loads: 0, barriers: 3 * (Math.log2(LANES) + 2) },
    },
  };
}

/**
 * dw (and db) of `s`, or with a split plan its partials (parts[z][K][taps (+1)]) then their reduction; with
 * `unsummed` the partials alone, for the planner to sum.
 */
export function narrowWeights(
  gpu: Gpu,
  s: Conv2dShape,
  p: NarrowWeightPlan,
  l: {
    io: WeightIo & { dy: BufferRef; x: BufferRef };
    params: Uniform;
    positions: number;
    label: string;
    unsummed?: boolean;
  },
): Dispatch[] {
  const taps = s.c * s.kh * s.kw;
  const sums = l.io.db ? 1 : 0;
  const len = s.k * (taps + sums);
  const split = p.splits > 1;
  const bindings = split
    ? [l.io.dy, l.io.x, needParts(p, l.io.parts, l.label, p.splits * len), gpu.dummy]
    : [l.io.dy, l.io.x, l.io.dw, l.io.db ?? gpu.dummy];
  const read = f32Bytes(s.k * l.positions, s.n * s.c * s.h * s.w);
  const pass = gpu.kernel({
    shader: 'conv2d_backward_weights_narrow',
    params: l.params,
    constants: { HAS_BIAS: sums, ...coverOf(s).constants },
    bindings,
    workgroups: [p.splits, p.blocks],
    label: `${l.label}${split ? ` split ${p.splits}` : ''}`,
    work: narrowWork(s, p, { positions: l.positions, read, written: f32Bytes(split ? p.splits * len : len) }),
  });
  if (!split) return [pass];
  return thenWeightReduce(gpu, pass, { ...l, sums, splits: p.splits, len });
}
