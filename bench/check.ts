// The bookkeeping of bench/gpu-check.sh (no benchmark itself): the adapter record, synthetic data
// where the real set is missing, each part's outcome, and the compact table of everything in OUT.
//   node dist/bench/check.js begin OUT [KEY=VALUE]…   OUT/run.json begun afresh: what this run is (commit, …)
//   node dist/bench/check.js meta OUT KEY=VALUE…      more of that
//   node dist/bench/check.js adapter OUT              the adapter, its features and limits, into run.json; prints
//                                                     "GPU|CPU DEVICE yes|no" (DEVICE: its cost-model profile in
//                                                     bench/devices/; then whether it has timestamp queries)
//   node dist/bench/check.js synth DIR TRAIN TEST               Fashion-MNIST-shaped idx files, learnable noise
//   node dist/bench/check.js record OUT PART STATUS SECONDS BOX EXIT [NOTE…]   a part's outcome into run.json
//   node dist/bench/check.js table OUT                          the table (under 100 lines), printed and kept
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { adapterName } from '../src/gpu/device.ts';
import { openNodeGpu } from '../src/node/gpu.ts';
import { Rng } from '../src/util/rng.ts';
import { fmgpuLine, inferLine, type FmgpuInferRow, type FmgpuTrainRow } from './common.ts';

type Row = Record<string, unknown>;

interface Part {
  part: string;
  status: string;
  seconds: number;
  box: number;
  exit: number | null;
  note: string;
}

interface Run {
  bench: 'gpu-check';
  meta: Record<string, string>;
  adapter: Row | null;
  parts: Part[];
  table: string[];
}

const runFile = (out: string): string => join(out, 'run.json');

function readRun(out: string): Run {
  if (existsSync(runFile(out))) return JSON.parse(readFileSync(runFile(out), 'utf8')) as Run;
  return { bench: 'gpu-check', meta: {}, adapter: null, parts: [], table: [] };
}

function writeRun(out: string, run: Run): void {
  writeFileSync(runFile(out), `${JSON.stringify({ ...run, table: table(out, run) }, null, 1)}\n`);
}

/** The JSON lines of OUT/name (others, a cut last line included, are skipped); [] when it is not there. */
function lines(out: string, name: string): Row[] {
  const path = join(out, name);
  if (!existsSync(path)) return [];
  const rows: Row[] = [];
  for (const l of readFileSync(path, 'utf8').split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      rows.push(JSON.parse(l) as Row);
    } catch {
      // a line cut by a time box
    }
  }
  return rows;
}

function json(out: string, name: string): Row | null {
  try {
    return JSON.parse(readFileSync(join(out, name), 'utf8')) as Row;
  } catch {
    return null;
  }
}

const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;
const n0 = (x: unknown): string => (typeof x === 'number' ? Math.round(x).toLocaleString('en-US') : '?');
const f1 = (x: unknown): string => (typeof x === 'number' ? x.toFixed(1) : '?');
/** Microseconds: one decimal below 1,000, whole numbers with commas above. */
const us = (x: unknown): string => (typeof x === 'number' && x >= 1000 ? n0(x) : f1(x));

async function adapter(out: string): Promise<void> {
  const gpu = await openNodeGpu();
  const a = gpu.adapter;
  const limits: Record<string, number> = {};
  for (const k in gpu.limits) {
    const v = (gpu.limits as unknown as Record<string, unknown>)[k];
    if (typeof v === 'number') limits[k] = v;
  }
  const record: Row = {
    name: adapterName(a),
    kind: a.cpu ? 'CPU' : 'GPU',
    ...a,
    features: [...gpu.device.features].sort(),
    timestamps: gpu.hasTimestamps,
    tuning: {
      gemmSide: gpu.gemmSide,
      lanes: gpu.lanes,
      spreadLimit: gpu.spreadLimit,
      treeThreads: gpu.treeThreads,
      usableLanes: gpu.usableLanes,
    },
    limits,
  };
  gpu.destroy();
  writeRun(out, { ...readRun(out), adapter: record });
  const text = `${a.vendor} ${a.device} ${a.description}`;
  console.log(`${a.cpu ? 'CPU' : 'GPU'} ${/H200/i.test(text) ? 'h200' : 'h100'} ${record.timestamps ? 'yes' : 'no'}`);
}

