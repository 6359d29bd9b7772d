// What a training step costs on a GPU, predicted on any machine (no GPU needed): every dispatch of
// the step as a GPU plans it (bench/cost-plan.ts), priced by the cost model (src/gpu/cost.ts) on a
// device profile (bench/devices/NAME.json). A prediction, never a measurement.
//   node dist/bench/cost.js MODEL.net [--batch 64,256] [--device h100|h200|igpu|FILE.json] [--json]
//        [--accumulators registers|indexed]      every GEMM's accumulators forced in or out of registers
//        [--no-winograd]                         every conv forward by the direct GEMM (GpuTuning.winograd)
//        [--fusions]                             also the planner's fused kernels, one line each, and at
//                                                each batch the gather, Winograd and narrow passes, the
//                                                GEMMs side by side, the loss and the step's end
//        [--measured PROFILE.jsonl [--out NEW.json]]   measured beside predicted (bench/profile.ts --json
//                                                      from a GPU), and the per-family factors refit
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseNet } from '../dsl/index.ts';
import { refit, type Sample } from '../src/gpu/calibrate.ts';
import { predictStep, withAccumulators, type Described, type StepCost } from '../src/gpu/cost.ts';
import { profileLimits, type DeviceProfile } from '../src/gpu/profile.ts';
import { benchArgs } from './common.ts';
import { loadProfile, planTrainStep, predictedLine } from './cost-plan.ts';
import { deviceLines, fusionLines } from '../src/train/step-plan.ts';

const n0 = (x: number): string => Math.round(x).toLocaleString('en-US');
const fix = (x: number, d = 1): string => x.toFixed(d);

function table(c: StepCost): string[] {
  const head = ['#', 'dispatch', 'workgroups', 'threads', 'waves', 'occ%', 'MFLOP', 'KB', 'bound', 'µs'];
  const rows = c.dispatches.map((d, i) => [
    String(i),
    d.label.length > 68 ? `${d.label.slice(0, 67)}…` : d.label,
    n0(d.workgroups),
    String(d.threads),
    String(d.waves),
    fix(100 * d.occupancy),
    fix(d.flops / 1e6, 2),
    n0(d.bytes / 1024),
    d.bound,
    fix(d.us),
  ]);
  const widths = head.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j]!.length)));
  const line = (r: string[]): string =>
    `  ${r.map((x, j) => (j === 1 || j === 8 ? x.padEnd(widths[j]!) : x.padStart(widths[j]!))).join('  ')}`;
  return [line(head), ...rows.map(line)];
}

function summary(c: StepCost, p: DeviceProfile): string[] {
  const gaps = c.dispatches.length * p.v.dispatchUs;
  const byBound = new Map<string, number>();
  for (const d of c.dispatches) byBound.set(d.bound, (byBound.get(d.bound) ?? 0) + d.us);
  const shares = [...byBound].sort((a, b) => b[1] - a[1]).map(([b, us]) => `${b} ${fix((100 * us) / c.stepUs, 0)}%`);
  const gapShare = fix((100 * gaps) / c.stepUs, 0);
  return [
    `  step ${fix(c.stepUs)} µs on the GPU (of which dispatch gaps ${fix(gaps, 0)} µs, ${gapShare}%)` +
      ` + ${fix(c.submitUs, 2)} µs of a submit; by deciding bound: ${shares.join(', ')}`,
  ];
}

function printText(file: string, p: DeviceProfile, costs: { cost: StepCost; spilled: StepCost }[]): void {
  console.log(`fmgpu cost model (a prediction, not a measurement): ${file} on ${p.name}, ${p.device}`);
  console.log('planned on a stand-in GPU device: GPU workgroup sizes, no lane kernels; nothing compiled or run');
  for (const { cost, spilled } of costs) {
    console.log(`\nbatch ${cost.batch}:`);
    for (const l of table(cost)) console.log(l);
    console.log(predictedLine(cost));
    for (const l of summary(cost, p)) console.log(l);
    const what = "if every GEMM's accumulators left registers (the b46cd8a kernels' pattern)";
    console.log(`  ${what}: ${n0(spilled.imagesPerSecond)} images/s`);
    console.log(cost.flags.length > 0 ? '  flags:' : '  flags: none');
    for (const f of cost.flags) console.log(`  - ${f}`);
  }
}

