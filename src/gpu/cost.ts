// The cost model: what a planned step costs on a device profile (profile.ts), from each dispatch's
// work description (work.ts), without running it. Per dispatch, with W workgroups of T threads:
//   resident R = min(workgroupsPerUnit, threadsPerUnit / T, sharedBytesPerUnit / sharedBytes)
//   waves = ⌈W / (units·R)⌉, busiest = ⌈W / units⌉ workgroups on the busiest unit,
//   occupancy = min(W, units·R)·T / (units·threadsPerUnit); a cycle is 1/clock.
//   gemm     issue I = max(warps·(tileK·acc + gather.stepOps) / (lanes/simd), warps·sharedLoads / wavefronts)
//            / e_gemm; once O = warps·gather.onceOps / (lanes/simd) (a gathered operand, work.ts, or a
//            transformed one, whose `transform` is read as `gather`; else 0)
//            compute = busiest·(kSteps·I + O)
//            latency = waves·(kSteps·(memory + 2·barrier + I) + O
//                      + ((gather.loads + tail.loads)·memory + tail.barriers·barrier) / e_chain)
//            (tail: a row-wise epilogue's chain after the K loop, work.ts ChainTail; else 0)
//   indexed  (accumulators out of registers) A = tileK·(acc + rows + cols) accesses per thread a step:
//            compute = busiest·kSteps·warps·(sharedLoads + A) / wavefronts / e_gemm
//            latency = waves·kSteps·(memory + 2·barrier + A·c_acc)
//   stream   latency = waves·perThread·loads·memory / e_chain
//   chain    latency = waves·(depth·memory + barriers·barrier) / e_chain
//   all      memory = bytes / (bandwidth·e_stream); compute ≥ flops / (units·lanes·2·clock)
//   pair     (two GEMMs' workgroups in one dispatch: pair.ts) each half priced alone, on the whole
//            device, as compute c, latency l; they share the units: compute = max(c_a, c_b,
//            (c_a·active_a + c_b·active_b) / units) with active = min(units, workgroups), latency alike
//   time = dispatchUs + max(compute, memory, latency); the bound is the largest of the four
//   (latency in a GEMM of fewer than 2·units workgroups, or compute on fewer than `units`, is
//   "few workgroups"). A step is the sum, plus its share of a submit (the trainer records 50 steps
//   per submit on a GPU).
import type { PairHalf, Work } from './work.ts';
import type { DeviceProfile } from './profile.ts';

/** A dispatch as the model needs it (a Dispatch is one; so is a stored description). */
export interface Described {
  label: string;
  workgroups: readonly number[];
  work: Work;
}

export type Family = 'gemm' | 'gemmIndexed' | 'stream' | 'chain';
export type Bound = 'dispatch gap' | 'compute' | 'memory' | 'latency chain' | 'few workgroups';

export interface DispatchCost {
  label: string;
  family: Family;
  workgroups: number;
  threads: number;
  waves: number;
  occupancy: number;
  flops: number;
  bytes: number;
  /** Dependent steps in one thread: K-steps, a chain's loads, a stream's loads per thread. */
  depth: number;
  computeUs: number;
  memoryUs: number;
  latencyUs: number;
  /** The kernel alone (what per-dispatch timestamps measure). */
  kernelUs: number;
  /** With the dispatch gap: its share of the step. */
  us: number;
  bound: Bound;
}

/** A pair's family is its first half's. */
export const familyOf = (w: Work): Family => {
  const s = w.shape;
  if (s.kind === 'pair') return familyOf(s.halves[0].work);
  if (s.kind === 'gemm') return s.indexed ? 'gemmIndexed' : 'gemm';
  return s.kind;
};

const product = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);

interface Placement {
  workgroups: number;
  warps: number;
  waves: number;
  busiest: number;
  active: number;
  occupancy: number;
}

function place(d: Described, p: DeviceProfile): Placement {
  const v = p.v;
  const workgroups = product(d.workgroups);
  const t = d.work.threads;
  const bySmem = d.work.sharedBytes > 0 ? Math.floor(v.sharedBytesPerUnit / d.work.sharedBytes) : Infinity;
  const resident = Math.max(1, Math.min(v.workgroupsPerUnit, Math.floor(v.threadsPerUnit / t), bySmem));
  const slots = v.units * resident;
  return {
    workgroups,
    warps: Math.ceil(t / v.simdWidth),
    waves: Math.ceil(workgroups / slots),
    busiest: Math.ceil(workgroups / v.units),
    active: Math.min(v.units, workgroups),
    occupancy: (Math.min(workgroups, slots) * t) / (v.units * v.threadsPerUnit),
  };
}

