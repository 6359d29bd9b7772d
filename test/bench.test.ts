// The benchmarks run end to end on tiny data: smoke tests, so that a session with a GPU never spends
// its time on a broken script, bench/gpu-check.sh --smoke above all (the one command a GPU session
// runs). No figure here is checked, only that each part ran and the smoke's time stayed under its
// 2 minutes; bench/RESULTS.md holds the measurements.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, writeIdxDir } from './helpers/files.ts';

const tmp = mkdtempSync(join(tmpdir(), 'fmgpu-bench-'));
const data = join(tmp, 'data');
const tiny = join(tmp, 'tiny.net');

beforeAll(() => {
  ensureBuilt();
  writeIdxDir(data, 256, 100);
  writeFileSync(tiny, 'conv 4 3x3 relu\npool 4\ndense 10 softmax\ntrain epochs=3 batch=32 lr=0.01\n');
});

const dawnNoise = (s: string): string =>
  s
    .split('\n')
    .filter((l) => l && !l.includes('artificially reduced'))
    .join('\n');
function bench(script: string, ...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [`dist/bench/${script}.js`, ...args], {
    encoding: 'utf8',
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  });
  return { code: r.status, out: r.stdout, err: dawnNoise(r.stderr) };
}
const jsonLines = (out: string): Record<string, unknown>[] =>
  out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('benchmarks on tiny data', () => {
  it('kernels.js checks every kernel against its reference before timing it', () => {
    const r = bench('kernels', '--batch', '4', '--reps', '1', '--json');
    expect(r.code, r.err).toBe(0);
    const rows = jsonLines(r.out);
    expect(rows.map((x) => x.kernel)).toEqual(expect.arrayContaining(['matmul', 'conv fwd', 'conv dX', 'conv dW']));
    for (const x of rows)
      if (typeof x.maxErr === 'number' && !Number.isNaN(x.maxErr)) expect(x.maxErr, String(x.shape)).toBeLessThan(1e-5);
  });

  it('train.js prints its "fmgpu train batch=N: … images/s" line and JSON', () => {
    const r = bench('train', tiny, '--batch', '32', '--steps', '2', '--data', data);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^fmgpu train batch=32: [\d,]+ images\/s \(first epoch [\d,]+\), \d+ dispatches\/step/m);
    expect(r.out).toMatch(
      /^fmgpu infer: [\d,]+ images\/s \([\d,]+ test images in chunks of [\d,]+; first pass [\d,]+\)$/m,
    );
    const [row, infer] = jsonLines(bench('train', tiny, '--batch', '32', '--steps', '2', '--data', data, '--json').out);
    expect(row).toMatchObject({ bench: 'train', batch: 32, steps: 2 });
    expect(infer).toMatchObject({ bench: 'infer' });
    expect(infer!.images_per_s).toBeGreaterThan(0);
  });

  it('bits.js: fused and unfused training give the same weights (the GPU tiles on this adapter)', () => {
    const r = bench('bits', '--models', tiny, '--batch', '4', '--steps', '1', '--tiles');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(
      /^fused vs unfused .*tiny\.net batch=4 1 steps \(tiled, \d+ vs \d+ dispatches a step\): identical$/m,
    );
  });

  it('profile.js times every dispatch of a step', () => {
    const r = bench('profile', tiny, '--batch', '32', '--reps', '2', '--data', data);
    if (r.code === 1 && r.err.includes('no timestamp-query')) return; // an adapter without timestamps says so
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('by kernel:');
    expect(r.out).toMatch(/conv2d forward .* µs/);
  });

  it('accuracy.js: a run stopped by its budget continues from its checkpoint to the same scores', () => {
    const args = [tiny, '--data', data, '--seeds', '1', '--targets', '10,101', '--json'];
    const whole = jsonLines(bench('accuracy', ...args).out);
    const state = join(tmp, 'acc-state');
    const first = bench('accuracy', ...args, '--state', state, '--budget', '0');
    expect(first.code).toBe(3);
    expect(first.err).toContain('run the same command again to continue');
    expect(jsonLines(first.out)).toHaveLength(1);
    const rest = bench('accuracy', ...args, '--state', state);
    expect(rest.code, rest.err).toBe(0);
    // Everything but the seconds is the same as the uninterrupted run's.
    const strip = (rows: Record<string, unknown>[]) =>
      rows.map((x) => Object.fromEntries(Object.entries(x).filter(([k]) => !k.includes('seconds'))));
    expect(strip(jsonLines(rest.out))).toEqual(strip(whole));
    expect(whole.at(-1)).toMatchObject({ bench: 'accuracy-summary', epochs: 3, seconds_to_101: null });
    expect(whole.at(-1)!.seconds_to_10).toBeGreaterThan(0);
  });

  it('zoo.js: a README row per model (mean accuracy first) and the ensemble', () => {
    const r = bench(
      'zoo',
      '--models',
      tiny,
      '--seeds',
      '1,2',
      '--ensemble',
      `${tiny}:3`,
      '--out',
      join(tmp, 'zoo'),
      '--data',
      data,
    );
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(
      new RegExp(
        `^\\| ${tiny} \\| \\d+\\.\\d\\d% ± \\d+\\.\\d\\d \\(2 seeds\\) \\| 1,490 \\| 3 \\| [\\d.]+ s \\|$`,
        'm',
      ),
    );
    expect(r.out).toMatch(
      new RegExp(`^\\| ensemble of 3 runs of ${tiny} \\(averaged probabilities\\) \\| \\d+\\.\\d\\d% \\|`, 'm'),
    );
  });
});

