// The model zoo's numbers, measured with the CLI: each model trained over several seeds with its own
// train settings, its test accuracy (mean and spread) and training seconds, as README table rows;
// optionally an ensemble of a model's runs through `fmgpu eval RUN RUN …`.
//   node dist/bench/zoo.js [--models a.net,b.net] [--seeds 1,2] [--ensemble best.net:3] [--out DIR]
//                          [--data DIR] [--budget SECONDS] [--subset N (smoke runs)] [--json]
// --json: one JSON line per model (bench/gpu-check.sh), the CLI's own output on stderr.
// Runs live in --out (default runs/zoo/<model>-s<seed>): a finished run is read, not retrained; an
// interrupted one is resumed. With --budget, the run in progress is stopped with SIGINT (the CLI
// writes a checkpoint and exits 130) when the budget is spent, so a GPU session of limited length
// can end cleanly and the next invocation continue where it stopped.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseNet } from '../dsl/index.ts';
import { benchArgs } from './common.ts';
import { checkpointFolder } from '../src/node/rundir.ts';

const { opt, json } = benchArgs();
const models = opt(
  'models',
  'examples/reference.net,examples/tutorial-valid.net,examples/fast.net,examples/best.net',
).split(',');
const seeds = opt('seeds', '1,2').split(',').map(Number);
const ensembles = new Map(
  opt('ensemble', 'examples/best.net:3')
    .split(',')
    .filter(Boolean)
    .map((e) => [e.split(':')[0]!, Number(e.split(':')[1] ?? 3)]),
);
const outDir = opt('out', 'runs/zoo');
const data = opt('data', '');
// Smoke runs only: the first N training images (the numbers are then not the zoo's).
const subset = opt('subset', '');
const deadline = Date.now() + Number(opt('budget', 'Infinity')) * 1000;
const cli = join(import.meta.dirname, '..', '..', 'bin', 'fmgpu.js');

/** Runs the CLI, forwarding its output; stopped with SIGINT at the deadline. Resolves to its exit code. */
function fmgpu(argv: string[]): Promise<number> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [cli, ...argv], { stdio: ['ignore', json ? 2 : 'inherit', 'inherit'] });
    const timer = Number.isFinite(deadline)
      ? setTimeout(() => child.kill('SIGINT'), Math.max(0, deadline - Date.now()))
      : null;
    child.on('exit', (code) => {
      if (timer) clearTimeout(timer);
      done(code ?? 1);
    });
  });
}

interface Result {
  seconds: number;
  accuracy: number;
  epochs: number;
}

/** Trains (or resumes) one run to the end; null when the budget ran out first. */
async function run(model: string, seed: number): Promise<Result | null> {
  const dir = runDir(model, seed);
  if (!existsSync(join(dir, 'metrics.json'))) {
    if (Date.now() >= deadline) return null;
    const dataArgs = [...(data ? ['--data', data] : []), ...(subset ? ['--subset', subset] : [])];
    const code = checkpointFolder(dir)
      ? await fmgpu(['train', '--resume', dir, ...dataArgs])
      : await fmgpu(['train', model, '--seed', String(seed), '--out', dir, ...dataArgs]);
    if (code === 130) return null;
    if (code !== 0) throw new Error(`fmgpu train ${model} --seed ${seed} exited ${code}`);
  }
  const history = JSON.parse(readFileSync(join(dir, 'history.json'), 'utf8')) as { seconds: number }[];
  const metrics = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')) as { test_accuracy: number };
  return {
    seconds: history.reduce((a, e) => a + e.seconds, 0),
    accuracy: metrics.test_accuracy,
    epochs: history.length,
  };
}

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;
const runDir = (model: string, seed: number): string => join(outDir, `${basename(model, '.net')}-s${seed}`);

/** Runs `fmgpu eval` on runs as JSON Lines; null when it fails (its error is on stderr). */
function evalJson(dirs: string[]): Promise<{ ensemble?: string; test_accuracy: number }[] | null> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [cli, 'eval', ...dirs, '--json', ...(data ? ['--data', data] : [])], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let text = '';
    child.stdout.on('data', (b: Buffer) => (text += b));
    child.on('exit', (code) =>
      done(
        code === 0
          ? text
              .split('\n')
              .filter((l) => l.trim())
              .map((l) => JSON.parse(l))
          : null,
      ),
    );
  });
}

const rows: string[] = [];
const records: Record<string, unknown>[] = [];
for (const model of models) {
  const ir = parseNet(readFileSync(model, 'utf8'), model);
  // The seeds asked for, then as many more unused ones as the ensemble needs.
  const all = [...seeds];
  for (let s = Math.max(0, ...seeds) + 1; all.length < (ensembles.get(model) ?? 0); s++) all.push(s);
  const results = new Map<number, Result>();
  for (const seed of all) {
    const r = await run(model, seed);
    if (r) results.set(seed, r);
  }
  const mine = seeds.map((s) => results.get(s)).filter((r): r is Result => !!r);
  if (mine.length < seeds.length) {
    rows.push(`| ${model} | (${mine.length} of ${seeds.length} runs finished: run the same command again to resume) |`);
    records.push({ bench: 'zoo', model, finished: false, runs: mine.length, seeds: seeds.length });
    continue;
  }
  const accs = mine.map((r) => r.accuracy);
  const mean = accs.reduce((a, b) => a + b, 0) / accs.length;
  const spread = (Math.max(...accs) - Math.min(...accs)) / 2;
  const seconds = mine.reduce((a, r) => a + r.seconds, 0) / mine.length;
  const params = ir.params.trainable + ir.params.nonTrainable;
  const accuracy = `${pct(mean)} ± ${(spread * 100).toFixed(2)}`;
  rows.push(
    `| ${model} | ${accuracy} (${accs.length} seeds) | ${params.toLocaleString('en-US')} | ` +
      `${mine[0]!.epochs} | ${seconds.toFixed(1)} s |`,
  );
  const record: Record<string, unknown> = {
    bench: 'zoo',
    model,
    finished: true,
    accuracy,
    test_accuracies: accs,
    seeds: accs.length,
    params,
    epochs: mine[0]!.epochs,
    seconds: +seconds.toFixed(2),
  };
  const k = ensembles.get(model);
  if (k && all.slice(0, k).every((s) => results.has(s))) {
    const lines = await evalJson(all.slice(0, k).map((s) => runDir(model, s)));
    const averaged = lines?.find((e) => e.ensemble === 'averaged probabilities');
    rows.push(
      averaged
        ? `| ensemble of ${k} runs of ${model} (averaged probabilities) | ${pct(averaged.test_accuracy)} | | | |`
        : `| ensemble of ${k} runs of ${model} | (fmgpu eval failed: see above) | | | |`,
    );
    record.ensemble = averaged ? `of ${k} runs: ${pct(averaged.test_accuracy)}` : `of ${k} runs: fmgpu eval failed`;
  }
  records.push(record);
}
if (json) for (const r of records) console.log(JSON.stringify(r));
else {
  console.log('| model | test accuracy (mean ± half range) | params | epochs | training seconds (mean) |');
  console.log('|---|---|---:|---:|---:|');
  for (const r of rows) console.log(r);
}
