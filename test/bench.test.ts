// The benchmarks run end to end on tiny data: smoke tests, so that a session with a GPU never spends
// its time on a broken script. Nothing here is timed; bench/RESULTS.md holds the measurements.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
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
