// Runs lose nothing (issue 14): fmgpu train writes only into a new or empty folder or the run it
// resumes, one process at a time; a resume continues exactly the run it names or is refused (other
// layers, batch, data, optimizer); a run forked with --out leaves the original as it was; a run
// copied with links dereferenced resumes; a write that fails leaves no partial file and names the
// file; empty sets and unwritable folders are refused before the GPU is opened.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ensureBuilt, FINISHED_RUN, idx, writeIdxDir } from './helpers/files.ts';
import { claim, prepare } from '../src/cli/train-job.ts';

const BIN = resolve('bin/fmgpu.js');
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', NO_COLOR: '1' };
type Result = { code: number | null; out: string; err: string };
const fmgpu = (args: string[], o: { uid?: number } = {}): Result => {
  const r = spawnSync('node', [BIN, ...args], { encoding: 'utf8', env, timeout: 300_000, uid: o.uid, gid: o.uid });
  return { code: r.status, out: r.stdout, err: r.stderr.trim() };
};
const NO_GPU = ['--adapter', 'no-such-gpu'];

const tmp = mkdtempSync(join(tmpdir(), 'fmgpu-runs-'));
const data = join(tmp, 'data');
const TINY_SRC = 'conv 2 3x3 relu\npool 2\ndense 10 softmax\ntrain epochs=2 batch=32 lr=0.01\n';
const TINY = join(tmp, 'tiny.net');
const trainArgs = (out: string, ...more: string[]): string[] => ['train', TINY, '--data', data, '--out', out, ...more];
/** Every file under `dir` with its bytes (folders as ''): to show that nothing changed. */
const snapshot = (dir: string): Record<string, string> =>
  Object.fromEntries(
    (readdirSync(dir, { recursive: true }) as string[])
      .sort()
      .map((f) => [f, statSync(join(dir, f)).isDirectory() ? '' : readFileSync(join(dir, f)).toString('base64')]),
  );

const finished = join(tmp, 'finished'); // a run of TINY trained to the end
beforeAll(() => {
  ensureBuilt();
  chmodSync(tmp, 0o755); // readable by the unprivileged user of the read-only test
  writeIdxDir(data, 256, 64);
  writeFileSync(TINY, TINY_SRC);
  const r = fmgpu(trainArgs(finished));
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
}, 300_000);