const jsonOf = (c: StepCost) => ({
  batch: c.batch,
  device: c.device,
  imagesPerSecond: Math.round(c.imagesPerSecond),
  stepUs: c.stepUs,
  submitUs: c.submitUs,
  dispatches: c.dispatches.map((d) => ({
    label: d.label,
    workgroups: d.workgroups,
    threads: d.threads,
    flops: d.flops,
    bytes: d.bytes,
    bound: d.bound,
    us: d.us,
  })),
  flags: c.flags,
});

interface MeasuredRow {
  batch: number;
  i: number;
  label: string;
  us: number;
  adapter?: string;
  date?: string;
}

/** Measured (bench/profile.ts --json) beside predicted, and the factors refit into a new profile. */
function measured(file: string, p: DeviceProfile, path: string, steps: Map<number, Described[]>, out?: string): void {
  const rows = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as MeasuredRow & { bench?: string })
    .filter((r) => r.bench === 'profile');
  const samples: Sample[] = [];
  console.log(`\nmeasured (${file}) beside predicted, kernels alone (timestamps do not see the dispatch gap):`);
  for (const r of rows) {
    const d = steps.get(r.batch)?.[r.i];
    if (!d || d.label !== r.label) {
      console.log(`  batch ${r.batch} #${r.i} ${r.label}: not in this plan (another commit or model?), skipped`);
      continue;
    }
    const pred = predictStep([d], r.batch, p).dispatches[0]!;
    console.log(
      `  batch ${r.batch} #${String(r.i).padStart(2)} ${r.label.padEnd(58)} measured ${fix(r.us).padStart(9)}` +
        ` µs  predicted ${fix(pred.kernelUs).padStart(9)} µs  ×${fix(pred.kernelUs / r.us, 2)}`,
    );
    if (r.us > 0) samples.push({ d, us: r.us });
  }
  const where = [file, rows[0]?.adapter, rows[0]?.date].filter(Boolean).join(', ');
  const { profile, fits } = refit(p, samples, where);
  for (const f of fits)
    console.log(
      `  refit ${f.key}: ${f.before} → ${f.after} (${f.samples} dispatches, median |log10 error| ` +
        `${fix(f.errorBefore, 2)} → ${fix(f.errorAfter, 2)})`,
    );
  if (!out) {
    console.log('  (give --out NEW.json to write the refit profile)');
    return;
  }
  if (resolve(out) === path) throw new Error(`--out ${out} is the profile itself: a refit never writes in place`);
  writeFileSync(out, `${JSON.stringify(profile.json, null, 2)}\n`);
  console.log(`  wrote ${out}`);
}

async function main(): Promise<void> {
  const { opt, file, json, args } = benchArgs();
  const { profile, path } = loadProfile(opt('device', 'h100'));
  const ir = parseNet(readFileSync(file, 'utf8'), file);
  const batches = opt('batch', String(ir.train.batch)).split(',').map(Number);
  const acc = opt('accumulators', 'described');
  if (!['described', 'registers', 'indexed'].includes(acc))
    throw new Error(`--accumulators ${acc}: expected registers or indexed`);
  // The stand-in device is the profile's: its limits, and its units for the GEMM tiles and splits.
  const limits = { ...profileLimits(profile), ...(args.includes('--no-winograd') ? { winograd: false } : {}) };
  const steps = new Map<number, Described[]>();
  const costs = batches.map((batch) => {
    const planned: Described[] = planTrainStep(ir, batch, limits);
    const step = acc === 'described' ? planned : withAccumulators(planned, acc === 'indexed');
    steps.set(batch, step);
    return {
      cost: predictStep(step, batch, profile),
      spilled: predictStep(withAccumulators(step, true), batch, profile),
    };
  });
  if (json) console.log(JSON.stringify({ model: file, device: profile.name, steps: costs.map((c) => jsonOf(c.cost)) }));
  else printText(file, profile, costs);
  if (args.includes('--fusions') && !json) {
    console.log(`\n${fusionLines(ir).join('\n')}`);
    for (const [batch, step] of steps) console.log(`\n${deviceLines(step, batch).join('\n')}`);
  }
  const m = args.indexOf('--measured');
  if (m >= 0) measured(args[m + 1] ?? '', profile, path, steps, args.includes('--out') ? opt('out', '') : undefined);
}

await main().catch((e: Error) => {
  console.error(`fmgpu cost: ${e.message}`);
  process.exit(1);
});