/** [compute, latency] cycles of a GEMM tile dispatch. */
function gemmCycles(w: Work, at: Placement, p: DeviceProfile): [number, number] {
  const s = w.shape;
  if (s.kind !== 'gemm') return [0, 0];
  const v = p.v;
  const acc = s.rowsPerThread * s.colsPerThread;
  const step = v.memoryCycles + 2 * v.barrierCycles;
  const fma = (at.warps * s.tileK * acc) / (v.fmaLanesPerUnit / v.simdWidth);
  const e = v['families.gemm.efficiency'];
  if (s.indexed) {
    // The spilled accesses queue behind the workgroup-memory loads on the same load/store pipe.
    const accesses = s.tileK * (acc + s.rowsPerThread + s.colsPerThread);
    const lsu = Math.max(fma, (at.warps * (s.sharedLoads + accesses)) / v.sharedWavefrontsPerClock) / e;
    const chain = step + accesses * v['families.gemmIndexed.cyclesPerAccess'];
    return [at.busiest * s.kSteps * lsu, at.waves * s.kSteps * chain];
  }
  // A gathered operand (work.ts GatherFetch) or a transformed one (Winograd's): decoded in the K loop
  // beside the FMAs, or once outside it after its dependent loads.
  const g = s.gather ?? s.transform ?? { stepOps: 0, onceOps: 0, loads: 0 };
  const alu = (ops: number): number => (at.warps * ops) / (v.fmaLanesPerUnit / v.simdWidth);
  const issue = Math.max(fma + alu(g.stepOps), (at.warps * s.sharedLoads) / v.sharedWavefrontsPerClock) / e;
  const once = alu(g.onceOps);
  // A row-wise epilogue's chain after the K loop (work.ts ChainTail), priced as a chain is.
  const t = s.tail ?? { loads: 0, barriers: 0 };
  const chain = (g.loads + t.loads) * v.memoryCycles + t.barriers * v.barrierCycles;
  const start = chain / v['families.chain.efficiency'] + once;
  return [at.busiest * s.kSteps * issue + at.busiest * once, at.waves * s.kSteps * (step + issue) + at.waves * start];
}

/** Latency cycles of a stream or a chain. */
function chainCycles(w: Work, at: Placement, p: DeviceProfile): number {
  const v = p.v;
  const s = w.shape;
  const e = v['families.chain.efficiency'];
  if (s.kind === 'stream') return (at.waves * s.perThread * s.loads * v.memoryCycles) / e;
  if (s.kind === 'chain') return (at.waves * (s.depth * v.memoryCycles + s.barriers * v.barrierCycles)) / e;
  return 0;
}

const depthOf = (w: Work): number => {
  const s = w.shape;
  if (s.kind === 'pair') return Math.max(...s.halves.map((h) => depthOf(h.work)));
  return s.kind === 'gemm' ? s.kSteps : s.kind === 'chain' ? s.depth : s.perThread * s.loads;
};

function boundOf(c: Omit<DispatchCost, 'bound'>, gap: number, units: number): Bound {
  const gemm = c.family === 'gemm' || c.family === 'gemmIndexed';
  const top = Math.max(c.computeUs, c.memoryUs, c.latencyUs);
  if (gap >= top) return 'dispatch gap';
  if (top === c.memoryUs) return 'memory';
  if (top === c.latencyUs) return gemm && c.workgroups < 2 * units ? 'few workgroups' : 'latency chain';
  return gemm && c.workgroups < units ? 'few workgroups' : 'compute';
}

/** A pair's compute and latency: its halves priced alone, sharing the units (the header's `pair`). */
function pairUs(w: Work, p: DeviceProfile): { computeUs: number; latencyUs: number } | null {
  if (w.shape.kind !== 'pair') return null;
  const units = p.v.units;
  const halves = w.shape.halves.map((h) => {
    const c = predictDispatch({ label: h.label, workgroups: [h.workgroups], work: h.work }, p);
    return { ...c, active: Math.min(units, h.workgroups) };
  });
  const shared = (us: (c: DispatchCost) => number): number =>
    Math.max(...halves.map(us), halves.reduce((a, c) => a + us(c) * c.active, 0) / units);
  return { computeUs: shared((c) => c.computeUs), latencyUs: shared((c) => c.latencyUs) };
}