describe('fmgpu writes only into a new or empty folder, or the run it resumes', () => {
  it("a folder of the user's own files is refused and left exactly as it was", () => {
    const dir = join(tmp, 'mine');
    mkdirSync(join(dir, 'checkpoint-500'), { recursive: true });
    writeFileSync(join(dir, 'model.net'), 'mine\n');
    writeFileSync(join(dir, 'checkpoint-500', 'notes.txt'), 'keep me\n');
    const before = snapshot(dir);
    const r = fmgpu(trainArgs(dir));
    expect(r.err).toBe(
      `fmgpu: error: --out ${dir} is not empty (checkpoint-500, model.net): ` +
        'fmgpu writes a new run only into a new or empty folder',
    );
    expect(r.code).toBe(2);
    expect(snapshot(dir)).toEqual(before);
  });

  it('a finished run is not overwritten by a new one', () => {
    const before = snapshot(finished);
    const r = fmgpu(trainArgs(finished));
    expect(r.err).toBe(
      `fmgpu: error: ${finished} already holds a run: use --resume ${finished} to continue it, or another --out`,
    );
    expect(r.code).toBe(2);
    expect(snapshot(finished)).toEqual(before);
  });

  it('two trainings on one folder at once: the second is refused with exit 2, the first finishes alone', async () => {
    const dir = join(tmp, 'twice');
    const start = (): Promise<Result> =>
      new Promise((done) => {
        const c = spawn('node', [BIN, ...trainArgs(dir, '--epochs', '4')], { env });
        let out = '',
          err = '';
        c.stdout.on('data', (d: Buffer) => (out += d));
        c.stderr.on('data', (d: Buffer) => (err += d));
        c.on('close', (code) => done({ code, out, err: err.trim() }));
      });
    const [a, b] = await Promise.all([start(), start()]);
    const [won, lost] = a.code === 0 ? [a, b] : [b, a];
    // Each code with its stderr, so that a failure says what the process met.
    expect(won.code, won.err).toBe(0);
    expect(lost.code, lost.err).toBe(2);
    expect(lost.err).toMatch(/^fmgpu: error: .* (is being written by fmgpu \(pid \d+\)|already holds a run)/);
    expect(JSON.parse(readFileSync(join(dir, 'history.json'), 'utf8'))).toHaveLength(4);
    expect(existsSync(join(dir, 'fmgpu.lock'))).toBe(false);
  }, 300_000);

  it('--resume A --out B forks the run into B and leaves A as it was', () => {
    const b = join(tmp, 'fork');
    const before = snapshot(finished);
    const r = fmgpu(['train', '--resume', finished, '--out', b, '--epochs', '3']);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`forking the run in ${finished} at epoch 2 into ${b} (${finished} is left as it was)`);
    expect(snapshot(finished)).toEqual(before);
    expect(JSON.parse(readFileSync(join(b, 'history.json'), 'utf8')).map((h: { epoch: number }) => h.epoch)).toEqual([
      1, 2, 3,
    ]);
  });

  it('a fork refused when the GPU opens leaves no folder behind, and A as it was', () => {
    const b = join(tmp, 'fork-refused');
    const before = snapshot(finished);
    const r = fmgpu(['train', '--resume', finished, '--out', b, '--epochs', '3', ...NO_GPU]);
    expect(r.code).not.toBe(0);
    expect(r.err.split('\n')).toHaveLength(1);
    expect(existsSync(b)).toBe(false);
    expect(snapshot(finished)).toEqual(before);
  });

  // A run being trained moves its checkpoint on: a fork copying it then, or a resume locking it after checking
  // it, would mix two epochs' files, or continue from another position than the one checked.
  it('a fork or resume whose checkpoint moved on after it was checked is refused, nothing left behind', () => {
    const moving = join(tmp, 'moving');
    cpSync(finished, moving, { recursive: true });
    for (const out of [join(tmp, 'fork-moved'), moving]) {
      const job = prepare(['--resume', moving, '--out', out, '--epochs', '3']);
      const file = join(moving, 'checkpoint', 'state.json');
      const state = readFileSync(file, 'utf8');
      writeFileSync(
        file,
        state.replace(/"step": (\d+)/, (_, s) => `"step": ${Number(s) + 1}`),
      );
      expect(() => claim(job)).toThrow(
        /its checkpoint changed while it was (copied|checked) \(is it being trained\?\)/,
      );
      writeFileSync(file, state);
      if (out !== moving) expect(existsSync(out)).toBe(false);
      expect(existsSync(join(moving, 'fmgpu.lock'))).toBe(false);
    }
  });
});

