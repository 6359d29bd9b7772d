// The CLI as a subprocess (node bin/fmgpu.js): error paths and conventions beyond test/cli.test.ts,
// and a resumed run that ends bit for bit where an uninterrupted one does.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { decodeSafetensors } from '../src/model/safetensors.ts';
import { writeIdxDir, ensureBuilt } from './helpers/files.ts';

const BIN = resolve('bin/fmgpu.js');
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', NO_COLOR: '1' };
const fmgpu = (args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) => {
  const r = spawnSync('node', [BIN, ...args], {
    encoding: 'utf8',
    env: opts.env ?? env,
    cwd: opts.cwd,
    timeout: 300_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

const tmp = mkdtempSync(join(tmpdir(), 'fmgpu-cli-errors-'));
const TINY = join(tmp, 'tiny.net');

beforeAll(() => {
  ensureBuilt();
  writeIdxDir(join(tmp, 'data'), 512, 100);
  writeFileSync(TINY, 'conv 4 3x3 relu\npool 2\ndense 10 softmax\ntrain epochs=2 batch=8 lr=0.001\n');
}, 120_000);

describe('conventions', () => {
  it('bare fmgpu: the help on stderr, nothing on stdout, exit 2', () => {
    const r = fmgpu([]);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^fmgpu \d+\.\d+\.\d+: /);
    expect(r.err).toContain('usage: fmgpu COMMAND [options]');
  });

  it('fmgpu help: the help on stdout, exit 0', () => {
    const r = fmgpu(['help']);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toContain('usage: fmgpu COMMAND [options]');
  });

  it('--debug adds the stack trace; without it, one line and no trace', () => {
    const plain = fmgpu(['summary', join(tmp, 'nope.net')]);
    expect(plain.err).toBe(`fmgpu: error: ${join(tmp, 'nope.net')}: no such file\n`);
    const debug = fmgpu(['summary', join(tmp, 'nope.net'), '--debug']);
    expect(debug.code).toBe(2);
    expect(debug.err).toMatch(/UsageError: .*no such file\n\s+at /);
    expect(debug.err.trim().split('\n').at(-1)).toBe(`fmgpu: error: ${join(tmp, 'nope.net')}: no such file`);
  });

  it('no colour or terminal escapes when stdout and stderr are not terminals, NO_COLOR or not', () => {
    const bad = join(tmp, 'colour.net');
    writeFileSync(bad, 'cnv 3 3x3\n');
    for (const e of [env, { ...env, NO_COLOR: undefined, FORCE_COLOR: '1' }]) {
      const r = fmgpu(['summary', bad], { env: e });
      expect(r.code).toBe(2);
      expect(r.err + r.out).not.toContain('\x1b');
    }
  });
});

describe('usage and input errors: exit 2, one line on stderr, nothing on stdout', () => {
  const file = (name: string, text: string | Uint8Array): string => (
    writeFileSync(join(tmp, name), text), join(tmp, name)
  );
  const rows: [string, () => string[], string][] = [
    [
      '--flag=value form, out of range',
      () => ['train', TINY, '--batch=0'],
      'fmgpu: error: --batch: expected a whole number ≥ 1 for batch but found "0"',
    ],
    [
      'a float where a whole number goes',
      () => ['train', TINY, '--subset', '2.5'],
      'fmgpu: error: --subset must be a whole number, not "2.5"',
    ],
    [
      'unknown option, with a suggestion',
      () => ['train', TINY, '--epoch', '3'],
      'fmgpu: error: unknown option --epoch (did you mean --epochs?)',
    ],
    [
      'a bool flag given a value',
      () => ['train', TINY, '--json=yes'],
      'fmgpu: error: --json takes true or false, not "yes"',
    ],
    [
      'a setting that contradicts the optimizer',
      () => ['train', TINY, '--momentum', '0.9'],
      'fmgpu: error: --momentum: momentum applies only to optimizer=sgd but the optimizer is adam',
    ],
    [
      'two sources of training data',
      () => ['train', TINY, '--data', tmp, '--csv', 'a.csv', '--test-csv', 'b.csv'],
      'fmgpu: error: --data and --csv are two sources of training data: give one',
    ],
    [
      '--out is a file',
      () => ['train', TINY, '--data', join(tmp, 'data'), '--out', TINY],
      `fmgpu: error: --out ${TINY}: a file is in the way of the run directory`,
    ],
    [
      '--resume without a checkpoint',
      () => ['train', '--resume', tmp],
      `fmgpu: error: ${tmp}: no checkpoint to resume from`,
    ],
    [
      '--resume a folder that is not there (a path with a space, unquoted)',
      () => ['train', '--resume', join(tmp, 'my')],
      `fmgpu: error: run directory ${join(tmp, 'my')} not found`,
    ],
    [
      'a corrupt gzip data file',
      () => {
        const dir = join(tmp, 'corrupt');
        writeIdxDir(dir, 16, 16);
        writeFileSync(join(dir, 't10k-images-idx3-ubyte.gz'), gzipSync(new Uint8Array(100)).subarray(0, 30));
        return ['train', TINY, '--data', dir];
      },
      'fmgpu: error: ',
    ],
    [
      'eval with two sources of test data',
      () => ['eval', tmp, '--data', tmp, '--test-csv', 'x.csv'],
      'fmgpu: error: --data and --test-csv are two sources of test data: give one',
    ],
    ['summary takes no options', () => ['summary', TINY, '--json'], 'fmgpu: error: unknown option --json'],
    [
      'predict: an unknown flag',
      () => ['predict', tmp, 'x.png', '--colour', '5'],
      'fmgpu: error: unknown option --colour',
    ],
    [
      '--adapter that matches nothing',
      () => ['train', TINY, '--data', join(tmp, 'data'), '--out', join(tmp, 'never'), '--adapter', 'no-such-gpu'],
      'fmgpu: error: --adapter no-such-gpu: no WebGPU adapter\'s name contains "no-such-gpu" (adapters: ',
    ],
  ];
  it.each(rows)('%s', (_, args, message) => {
    const r = fmgpu(args());
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toContain(message);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
  });

  it('a run refused after its folder was claimed leaves no folder it made: runs/ and the run are gone', () => {
    const cwd = join(tmp, 'fresh');
    mkdirSync(cwd);
    const r = fmgpu(['train', TINY, '--data', join(tmp, 'data'), '--adapter', 'no-such-gpu'], { cwd });
    expect(r.code).toBe(2);
    expect(readdirSync(cwd)).toEqual([]);
    // A runs/ folder that was there stays, with the runs in it.
    mkdirSync(join(cwd, 'runs', 'old'), { recursive: true });
    expect(fmgpu(['train', TINY, '--data', join(tmp, 'data'), '--adapter', 'no-such-gpu'], { cwd }).code).toBe(2);
    expect(readdirSync(join(cwd, 'runs'))).toEqual(['old']);
  });

  it('a language error in train: FILE:LINE:COL with the excerpt, before anything else is printed', () => {
    const bad = file('bad-train.net', 'conv 8 3x3 relu\ndense 10 softmax\ntrain epochs=0\n');
    const r = fmgpu(['train', bad, '--data', join(tmp, 'data')]);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(new RegExp(`^${bad.replace(/[.]/g, '\\.')}:3:14: error: .*\\n  3 │ train epochs=0\\n`));
  });
});

describe('resume', () => {
  it('Ctrl-C mid-epoch, then --resume from another directory: the same weights as an uninterrupted run', async () => {
    const data = join(tmp, 'data');
    const whole = fmgpu(['train', TINY, '--data', data, '--out', join(tmp, 'whole'), '--validation', '0.25']);
    expect(whole.code).toBe(0);

    // Relative paths, from tmp: run.json must keep them usable from elsewhere.
    const child = spawn(
      'node',
      [BIN, 'train', 'tiny.net', '--data', 'data', '--out', 'cut', '--validation', '0.25', '--json'],
      { env, cwd: tmp },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('"event":"start"') && !child.killed) child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((done) => child.on('close', done));
    expect(code).toBe(130);
    for (const line of out.trim().split('\n')) expect(() => JSON.parse(line), line).not.toThrow();
    const state = JSON.parse(readFileSync(join(tmp, 'cut', 'checkpoint', 'state.json'), 'utf8'));
    expect(state.step).toBeGreaterThan(0);
    expect(state.step).toBeLessThan(2 * 48); // stopped before the end: 384 images / 8 per step, 2 epochs
    // Within an epoch: the checkpoint keeps the epoch's sums so far.
    if (state.step % state.stepsPerEpoch !== 0) expect(state.partial).toMatchObject({ correct: expect.any(Number) });

    const resumed = fmgpu(['train', '--resume', join(tmp, 'cut'), '--json']);
    expect(resumed.err).toBe('');
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.out.trim().split('\n').at(-1)!)).toMatchObject({ event: 'test' });
    const a = readFileSync(join(tmp, 'whole', 'weights.safetensors'));
    const b = readFileSync(join(tmp, 'cut', 'weights.safetensors'));
    expect(Buffer.compare(a, b)).toBe(0);
    // The interrupted epoch's loss and accuracy are over all its images, as the unbroken run's.
    type Log = { epoch: number; loss: number; accuracy: number; val_loss: number };
    const history = (run: string): number[][] =>
      JSON.parse(readFileSync(join(tmp, run, 'history.json'), 'utf8')).map((h: Log) => [
        h.epoch,
        h.loss,
        h.accuracy,
        h.val_loss,
      ]);
    expect(history('cut')).toEqual(history('whole'));
    expect(history('cut').map(([epoch]) => epoch)).toEqual([1, 2]);
    const { metadata } = decodeSafetensors(new Uint8Array(b));
    expect(metadata['fmgpu.source']).toBe(readFileSync(TINY, 'utf8'));
    expect(metadata['fmgpu.version']).toBe(JSON.parse(readFileSync('package.json', 'utf8')).version);
    expect(metadata['fmgpu.layout']).toContain('conv weight [out, in, kh, kw]');
  });
});