describe('bench/gpu-check.sh --smoke', () => {
  it('runs every part on tiny sizes inside its budget and prints the table last', () => {
    const out = join(tmp, 'gpu-check');
    const t0 = performance.now();
    const r = spawnSync('bash', ['bench/gpu-check.sh', out, '--smoke'], {
      encoding: 'utf8',
      env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
      timeout: 180_000,
    });
    const seconds = (performance.now() - t0) / 1000;
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(seconds).toBeLessThan(120);
    // The table comes last, after a blank line, under 100 lines, with the training lines as train.js prints them.
    const table = r.stdout
      .slice(r.stdout.lastIndexOf('\n\n') + 2)
      .trimEnd()
      .split('\n');
    expect(table[0]).toMatch(/^fmgpu gpu-check .*--smoke/);
    expect(table.length).toBeLessThan(100);
    expect(table).toContainEqual(expect.stringMatching(/^adapter: .*\[(CPU adapter, not a GPU|GPU)\]$/));
    for (const batch of [8, 16])
      expect(table).toContainEqual(expect.stringMatching(new RegExp(`^fmgpu train batch=${batch}: [\\d,]+ images/s`)));
    expect(table).toContainEqual(expect.stringMatching(/^fmgpu infer: [\d,]+ images\/s/));
    expect(table).toContainEqual(expect.stringMatching(/^ {2}examples\/quick\.net +batch 8 \(tiled\): bit for bit$/));
    // At most 8 files, every JSON one well formed; each part ran to its end (PyTorch's only where python3 has it).
    const files = readdirSync(out).sort();
    expect(files.length).toBeLessThanOrEqual(8);
    expect(files).toEqual(
      expect.arrayContaining(['run.json', 'probes.jsonl', 'profile.jsonl', 'speed.jsonl', 'log.txt']),
    );
    for (const f of files.filter((x) => x.endsWith('.jsonl'))) jsonLines(readFileSync(join(out, f), 'utf8'));
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as {
      adapter: { kind: string; limits: Record<string, number> };
      parts: { part: string; status: string; note: string }[];
    };
    expect(run.adapter.limits.maxComputeInvocationsPerWorkgroup).toBeGreaterThan(0);
    const status = Object.fromEntries(run.parts.map((p) => [p.part, p.status]));
    // The script's own choice: $PYTHON alone where set, else the first of python3 and /usr/bin/python3 with torch.
    const pythons = process.env.PYTHON ? [process.env.PYTHON] : ['python3', '/usr/bin/python3'];
    const torch = pythons.some((c) => spawnSync(c, ['-c', 'import torch']).status === 0);
    expect(status).toEqual({
      adapter: 'ok',
      probes: 'ok',
      bits: 'ok',
      profile: 'ok',
      predicted: 'ok',
      refit: 'ok',
      train: 'ok',
      'torch-eager': torch ? 'ok' : 'skipped',
      'torch-compile': torch ? 'ok' : 'skipped',
      accuracy: 'ok',
      zoo: 'ok',
    });
    const probes = jsonLines(readFileSync(join(out, 'probes.jsonl'), 'utf8'));
    expect(probes.map((p) => `${p.kernel} ${p.variant}`)).toEqual(
      expect.arrayContaining(['matmul tiled16', 'matmul tiled8', 'conv dX tiled16', 'conv dX tiled8']),
    );
    if (torch)
      expect(table).toContainEqual(expect.stringMatching(/^pytorch \S+ eager batch=8: [\d,]+ images\/s \(fp32/));
    else expect(r.stdout).toContain('no python3 with torch here');
  });
});