/** Fashion-MNIST-shaped idx files (uncompressed): class c is a bright bar at row band c, plus noise. */
function synth(dir: string, nTrain: number, nTest: number): void {
  mkdirSync(dir, { recursive: true });
  for (const [prefix, n, seed] of [
    ['train', nTrain, 1],
    ['t10k', nTest, 2],
  ] as const) {
    const rng = new Rng(seed);
    const images = new Uint8Array(16 + n * 784),
      labels = new Uint8Array(8 + n);
    const hi = new DataView(images.buffer),
      hl = new DataView(labels.buffer);
    [2051, n, 28, 28].forEach((v, i) => hi.setUint32(4 * i, v));
    [2049, n].forEach((v, i) => hl.setUint32(4 * i, v));
    for (let i = 0; i < n; i++) {
      const c = rng.int(10);
      labels[8 + i] = c;
      const at = 16 + i * 784;
      for (let p = 0; p < 784; p++) images[at + p] = rng.int(40);
      for (let yy = 2 + c * 2; yy < 4 + c * 2; yy++)
        for (let xx = 4; xx < 24; xx++) images[at + yy * 28 + xx] = 200 + rng.int(55);
    }
    writeFileSync(join(dir, `${prefix}-images-idx3-ubyte`), images);
    writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte`), labels);
  }
}

function record(out: string, argv: string[]): void {
  const [part = '?', status = '?', seconds = '0', box = '0', exit = '', ...note] = argv;
  const run = readRun(out);
  run.parts.push({
    part,
    status,
    seconds: Number(seconds),
    box: Number(box),
    exit: exit === '' ? null : Number(exit),
    note: note.join(' '),
  });
  writeRun(out, run);
}

/** Measured (profile.jsonl) beside predicted (cost.json): per batch, the step and its three longest dispatches. */
function profileLines(out: string, run: Run): string[] {
  const measured = lines(out, 'profile.jsonl').filter((r) => r.bench === 'profile');
  const cost = json(out, 'cost.json');
  const steps = Array.isArray(cost?.steps) ? (cost.steps as Row[]) : [];
  const model = String(measured[0]?.model ?? run.meta.model ?? 'examples/reference.net');
  const device = String(cost?.device ?? run.meta.cost_device ?? '?');
  const batches = [...new Set([...measured.map((r) => Number(r.batch)), ...steps.map((s) => Number(s.batch))])];
  if (batches.length === 0) return [];
  const outLines = [`per-dispatch profile, ${model}: measured (kernels alone) beside predicted on ${device}`];
  for (const batch of batches.sort((a, b) => a - b)) {
    const mine = measured.filter((r) => Number(r.batch) === batch);
    const step = steps.find((s) => Number(s.batch) === batch);
    const predicted = Array.isArray(step?.dispatches) ? (step.dispatches as Row[]) : [];
    const sum = mine.reduce((a, r) => a + Number(r.us ?? 0), 0);
    const said: string[] = [];
    if (mine.length > 0)
      said.push(`measured ${us(sum)} µs in ${mine.length} dispatches (${n0((batch / sum) * 1e6)} images/s bound)`);
    if (step)
      said.push(
        `predicted ${us(step.stepUs)} µs in ${predicted.length} dispatches with gaps ` +
          `(${n0(step.imagesPerSecond)} images/s)`,
      );
    outLines.push(`  batch ${batch}: ${said.join(', ')}`);
    for (const r of [...mine].sort((a, b) => Number(b.us) - Number(a.us)).slice(0, 3)) {
      // By position, else by label (a CPU adapter's plan differs from the GPU plan the model prices).
      const at = predicted[Number(r.i)];
      const p = at?.label === r.label ? at : predicted.find((x) => x.label === r.label);
      const match = p ? `predicted ${us(p.us)} µs, ${String(p.bound)}` : 'not in the plan';
      const label = String(r.label);
      outLines.push(
        `    #${String(r.i).padStart(2)} ${(label.length > 54 ? `${label.slice(0, 53)}…` : label).padEnd(54)} ` +
          `${String(r.workgroups ?? '').padEnd(10)} ${us(r.us).padStart(9)} µs  (${match})`,
      );
    }
  }
  const refit = run.meta.refit && existsSync(join(out, run.meta.refit));
  if (existsSync(join(out, 'log.txt'))) {
    const fits = readFileSync(join(out, 'log.txt'), 'utf8')
      .split('\n')
      .filter((l) => /^\s+refit \S+: /.test(l))
      .slice(0, 6);
    for (const l of fits) outLines.push(`  ${l.trim()}`);
  }
  if (refit) outLines.push(`  refit profile: ${run.meta.refit} (cost.js --measured; see bench/README.md)`);
  return outLines;
}