describe('a resume continues exactly the run it names, or is refused before anything is written', () => {
  const other = (name: string, edit: (src: string) => string): string => {
    const f = join(tmp, `${name}.net`);
    writeFileSync(f, edit(TINY_SRC));
    return f;
  };
  const rows: [string, () => string[], string][] = [
    [
      'another activation, same shapes',
      () => ['train', other('tanh', (s) => s.replace('relu', 'tanh')), '--resume', finished],
      `${join(tmp, 'tanh.net')}:1:1: layer conv1 is "conv 2 3x3 tanh" ` +
        `but the run in ${finished} was trained with "conv 2 3x3 relu": ` +
        `resume with the run's own model, or start a new run from its weights with --init ${finished}`,
    ],
    [
      'average instead of max pooling',
      () => ['train', other('avg', (s) => s.replace('pool 2', 'avgpool 2')), '--resume', finished],
      `${join(tmp, 'avg.net')}:2:1: layer avgpool1 is "avgpool 2" but the run in ${finished} was trained with "pool 2"`,
    ],
    [
      'another batch size',
      () => ['train', '--resume', finished, '--batch', '7'],
      `--resume ${finished}: the run was trained with batch 32, not batch 7: ` +
        'a resumed run keeps its batch, optimizer, validation split, seed and ema; ' +
        `start a new run from its weights with --init ${finished}`,
    ],
    [
      'another optimizer',
      () => ['train', '--resume', finished, '--optimizer', 'sgd'],
      `--resume ${finished}: the run was trained with optimizer adam, not optimizer sgd`,
    ],
    [
      'a subset of the data',
      () => ['train', '--resume', finished, '--subset', '50'],
      `--resume ${finished}: the run trains on 256 images, this data gives 50 ` +
        '(check --subset, --validation and the data source)',
    ],
    [
      'a validation split',
      () => ['train', '--resume', finished, '--validation', '0.5'],
      `--resume ${finished}: the run was trained with validation 0, not validation 0.5`,
    ],
  ];
  it.each(rows)('%s', (_, args, message) => {
    const before = snapshot(finished);
    const r = fmgpu([...args(), ...NO_GPU]);
    expect(r.err).toContain(`fmgpu: error: ${message}`);
    expect(r.code).toBe(2);
    expect(snapshot(finished)).toEqual(before);
  });

  it("the run's own model.net edited since: resume, eval and export refuse it, naming what changed", () => {
    const dir = join(tmp, 'edited');
    cpSync(finished, dir, { recursive: true });
    const model = join(dir, 'model.net');
    writeFileSync(model, TINY_SRC.replace('relu', 'tanh'));
    const before = snapshot(dir);
    const resume = fmgpu(['train', '--resume', dir, '--epochs', '3', ...NO_GPU]);
    expect(resume.err).toBe(
      `fmgpu: error: ${model}:1:1: layer conv1 is "conv 2 3x3 tanh" but the run in ${dir} was trained with ` +
        `"conv 2 3x3 relu": resume with the run's own model, or start a new run from its weights with --init ${dir}`,
    );
    expect(resume.code).toBe(2);
    const weights = join(dir, 'weights.safetensors');
    for (const command of [['eval', ...NO_GPU], ['export']]) {
      const r = fmgpu([command[0]!, dir, ...command.slice(1)]);
      expect(r.err).toBe(
        `fmgpu: error: ${model}: layer conv1 is "conv 2 3x3 tanh" but ${weights} was trained with ` +
          `"conv 2 3x3 relu": restore the run's model.net (the weights keep the source they were trained from)`,
      );
      expect(r.code).toBe(2);
    }
    expect(snapshot(dir)).toEqual(before);
  });

  it('a new learning rate is taken from the next step on, and said', () => {
    const dir = join(tmp, 'new-lr');
    cpSync(finished, dir, { recursive: true });
    const r = fmgpu(['train', '--resume', dir, '--epochs', '3', '--lr', '0.001']);
    expect(r.err).toBe('');
    expect(r.out).toContain('changed since the checkpoint, from the next step on: lr 0.01 → 0.001');
    expect(r.code).toBe(0);
  });

  it('the same network written differently, with more epochs, resumes', () => {
    const dir = join(tmp, 'reworded');
    cpSync(finished, dir, { recursive: true });
    const f = join(tmp, 'reworded.net');
    writeFileSync(f, `# the same network\n${TINY_SRC.replace('conv 2 3x3 relu', 'conv 2 3x3   relu  # first')}`);
    const r = fmgpu(['train', f, '--resume', dir, '--epochs', '3']);
    expect(r.err).toBe('');
    expect(r.out).toContain('resuming at epoch 3 of 3, step 0 of 8');
    expect(r.code).toBe(0);
  });

  it('a step past the run is refused on load', () => {
    const dir = join(tmp, 'far-step');
    cpSync(finished, dir, { recursive: true });
    const file = join(dir, 'checkpoint', 'state.json');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), step: 1e9 }));
    const r = fmgpu(['train', '--resume', dir, ...NO_GPU]);
    expect(r.err).toBe(
      `fmgpu: error: ${file}: step 1000000000 is not within epoch 3 (steps 16–23 at 8 steps an epoch)`,
    );
    expect(r.code).toBe(2);
  });

  it('a run copied with links dereferenced resumes to the end and leaves no debris', () => {
    const dir = join(tmp, 'copied');
    cpSync(finished, dir, { recursive: true, dereference: true });
    const r = fmgpu(['train', '--resume', dir, '--epochs', '4']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(FINISHED_RUN);
  });
});

