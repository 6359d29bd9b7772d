// The model zoo's numbers, measured with the CLI: each model trained over several seeds with its own
// train settings, its test accuracy (mean and spread) and training seconds, as README table rows;
// optionally an ensemble of a model's runs through `fmgpu eval RUN RUN …`.
//   node dist/bench/zoo.js [--models a.net,b.net] [--seeds 1,2] [--ensemble best.net:3] [--out DIR]
//                          [--data DIR] [--budget SECONDS] [--subset N (smoke runs)]
// Runs live in --out (default runs/zoo/<model>-s<seed>): a finished run is read, not retrained; an
// interrupted one is resumed. With --budget, the run in progress is stopped with SIGINT (the CLI
// writes a checkpoint and exits 130) when the budget is spent, so a GPU session of limited length
// can end cleanly and the next invocation continue where it stopped.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseNet } from '../dsl/index.ts';
import { benchArgs } from './common.ts';

const { opt } = benchArgs();
const models = opt('models', 'examples/reference.net,examples/tutorial-valid.net,examples/fast.net,examples/best.net').split(',');
const seeds = opt('seeds', '1,2').split(',').map(Number);
const ensembles = new Map(opt('ensemble', 'examples/best.net:3').split(',').filter(Boolean).map((e) => [e.split(':')[0]!, Number(e.split(':')[1] ?? 3)]));
const outDir = opt('out', 'runs/zoo');
const data = opt('data', '');
// Smoke runs only: the first N training images (the numbers are then not the zoo's).
const subset = opt('subset', '');
const deadline = Date.now() + Number(opt('budget', 'Infinity')) * 1000;
const cli = join(import.meta.dirname, '..', '..', 'bin', 'fmgpu.js');

/** Runs the CLI, forwarding its output; stopped with SIGINT at the deadline. Resolves to its exit code. */
function fmgpu(argv: string[]): Promise<number> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [cli, ...argv], { stdio: ['ignore', 'inherit', 'inherit'] });
    const timer = Number.isFinite(deadline) ? setTimeout(() => child.kill('SIGINT'), Math.max(0, deadline - Date.now())) : null;
    child.on('exit', (code) => {
      if (timer) clearTimeout(timer);
      done(code ?? 1);
    });
  });
}

interface Result { seconds: number; accuracy: number; epochs: number }

/** Trains (or resumes) one run to the end; null when the budget ran out first. */
async function run(model: string, seed: number): Promise<Result | null> {
  const dir = join(outDir, `${basename(model, '.net')}-s${seed}`);
  if (!existsSync(join(dir, 'metrics.json'))) {
    if (Date.now() >= deadline) return null;
    const dataArgs = [...(data ? ['--data', data] : []), ...(subset ? ['--subset', subset] : [])];
    const code = existsSync(join(dir, 'checkpoint')) ? await fmgpu(['train', '--resume', dir, ...dataArgs]) : await fmgpu(['train', model, '--seed', String(seed), '--out', dir, ...dataArgs]);
    if (code === 130) return null;
    if (code !== 0) throw new Error(`fmgpu train ${model} --seed ${seed} exited ${code}`);
  }
  const history = JSON.parse(readFileSync(join(dir, 'history.json'), 'utf8')) as { seconds: number }[];
  const metrics = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')) as { test_accuracy: number };
  return { seconds: history.reduce((a, e) => a + e.seconds, 0), accuracy: metrics.test_accuracy, epochs: history.length };
}

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;
const rows: string[] = [];
for (const model of models) {
  const ir = parseNet(readFileSync(model, 'utf8'), model);
  const n = Math.max(seeds.length, ensembles.get(model) ?? 0);
  const results: Result[] = [];
  for (let i = 0; i < n; i++) {
    const r = await run(model, i < seeds.length ? seeds[i]! : i + 1);
    if (r) results.push(r);
  }
  if (results.length === 0) {
    rows.push(`| ${model} | (not finished: resume with the same command) |`);
    continue;
  }
  const accs = results.slice(0, seeds.length).map((r) => r.accuracy);
  const mean = accs.reduce((a, b) => a + b, 0) / accs.length;
  const spread = (Math.max(...accs) - Math.min(...accs)) / 2;
  const secs = results.slice(0, seeds.length).map((r) => r.seconds);
  const params = (ir.params.trainable + ir.params.nonTrainable).toLocaleString('en-US');
  rows.push(`| ${model} | ${pct(mean)} ± ${(spread * 100).toFixed(2)} (${accs.length} seeds) | ${params} | ${results[0]!.epochs} | ${(secs.reduce((a, b) => a + b, 0) / secs.length).toFixed(1)} s |`);
  const k = ensembles.get(model);
  if (k && results.length >= k) {
    const dirs = Array.from({ length: k }, (_, i) => join(outDir, `${basename(model, '.net')}-s${i < seeds.length ? seeds[i] : i + 1}`));
    const out = await new Promise<string>((done) => {
      const child = spawn(process.execPath, [cli, 'eval', ...dirs, '--json', ...(data ? ['--data', data] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (b: Buffer) => (text += b));
      child.on('exit', () => done(text));
    });
    const averaged = out.trim().split('\n').map((l) => JSON.parse(l) as { ensemble?: string; test_accuracy: number }).find((e) => e.ensemble === 'averaged probabilities');
    if (averaged) rows.push(`| ensemble of ${k} runs of ${model} (averaged probabilities) | ${pct(averaged.test_accuracy)} | | | |`);
  }
}
console.log('| model | test accuracy (mean ± half range) | params | epochs | training seconds (mean) |');
console.log('|---|---|---:|---:|---:|');
for (const r of rows) console.log(r);
