// What a user sees, through the real entry (node bin/fmgpu.js): piped `fmgpu train` writes one line
// per epoch (Keras's verbose=2), Dawn's own notes are hidden unless --verbose, and bin/fmgpu.js,
// which runs the CLI in a child process to filter them, keeps exit codes, Ctrl-C and kills intact.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ensureBuilt, writeIdxDir } from './helpers/files.ts';
import { Progress, type Out } from '../src/cli/progress.ts';
import { onSignal } from '../src/cli/interrupt.ts';
import { shellWord } from '../src/util/shell.ts';

const BIN = resolve('bin/fmgpu.js');
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', NO_COLOR: '1' };
const DAWN = /^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced/m;
const fmgpu = (args: string[]) => {
  const r = spawnSync('node', [BIN, ...args], { encoding: 'utf8', env, timeout: 300_000 });
  return { code: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
};

const tmp = mkdtempSync(join(tmpdir(), 'fmgpu-output-'));
const data = join(tmp, 'data');
const TINY = join(tmp, 'tiny.net');

beforeAll(() => {
  ensureBuilt();
  writeIdxDir(data, 512, 64);
  writeFileSync(TINY, 'conv 4 3x3 relu\npool 2\ndense 10 softmax\ntrain epochs=3 batch=8 lr=0.01\n');
}, 120_000);

/** Resolves with the close event's code and signal once `child` has ended. */
const ended = (child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
  new Promise((done) => child.on('close', (code, signal) => done({ code, signal })));

/** The CLI process bin/fmgpu.js started (Linux: /proc lists a process's children). */
const cliOf = (wrapper: number): number =>
  Number(readFileSync(`/proc/${wrapper}/task/${wrapper}/children`, 'utf8').trim().split(/\s+/)[0]);

/** Gone, or a zombie waiting to be reaped: it runs no more. */
const stopped = (pid: number): boolean => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return true;
  }
};

/** Starts `fmgpu train` and resolves once its first epoch line is out. */
function trainUntilFirstEpoch(out: string, o: { detached?: boolean } = {}) {
  const child = spawn('node', [BIN, 'train', TINY, '--data', data, '--out', out, '--epochs', '200'], {
    env,
    detached: o.detached,
  });
  let stdout = '',
    stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const started = new Promise<void>((done) =>
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
      if (stdout.includes('epoch 1/200 ')) done();
    }),
  );
  return { child, started, end: ended(child), err: () => stderr };
}

describe('piped train output: one line per epoch', () => {
  it('no progress bar, ETA or carriage return; the same figures as the terminal epoch line', () => {
    const r = fmgpu(['train', TINY, '--data', data, '--out', join(tmp, 'piped')]);
    expect(r.code).toBe(0);
    expect(r.out).not.toContain('\r');
    expect(r.out).not.toContain('ETA');
    expect(r.out).not.toContain('[=');
    const epochs = r.out.split('\n').filter((l) => l.startsWith('epoch '));
    expect(epochs).toHaveLength(3);
    for (const [i, l] of epochs.entries())
      expect(l).toMatch(new RegExp(`^epoch ${i + 1}/3  \\d+\\.\\ds  loss \\d\\.\\d{4}  acc \\d\\.\\d{4}$`));
    const history = JSON.parse(readFileSync(join(tmp, 'piped', 'history.json'), 'utf8'));
    expect(epochs[2]).toContain(`loss ${history[2].loss.toFixed(4)}  acc ${history[2].accuracy.toFixed(4)}`);
  });

  it('--json is unchanged: progress events between the epochs', () => {
    const r = fmgpu(['train', TINY, '--data', data, '--out', join(tmp, 'json'), '--json']);
    expect(r.code).toBe(0);
    const events = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).event);
    expect(events.filter((e) => e === 'epoch')).toHaveLength(3);
    expect(events.filter((e) => e === 'progress').length).toBeGreaterThanOrEqual(3);
  });

  it('Progress: a live bar only where there is a terminal line to rewrite', () => {
    const lines: string[] = [];
    const status: string[] = [];
    const piped: Out = { log: (l) => lines.push(l), err: () => undefined, status: null };
    const tty: Out = { ...piped, status: (l) => status.push(l) };
    const step = { epoch: 1, step: 5, steps: 10, loss: 0.5, accuracy: 0.75, imagesPerSec: 100 };
    const log = { epoch: 1, seconds: 1.2, loss: 0.5, accuracy: 0.75, lr: 0.001 };
    for (const out of [piped, tty]) {
      const p = new Progress(out, false, 8);
      p.step(step, 2);
      p.epoch(log, 2);
    }
    expect(lines).toEqual(['epoch 1/2  1.2s  loss 0.5000  acc 0.7500', 'epoch 1/2  1.2s  loss 0.5000  acc 0.7500']);
    expect(status).toEqual([
      'epoch 1/2 [============            ] 5/10  100 img/s  loss 0.5000  acc 0.7500  ETA 0s',
      '',
    ]);
  });
});