/** One dispatch's predicted time on this device, with the bound that decides it. */
export function predictDispatch(d: Described, p: DeviceProfile): DispatchCost {
  const v = p.v;
  const w = d.work;
  const at = place(d, p);
  const perUs = v.clockGHz * 1000;
  const [gemmCompute, gemmLatency] = gemmCycles(w, at, p);
  const peakUs = w.paddedFlops / (v.units * v.fmaLanesPerUnit * 2 * perUs);
  const bytes = w.bytesRead + w.bytesWritten;
  const c = {
    label: d.label,
    family: familyOf(w),
    workgroups: at.workgroups,
    threads: w.threads,
    waves: at.waves,
    occupancy: at.occupancy,
    flops: w.flops,
    bytes,
    depth: depthOf(w),
    computeUs: Math.max(peakUs, gemmCompute / perUs),
    memoryUs: bytes / (v.memoryGBs * 1000 * v['families.stream.efficiency']),
    latencyUs: Math.max(gemmLatency, chainCycles(w, at, p)) / perUs,
    kernelUs: 0,
    us: 0,
  };
  const pair = pairUs(w, p);
  if (pair) [c.computeUs, c.latencyUs] = [Math.max(peakUs, pair.computeUs), pair.latencyUs];
  c.kernelUs = Math.max(c.computeUs, c.memoryUs, c.latencyUs);
  c.us = v.dispatchUs + c.kernelUs;
  return { ...c, bound: boundOf(c, v.dispatchUs, v.units) };
}

export interface StepCost {
  batch: number;
  device: string;
  dispatches: DispatchCost[];
  /** Σ dispatches' µs. */
  stepUs: number;
  /** This step's share of a submit. */
  submitUs: number;
  imagesPerSecond: number;
  flags: string[];
}

/** Steps the trainer records per submit on a GPU (src/train/trainer.ts, startFit). */
export const GPU_STEPS_PER_SUBMIT = 50;

/** A training step of `batch` images: every dispatch priced, summed, and what deserves a look flagged. */
export function predictStep(
  step: readonly Described[],
  batch: number,
  p: DeviceProfile,
  o: { stepsPerSubmit?: number } = {},
): StepCost {
  const dispatches = step.map((d) => predictDispatch(d, p));
  const stepUs = dispatches.reduce((a, d) => a + d.us, 0);
  const submitUs = p.v.submitUs / (o.stepsPerSubmit ?? GPU_STEPS_PER_SUBMIT);
  const cost = {
    batch,
    device: p.name,
    dispatches,
    stepUs,
    submitUs,
    imagesPerSecond: (batch * 1e6) / (stepUs + submitUs),
  };
  return { ...cost, flags: flagsOf(dispatches, stepUs, p) };
}

/** Few workgroups taking over 5% of the step, serial chains deeper than 64, gaps over 25% of the step. */
function flagsOf(ds: readonly DispatchCost[], stepUs: number, p: DeviceProfile): string[] {
  const units = p.v.units;
  const pct = (us: number): string => `${((100 * us) / stepUs).toFixed(1)}%`;
  const out: string[] = [];
  for (const d of ds) {
    if (d.workgroups < 2 * units && d.us > 0.05 * stepUs)
      out.push(`${d.label}: ${d.workgroups} workgroups (< 2 × ${units} units) take ${pct(d.us)} of the step`);
    if (d.depth > 64) {
      const what = d.family === 'gemm' || d.family === 'gemmIndexed' ? 'K-steps in each workgroup' : 'dependent loads';
      out.push(`${d.label}: a serial chain of ${d.depth} ${what} (> 64), ${pct(d.us)} of the step`);
    }
  }
  const gaps = ds.length * p.v.dispatchUs;
  if (gaps > 0.25 * stepUs)
    out.push(`dispatch gaps: ${ds.length} × ${p.v.dispatchUs} µs = ${gaps.toFixed(0)} µs, ${pct(gaps)} of the step`);
  return out;
}

/** The step with every GEMM's accumulators as described, or forced into (false) or out of (true) registers. */
export function withAccumulators(step: readonly Described[], indexed: boolean): Described[] {
  const of = (w: Work): Work => {
    const s = w.shape;
    if (s.kind === 'pair') {
      const [a, b] = s.halves.map((h) => ({ ...h, work: of(h.work) })) as [PairHalf, PairHalf];
      return { ...w, shape: { kind: 'pair', halves: [a, b] } };
    }
    return s.kind === 'gemm' ? { ...w, shape: { ...s, indexed } } : w;
  };
  // Not a spread of the dispatch: that would compile its kernel (Gpu.kernel compiles when first asked).
  return step.map((d) => ({ label: d.label, workgroups: d.workgroups, work: of(d.work) }));
}