describe('failed writes and empty or unwritable places', () => {
  // A full disk needs a small file system of its own: a tmpfs, where this test may mount one (root).
  const smallDisk = (dir: string, bytes: number): boolean => {
    mkdirSync(dir);
    return (
      process.getuid?.() === 0 && spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir]).status === 0
    );
  };
  it('a full disk at the end of training: the file named, no partial file left, the checkpoint kept', (ctx) => {
    const disk = join(tmp, 'small-disk');
    // Room for every file of the run (a checkpoint twice, while it is switched) but the report.
    const size = (f: string): number => statSync(join(finished, f)).size;
    const all = (readdirSync(finished, { recursive: true }) as string[]).filter((f) =>
      statSync(join(finished, f)).isFile(),
    );
    const rest =
      all.filter((f) => f !== 'report.html').reduce((a, f) => a + size(f), 0) +
      all.filter((f) => f.startsWith('checkpoint/')).reduce((a, f) => a + size(f), 0);
    const room = rest + 64 * 1024; // tmpfs counts whole pages
    expect(size('report.html')).toBeGreaterThan(room - rest);
    if (!smallDisk(disk, room))
      ctx.skip('no tmpfs: mounting one needs root (the unit test in cli-rundir.test.ts writes to /dev/full instead)');
    try {
      const dir = join(disk, 'run');
      const r = fmgpu(trainArgs(dir));
      // What is kept, and how to go on (docs/reliability.md: a runtime failure names what is kept).
      expect(r.err).toBe(
        `fmgpu: error: cannot write ${join(dir, 'report.html')}: no space left on device; the checkpoint after ` +
          `epoch 2 (step 16) in ${dir} is kept: free space, then resume with fmgpu train --resume ${dir}`,
      );
      expect(r.code).toBe(1);
      expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
      expect(existsSync(join(dir, 'checkpoint', 'state.json'))).toBe(true);
    } finally {
      spawnSync('umount', [disk]);
    }
  });

  it('report --out an existing folder is refused before the GPU is opened and leaves nothing', () => {
    const folder = join(tmp, 'a-folder');
    mkdirSync(folder);
    const r = fmgpu(['report', finished, '--data', data, '--out', folder, ...NO_GPU]);
    expect(r.err).toBe(
      `fmgpu: error: --out ${folder} is a directory: give the page's file name, e.g. ${join(folder, 'report.html')}`,
    );
    expect(r.code).toBe(2);
    expect(readdirSync(tmp).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  const withEmpty = (name: string, prefix: string): string => {
    const dir = join(tmp, name);
    cpSync(data, dir, { recursive: true });
    writeFileSync(join(dir, `${prefix}-images-idx3-ubyte.gz`), gzipSync(idx(2051, [0, 28, 28])));
    writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte.gz`), gzipSync(idx(2049, [0])));
    return dir;
  };
  const empty: [string, () => string[], string][] = [
    [
      'a validation split that leaves no training images',
      () => trainArgs(join(tmp, 'e1'), '--validation', '0.999'),
      `no training images are left after holding out validation 0.999 (${data})`,
    ],
    [
      'an idx training set of 0 images',
      () => ['train', TINY, '--data', withEmpty('no-train', 'train'), '--out', join(tmp, 'e2')],
      `no training images (${join(tmp, 'no-train')})`,
    ],
    [
      'train with a test set of 0 images',
      () => ['train', TINY, '--data', withEmpty('no-test', 't10k'), '--out', join(tmp, 'e3')],
      `the test set has no images (${join(tmp, 'no-test')})`,
    ],
    [
      'eval with a test set of 0 images',
      () => ['eval', finished, '--data', withEmpty('no-test2', 't10k')],
      `the test set has no images (${join(tmp, 'no-test2')})`,
    ],
  ];
  it.each(empty)('%s is refused before the GPU is opened', (_, args, message) => {
    const r = fmgpu([...args(), ...NO_GPU]);
    expect(r.err).toBe(`fmgpu: error: ${message}`);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    for (const e of ['e1', 'e2', 'e3']) expect(existsSync(join(tmp, e))).toBe(false);
  });

  it('a read-only --out is refused before the GPU is opened (exit 2)', () => {
    const ro = join(tmp, 'read-only');
    mkdirSync(ro);
    chmodSync(ro, 0o555);
    // root writes anywhere: run as an unprivileged user then.
    const uid = process.getuid?.() === 0 ? 65534 : undefined;
    const r = fmgpu([...trainArgs(ro), ...NO_GPU], { uid });
    expect(r.err).toBe(`fmgpu: error: cannot write to the run directory ${ro} (EACCES)`);
    expect(r.code).toBe(2);
    expect(readdirSync(ro)).toEqual([]);
  });
});