function speedLines(out: string): string[] {
  const rows = lines(out, 'speed.jsonl');
  const train = rows.filter((r) => r.bench === 'train') as unknown as FmgpuTrainRow[];
  const infer = rows.filter((r) => r.bench === 'infer') as unknown as FmgpuInferRow[];
  const peer = rows.filter((r) => r.bench === 'peer' || r.bench === 'peer-infer');
  if (train.length + infer.length + peer.length === 0) return [];
  const model = String(train[0]?.model ?? infer[0]?.model ?? 'examples/reference.net');
  const result = [`training and inference, ${model}`];
  for (const r of train) result.push(fmgpuLine(r));
  for (const r of infer) result.push(inferLine(r));
  for (const r of peer) {
    const who = `${String(r.peer)} ${String(r.mode)}`;
    if (r.skipped) result.push(`${who} batch=${String(r.batch ?? '-')}: skipped (${String(r.skipped)})`);
    else if (r.bench === 'peer')
      result.push(
        `${who} batch=${String(r.batch)}: ${n0(r.images_per_s)} images/s ` +
          `(${String(r.precision)}, ${String(r.device)}, ${String(r.steps)} steps)`,
      );
    else result.push(`${who} infer: ${n0(r.images_per_s)} images/s (${String(r.device)})`);
  }
  const ratios = train
    .map((t) => {
      const p = peer.find((r) => r.bench === 'peer' && r.mode === 'eager' && Number(r.batch) === t.batch);
      return p?.images_per_s ? `batch=${t.batch} ${(t.images_per_s / Number(p.images_per_s)).toFixed(3)}×` : '';
    })
    .filter(Boolean);
  if (ratios.length > 0) result.push(`fmgpu / pytorch eager, training: ${ratios.join(', ')}`);
  return result;
}

function accuracyLines(out: string): string[] {
  const rows = lines(out, 'accuracy.jsonl');
  const result: string[] = [];
  const epochs = rows.filter((r) => r.bench === 'accuracy');
  const summaries = rows.filter((r) => r.bench === 'accuracy-summary');
  for (const model of [...new Set(epochs.map((r) => String(r.model)))]) {
    const mine = epochs.filter((r) => r.model === model);
    const s = summaries.find((r) => r.model === model);
    const best = Math.max(...mine.map((r) => Number(r.test_accuracy)));
    const hit = Object.entries(s ?? {}).filter(([k]) => k.startsWith('seconds_to_'));
    const reached = hit.map(([k, v]) => `${k.slice(11)}%: ${v === null ? 'not reached' : `${f1(v)} s`}`);
    result.push(
      `time to accuracy, ${model}: ${plural(mine.length, 'epoch')} in ${f1(mine.at(-1)?.train_seconds)} s, ` +
        `best ${best.toFixed(2)}%` +
        (s ? `; ${reached.join(', ')}` : ' (cut by its time box before the last epoch)'),
    );
  }
  const zoo = rows.filter((r) => r.bench === 'zoo');
  if (zoo.length > 0) result.push('zoo (bench/zoo.js):');
  for (const r of zoo)
    result.push(
      r.finished === false
        ? `  ${String(r.model)}: ${String(r.runs)} of ${String(r.seeds)} runs finished`
        : `  ${String(r.model)}: ${String(r.accuracy)} (${plural(Number(r.seeds), 'seed')}), ${f1(r.seconds)} s` +
            (r.ensemble ? `; ensemble ${String(r.ensemble)}` : ''),
    );
  return result;
}