describe('SIGTERM (a scheduler, docker stop) stops train as Ctrl-C does', () => {
  it('a checkpoint written, exit 143; a second signal quits at once, the lock let go', async () => {
    const dir = join(tmp, 'termed');
    const run = trainUntilFirstEpoch(dir);
    await run.started;
    run.child.kill('SIGTERM');
    expect(await run.end).toEqual({ code: 143, signal: null });
    expect(run.err()).toContain('the signal again to quit now');
    expect(run.err()).toContain(`fmgpu: interrupted; checkpoint written: resume with fmgpu train --resume ${dir}`);
    expect(existsSync(join(dir, 'checkpoint', 'state.json'))).toBe(true);
    expect(existsSync(join(dir, 'fmgpu.lock'))).toBe(false);
  });
});

describe('a path in a command fmgpu advises is one shell word', () => {
  it.each([
    ['runs/quick-20261208', 'runs/quick-20261208'],
    ['my run', "'my run'"],
    ["it's", "'it'\\''s'"],
    ['$HOME/x', "'$HOME/x'"],
  ])('%s → %s', (path, word) => expect(shellWord(path)).toBe(word));
});

describe("Dawn's own notes on stderr", () => {
  it('are hidden, and shown with --verbose (where the adapter prints them: lavapipe)', () => {
    const quiet = fmgpu(['train', TINY, '--data', data, '--out', join(tmp, 'quiet'), '--epochs', '1']);
    const verbose = fmgpu(['train', TINY, '--data', data, '--out', join(tmp, 'verbose'), '--epochs', '1', '--verbose']);
    expect([quiet.code, verbose.code]).toEqual([0, 0]);
    expect(quiet.err).toBe('');
    expect(quiet.err).not.toMatch(DAWN);
    if (verbose.out.includes('adapter: llvmpipe')) expect(verbose.err).toMatch(DAWN);
    // --verbose is everyone's: the commands that open no GPU take it too.
    expect(fmgpu(['summary', TINY, '--verbose']).code).toBe(0);
  });

  it('fmgpu --help documents --verbose', () => {
    expect(fmgpu(['--help']).out).toMatch(/--verbose +also the notes the WebGPU library \(Dawn\) prints itself/);
  });
});

describe('bin/fmgpu.js passes the child through', () => {
  it('exit codes 0, 2 and 1 and their messages', () => {
    expect(fmgpu(['train', TINY, '--data', data, '--out', join(tmp, 'ok'), '--epochs', '1']).code).toBe(0);
    const usage = fmgpu(['train', TINY, '--data', data, '--batch', '0']);
    expect(usage).toMatchObject({ code: 2, out: '' });
    expect(usage.err).toBe('fmgpu: error: --batch: expected a whole number ≥ 1 for batch but found "0"\n');
    const diverged = fmgpu(['train', TINY, '--data', data, '--out', join(tmp, 'nan'), '--lr', '1e30']);
    expect(diverged.code).toBe(1);
    expect(diverged.err).toMatch(/^fmgpu: error: the loss became (NaN|-?Infinity) at epoch 1/);
  });

  it('a Ctrl-C on a terminal reaches both processes: one stop, a checkpoint, exit 130', async () => {
    const dir = join(tmp, 'my group'); // the resume it advises is quoted, to paste into a shell
    const run = trainUntilFirstEpoch(dir, { detached: true });
    await run.started;
    process.kill(-run.child.pid!, 'SIGINT'); // the whole process group, as a terminal does
    expect(await run.end).toEqual({ code: 130, signal: null });
    expect(run.err().match(/stopping after the steps in flight/g)).toHaveLength(1);
    expect(run.err()).toContain(`fmgpu: interrupted; checkpoint written: resume with fmgpu train --resume '${dir}'`);
    expect(existsSync(join(dir, 'checkpoint', 'state.json'))).toBe(true);
  });

  it('a signal that ends the CLI ends bin/fmgpu.js the same way', async () => {
    const run = trainUntilFirstEpoch(join(tmp, 'term'));
    await run.started;
    // SIGHUP: train handles SIGINT and SIGTERM itself (a checkpoint first), not this one.
    process.kill(cliOf(run.child.pid!), 'SIGHUP');
    expect(await run.end).toEqual({ code: null, signal: 'SIGHUP' });
  });

  it('SIGKILL to bin/fmgpu.js takes the CLI with it', async () => {
    const run = trainUntilFirstEpoch(join(tmp, 'orphan'));
    await run.started;
    const cli = cliOf(run.child.pid!);
    run.child.kill('SIGKILL');
    await run.end;
    const deadline = Date.now() + 5000;
    while (!stopped(cli) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(stopped(cli)).toBe(true);
  });
});

describe('onSignal', () => {
  it('counts one Ctrl-C delivered twice at once (terminal and bin/fmgpu.js) as one', async () => {
    let n = 0;
    const before = process.listenerCount('SIGINT');
    const release = onSignal('SIGINT', () => n++);
    try {
      process.emit('SIGINT');
      process.emit('SIGINT');
      expect(n).toBe(1);
      await new Promise((r) => setTimeout(r, 150));
      process.emit('SIGINT');
      expect(n).toBe(2);
    } finally {
      release();
    }
    expect(process.listenerCount('SIGINT')).toBe(before);
  });
});