function table(out: string, run: Run): string[] {
  const m = run.meta;
  const a = run.adapter;
  const t: string[] = [
    `fmgpu gpu-check ${m.date ?? ''}  commit ${m.commit ?? 'unknown'}  budget ${m.budget ?? '?'} s` +
      `${m.smoke === '1' ? '  (--smoke: tiny sizes, numbers not comparable)' : ''}`,
  ];
  if (a) {
    const l = (a.limits ?? {}) as Record<string, number>;
    t.push(`adapter: ${String(a.name)}  [${a.kind === 'CPU' ? 'CPU adapter, not a GPU' : 'GPU'}]`);
    t.push(
      `  subgroups ${String(a.subgroupSize ?? 'varying')}, timestamps ${a.timestamps ? 'yes' : 'no'}, ` +
        `invocations/workgroup ${l.maxComputeInvocationsPerWorkgroup}, ` +
        `workgroup memory ${l.maxComputeWorkgroupStorageSize} B, ` +
        `storage binding ${n0(l.maxStorageBufferBindingSize)} B`,
    );
  } else t.push('adapter: none opened (see log.txt)');
  t.push(`data: ${m.data ?? '?'} (${m.data_kind ?? '?'})`);
  t.push('parts:');
  for (const p of run.parts) {
    const time = p.status === 'skipped' ? '' : `${String(p.seconds).padStart(4)} s of ${String(p.box).padStart(4)}  `;
    t.push(`  ${p.part.padEnd(15)} ${p.status.padEnd(8)} ${time}${p.note}`.trimEnd());
  }
  const probes = lines(out, 'probes.jsonl').filter((r) => r.bench === 'probe');
  if (probes.length > 0) t.push('calibration probes (kernels.js --probe):');
  for (const r of probes)
    t.push(
      `  ${String(r.kernel).padEnd(12)} ${String(r.variant).padEnd(8)} ${String(r.shape).padEnd(18)} ` +
        `${Number(r.ms).toFixed(3).padStart(10)} ms ${n0(r.gflops).padStart(8)} GFLOP/s  ` +
        `${Array.isArray(r.dispatches) ? r.dispatches.length : '?'} dispatch(es)  ` +
        `err ${Number(r.maxErr).toExponential(1)}`,
    );
  const bits = lines(out, 'probes.jsonl').filter((r) => r.bench === 'bits');
  if (bits.length > 0) t.push('fused against unfused training (bits.js):');
  for (const r of bits) {
    const same =
      Number(r.differing) === 0 ? 'bit for bit' : `${r.differing} of ${r.values} differ, max |Δ| ${r.maxAbsDiff}`;
    t.push(`  ${String(r.model).padEnd(24)} batch ${r.batch} (${r.family}): ${same}`);
  }
  t.push(...profileLines(out, run), ...speedLines(out), ...accuracyLines(out));
  t.push(`files: ${m.out ?? out} (bench/README.md says what to do with them)`);
  return t.slice(0, 99);
}

const [cmd = '', out = 'bench-out', ...rest] = process.argv.slice(2);
const pairs = (xs: string[]): Record<string, string> =>
  Object.fromEntries(xs.map((x) => [x.slice(0, x.indexOf('=')), x.slice(x.indexOf('=') + 1)]));
if (cmd === 'begin') {
  mkdirSync(out, { recursive: true });
  writeRun(out, { bench: 'gpu-check', meta: pairs(rest), adapter: null, parts: [], table: [] });
} else if (cmd === 'meta') {
  const run = readRun(out);
  writeRun(out, { ...run, meta: { ...run.meta, ...pairs(rest) } });
} else if (cmd === 'adapter')
  await adapter(out).catch((e: Error) => {
    console.error(`fmgpu gpu-check: ${e.message}`);
    process.exit(1);
  });
else if (cmd === 'synth') synth(out, Number(rest[0] ?? 60000), Number(rest[1] ?? 10000));
else if (cmd === 'record') record(out, rest);
else if (cmd === 'table') {
  const run = readRun(out);
  writeRun(out, run);
  for (const l of table(out, run)) console.log(l);
} else {
  console.error('usage: check.js begin|meta|adapter|synth|record|table OUT … (see bench/check.ts)');
  process.exit(2);
}
