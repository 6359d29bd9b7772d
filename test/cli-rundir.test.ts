// Run directories (src/node/rundir.ts): checkpoints switched in whole, reading them back after a
// crash at any point of the switch, runs copied or made by fmgpu 0.1.0, the refusals that name what
// is missing, and the writer lock.
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  mkdirSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors, type NamedTensor } from '../src/model/safetensors.ts';
import {
  defaultRunDir,
  historyCsv,
  makeDir,
  readCheckpoint,
  RunDir,
  writeFileAtomic,
  type CheckpointState,
} from '../src/node/rundir.ts';
import { UsageError } from '../src/errors.ts';
import { readRun } from '../src/node/run-read.ts';

const tmp = mkdtempSync(join(tmpdir(), 'fmgpu-rundir-'));
const tensors = (v: number): Map<string, NamedTensor> =>
  new Map([['dense1.weight', { shape: [2, 3], data: Float32Array.from({ length: 6 }, (_, i) => v + i) }]]);
const log = (epoch: number) => ({ epoch, seconds: 1, loss: 1 / epoch, accuracy: 0.5, lr: 0.01 });
const state = (epoch: number): CheckpointState => ({
  epoch,
  step: epoch * 10,
  seed: 7,
  optimizer: 'adam',
  best: { value: 1 / epoch, epoch },
  history: Array.from({ length: epoch }, (_, i) => log(i + 1)),
  stepsPerEpoch: 10,
});
const files = (epoch: number) => ({
  weights: encodeSafetensors(tensors(epoch)),
  best: encodeSafetensors(tensors(-epoch)),
  optimizer: encodeSafetensors(tensors(100 + epoch)),
  state: state(epoch),
});
/** A checkpoint written by a RunDir that is released again. */
const save = (dir: string, epoch: number): void => {
  const run = RunDir.open(dir);
  run.writeCheckpoint(files(epoch));
  run.release();
};
/** A new run folder with an fmgpu run.json (so that it is a run) and `epochs` checkpoints. */
const newRun = (name: string, epochs = 0): string => {
  const dir = join(tmp, name);
  const run = RunDir.create(dir);
  run.write('run.json', '{"version":"0.1.0"}');
  for (let e = 1; e <= epochs; e++) run.writeCheckpoint(files(e));
  run.release();
  return dir;
};
const epochOf = (dir: string): number => readCheckpoint(dir).state.epoch;

describe('checkpoints', () => {
  it('each checkpoint replaces checkpoint/ whole; nothing else is left behind', () => {
    const dir = newRun('ck', 1);
    save(dir, 2);
    expect(readdirSync(dir).sort()).toEqual(['checkpoint', 'run.json']);
    expect(readdirSync(join(dir, 'checkpoint')).sort()).toEqual([
      'best.safetensors',
      'optimizer.safetensors',
      'state.json',
      'weights.safetensors',
    ]);
    const ck = readCheckpoint(dir);
    expect(ck.state).toEqual(state(2));
    expect(Array.from(ck.weights.get('dense1.weight')!.data)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(Array.from(ck.best!.get('dense1.weight')!.data)).toEqual([-2, -1, 0, 1, 2, 3]);
    expect(ck.optimizer.get('dense1.weight')!.shape).toEqual([2, 3]);
  });

  // What a kill at each point of writeCheckpoint leaves, and what is read back then.
  const crashes: [string, (dir: string) => void, number][] = [
    [
      'while writing checkpoint.next',
      (d) => (
        mkdirSync(join(d, 'checkpoint.next')), writeFileSync(join(d, 'checkpoint.next', 'weights.safetensors'), 'half')
      ),
      1,
    ],
    [
      'after checkpoint.next is complete',
      (d) => cpSync(join(d, 'checkpoint'), join(d, 'checkpoint.next'), { recursive: true }),
      1,
    ],
    [
      'between the two renames',
      (d) => (
        cpSync(join(d, 'checkpoint'), join(d, 'checkpoint.next'), { recursive: true }),
        writeFileSync(join(d, 'checkpoint.next', 'state.json'), JSON.stringify(state(2))),
        renameSync(join(d, 'checkpoint'), join(d, 'checkpoint.prev'))
      ),
      2,
    ],
    [
      'after the switch, before checkpoint.prev is removed',
      (d) => cpSync(join(d, 'checkpoint'), join(d, 'checkpoint.prev'), { recursive: true }),
      1,
    ],
    ['a first checkpoint before its switch', (d) => renameSync(join(d, 'checkpoint'), join(d, 'checkpoint.next')), 1],
  ];
  it.each(crashes)('a kill %s leaves a readable checkpoint; the next writer clears the rest', (name, crash, epoch) => {
    const dir = newRun(`crash-${name.replace(/\W+/g, '-')}`, 1);
    crash(dir);
    expect(epochOf(dir)).toBe(epoch);
    save(dir, 3);
    expect(readdirSync(dir).sort()).toEqual(['checkpoint', 'run.json']);
    expect(epochOf(dir)).toBe(3);
  });

  it('survives being copied with links dereferenced, zipped or moved: no links in the layout', () => {
    const dir = newRun('copied', 1);
    const copy = join(tmp, 'copied-elsewhere');
    cpSync(dir, copy, { recursive: true, dereference: true });
    expect(epochOf(copy)).toBe(1);
    save(copy, 2);
    expect(epochOf(copy)).toBe(2);
    expect(epochOf(dir)).toBe(1);
  });

  it.each([
    ['relative', (target: string) => target.split('/').pop()!],
    ['absolute', (target: string) => target],
  ])('runs of fmgpu 0.1.0 (checkpoint a %s link) are read, then switched to the folder layout', (_, linkTo) => {
    const dir = join(tmp, `legacy-${_}`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'run.json'), '{}');
    const target = join(dir, 'checkpoint-1-1733000000000');
    mkdirSync(target);
    const f = files(1);
    writeFileSync(join(target, 'weights.safetensors'), f.weights);
    writeFileSync(join(target, 'optimizer.safetensors'), f.optimizer);
    writeFileSync(join(target, 'state.json'), JSON.stringify(f.state));
    symlinkSync(linkTo(target), join(dir, 'checkpoint'));
    expect(epochOf(dir)).toBe(1);
    save(dir, 2);
    expect(readdirSync(dir).sort()).toEqual(['checkpoint', 'run.json']);
    expect(epochOf(dir)).toBe(2);
  });

  const broken: [string, (dir: string) => void, string][] = [
    ['no checkpoint', () => undefined, 'no checkpoint to resume from'],
    [
      'a missing file',
      (d) => (save(d, 1), rmSync(join(d, 'checkpoint', 'optimizer.safetensors'))),
      'optimizer.safetensors is missing: the checkpoint is incomplete',
    ],
    [
      'unreadable state',
      (d) => (save(d, 1), writeFileSync(join(d, 'checkpoint', 'state.json'), '{')),
      'state.json: unreadable',
    ],
  ];
  it.each(broken)('refuses to resume from %s', (name, setup, message) => {
    const dir = newRun(`bad-${name.replace(/ /g, '-')}`);
    setup(dir);
    expect(() => readCheckpoint(dir)).toThrow(message);
  });

  // Valid JSON of the wrong types, or a position outside the run: refused on load, naming the field.
  const fields: [string, (s: Record<string, unknown>) => void, string][] = [
    ['best of the wrong type', (s) => (s.best = 'x'), '"best" must be an object, not "x"'],
    ['history null', (s) => (s.history = null), '"history" must be a list, not null'],
    [
      'a loss that is not a number',
      (s) => ((s.history as Record<string, unknown>[])[0]!.loss = null),
      '"history"[0].loss must be a finite number, not null',
    ],
    [
      'history of another epoch',
      (s) => ((s.history as Record<string, unknown>[])[1]!.epoch = 5),
      '"history"[1] is for epoch 5, not 2',
    ],
    ['epoch and history disagreeing', (s) => (s.epoch = 1), '"epoch" is 1 but the history holds 2 epochs'],
    ['a fractional step', (s) => (s.step = 1.5), '"step" must be a whole number ≥ 0, not 1.5'],
    [
      'a step past the run',
      (s) => (s.step = 1e9),
      'step 1000000000 is not within epoch 3 (steps 20–29 at 10 steps an epoch)',
    ],
    ['an unknown optimizer', (s) => (s.optimizer = 'rmsprop'), '"optimizer" must be adam, adamw or sgd, not "rmsprop"'],
    [
      'a monitor of the wrong shape',
      (s) => (s.monitor = { bad: -1, lrScale: 1 }),
      '"monitor".bad must be a whole number ≥ 0, not -1',
    ],
  ];
  it.each(fields)('refuses a state.json with %s', (name, edit, message) => {
    const dir = newRun(`state-${name.replace(/\W+/g, '-')}`, 2);
    const file = join(dir, 'checkpoint', 'state.json');
    const s = JSON.parse(readFileSync(file, 'utf8'));
    edit(s);
    writeFileSync(file, JSON.stringify(s));
    expect(() => readCheckpoint(dir)).toThrow(`${file}: ${message}`);
  });

  it('refuses a state.json that is not a JSON object', () => {
    const dir = newRun('state-list', 1);
    writeFileSync(join(dir, 'checkpoint', 'state.json'), '[]');
    expect(() => readCheckpoint(dir)).toThrow('state.json: unreadable (not a JSON object)');
  });
});

describe('a new run goes only into a new or empty folder', () => {
  it('refuses a folder holding anything else, and touches nothing in it', () => {
    const dir = join(tmp, 'mine');
    mkdirSync(join(dir, 'checkpoint-500'), { recursive: true });
    writeFileSync(join(dir, 'model.net'), 'mine\n');
    expect(() => RunDir.create(dir)).toThrow(
      `--out ${dir} is not empty (checkpoint-500, model.net): fmgpu writes a new run only into a new or empty folder`,
    );
    expect(readdirSync(dir).sort()).toEqual(['checkpoint-500', 'model.net']);
    expect(readFileSync(join(dir, 'model.net'), 'utf8')).toBe('mine\n');
  });

  it('refuses a run with a checkpoint: that is for --resume', () => {
    const dir = newRun('has-run', 1);
    expect(() => RunDir.create(dir)).toThrow(`${dir} already holds a run: use --resume ${dir} to continue it`);
  });

  it('starts over a run that never reached a checkpoint; takes an empty folder; makes a new one', () => {
    const dir = newRun('no-checkpoint');
    writeFileSync(join(dir, 'model.net'), 'dense 10 softmax\n');
    RunDir.create(dir).release();
    expect(readdirSync(dir)).toEqual([]);
    RunDir.create(dir).release();
    const fresh = join(tmp, 'a', 'new', 'run');
    RunDir.create(fresh).release();
    expect(readdirSync(fresh)).toEqual([]);
  });

  it('starts over a run killed before its run.json was in place, and a fork killed after copying its history', () => {
    const early = join(tmp, 'killed-early');
    mkdirSync(early);
    writeFileSync(join(early, 'model.net'), 'dense 10 softmax\n');
    writeFileSync(join(early, 'run.json.tmp'), '{"vers');
    RunDir.create(early).release();
    expect(readdirSync(early)).toEqual([]);
    const tmpOnly = join(tmp, 'killed-earlier');
    mkdirSync(tmpOnly);
    writeFileSync(join(tmpOnly, 'model.net.tmp'), 'dense');
    RunDir.create(tmpOnly).release();
    expect(readdirSync(tmpOnly)).toEqual([]);
    const fork = newRun('killed-fork');
    for (const f of ['model.net', 'history.json', 'history.csv']) writeFileSync(join(fork, f), '');
    RunDir.create(fork).release();
    expect(readdirSync(fork)).toEqual([]);
    // A model.net of the user's, with no run.json beside it, is kept.
    const mine = join(tmp, 'mine-with-history');
    mkdirSync(mine);
    for (const f of ['model.net', 'history.json']) writeFileSync(join(mine, f), 'mine\n');
    expect(() => RunDir.create(mine)).toThrow(`--out ${mine} is not empty (history.json, model.net)`);
  });

  it('a run with its final weights but no checkpoint is not started over', () => {
    const dir = newRun('weights-only');
    writeFileSync(join(dir, 'weights.safetensors'), 'w');
    expect(() => RunDir.create(dir)).toThrow(`--out ${dir} is not empty (weights.safetensors)`);
    expect(readdirSync(dir).sort()).toEqual(['run.json', 'weights.safetensors']);
  });

  it('refuses a file in the way, and a folder it cannot write (before anything else)', () => {
    writeFileSync(join(tmp, 'a-file'), '');
    expect(() => RunDir.create(join(tmp, 'a-file'))).toThrow('a file is in the way of the run directory');
    expect(() => RunDir.create('/proc/fmgpu-nope')).toThrow(/cannot create the run directory \/proc\/fmgpu-nope/);
  });
});

describe('one writer at a time', () => {
  it('a second writer is refused while the first holds the lock; the lock goes with release', () => {
    const dir = newRun('locked', 1);
    const first = RunDir.open(dir);
    expect(() => RunDir.open(dir)).toThrow(
      new UsageError(
        `${dir} is being written by fmgpu (pid ${process.pid}): wait for it to finish, ` +
          `or remove ${join(dir, 'fmgpu.lock')} if no fmgpu is running`,
      ),
    );
    expect(() => RunDir.create(dir)).toThrow('is being written by fmgpu');
    first.release();
    expect(existsSync(join(dir, 'fmgpu.lock'))).toBe(false);
    RunDir.open(dir).release();
  });

  it('a lock left by a process that is gone is stale: taken over', () => {
    const dir = newRun('stale', 1);
    const gone = spawnSync('true').pid!;
    writeFileSync(join(dir, 'fmgpu.lock'), JSON.stringify({ pid: gone, host: hostname(), token: 'old' }));
    const run = RunDir.open(dir);
    expect(JSON.parse(readFileSync(join(dir, 'fmgpu.lock'), 'utf8')).pid).toBe(process.pid);
    run.release();
    expect(readdirSync(dir).sort()).toEqual(['checkpoint', 'run.json']);
  });

  it('a lock left by a process that exited but was not reaped (a zombie) is stale too', async () => {
    const dir = newRun('zombie', 1);
    // sh starts a short sleep, prints its pid, then becomes a long sleep that never reaps it.
    const parent = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const pid = Number(await new Promise<string>((done) => parent.stdout.once('data', (d: Buffer) => done(String(d)))));
    await new Promise((done) => setTimeout(done, 400));
    expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).toMatch(/\) Z/);
    writeFileSync(join(dir, 'fmgpu.lock'), JSON.stringify({ pid, host: hostname(), token: 'zombie' }));
    RunDir.open(dir).release();
    parent.kill();
  });

  it("a lock of another machine's process is not judged stale", () => {
    const dir = newRun('remote', 1);
    writeFileSync(join(dir, 'fmgpu.lock'), JSON.stringify({ pid: 1, host: 'elsewhere.example', token: 'x' }));
    expect(() => RunDir.open(dir)).toThrow(`${dir} is being written by fmgpu (pid 1 on elsewhere.example)`);
  });
});

describe('writes that fail leave nothing behind and name the file', () => {
  it('writeFileAtomic and RunDir.write', () => {
    const dir = newRun('failing');
    mkdirSync(join(dir, 'report.html', 'inside'), { recursive: true });
    const run = RunDir.open(dir);
    expect(() => run.write('report.html', 'page')).toThrow(`cannot write ${join(dir, 'report.html')}: `);
    expect(() => writeFileAtomic(join(dir, 'report.html'), 'page')).toThrow(
      `cannot write ${join(dir, 'report.html')}: `,
    );
    run.release();
    expect(readdirSync(dir).sort()).toEqual(['report.html', 'run.json']);
  });

  it('a full disk: ENOSPC names the file, and the temporary file goes', () => {
    const dir = newRun('full-disk');
    const run = RunDir.open(dir);
    // The temporary name leads to /dev/full, where every write fails with ENOSPC.
    symlinkSync('/dev/full', join(dir, 'metrics.json.tmp'));
    expect(() => run.write('metrics.json', '{}')).toThrow(
      `cannot write ${join(dir, 'metrics.json')}: no space left on device`,
    );
    run.release();
    expect(readdirSync(dir).sort()).toEqual(['run.json']);
  });
});

describe('runs as eval and predict read them', () => {
  it('weights.safetensors when the run finished, the last checkpoint when it was interrupted', () => {
    const dir = join(tmp, 'run');
    makeDir(dir);
    writeFileSync(join(dir, 'model.net'), 'dense 10 softmax\n');
    save(dir, 3);
    expect(Array.from(readRun(dir).weights.get('dense1.weight')!.data)).toEqual([3, 4, 5, 6, 7, 8]);
    writeFileAtomic(join(dir, 'weights.safetensors'), encodeSafetensors(tensors(9), { 'fmgpu.version': '0.1.0' }));
    const run = readRun(dir);
    expect(run.weights.get('dense1.weight')!.data[0]).toBe(9);
    expect(run.metadata['fmgpu.version']).toBe('0.1.0');
    expect(run.source).toBe('dense 10 softmax\n');
    expect(readdirSync(dir).some((f) => f.includes('.tmp-'))).toBe(false);
  });

  it.each([
    ['missing', join(tmp, 'nope'), `run directory ${join(tmp, 'nope')} not found`],
    ['without model.net', tmp, `${tmp}: not a run directory (no model.net)`],
  ])('refuses a run directory %s', (_, dir, message) => {
    expect(() => readRun(dir)).toThrow(message);
  });

  it('refuses a run with neither weights nor checkpoint, saying how to train it again', () => {
    const dir = join(tmp, 'empty-run');
    makeDir(dir);
    writeFileSync(join(dir, 'model.net'), '');
    expect(() => readRun(dir)).toThrow(
      `${dir}: no weights.safetensors and no checkpoint: the run stopped before its first epoch ended ` +
        `(train it again with --out ${dir})`,
    );
  });

  it('a file given for a run, and a folder of runs, are named as what they are', () => {
    const file = join(tmp, 'model.net');
    writeFileSync(file, 'dense 10 softmax\n');
    expect(() => readRun(file)).toThrow(
      `${file} is a file, not a run directory (the folder fmgpu train writes, under runs/ by default)`,
    );
    const runs = join(tmp, 'runs');
    for (const r of ['b', 'a']) {
      makeDir(join(runs, r));
      writeFileSync(join(runs, r, 'model.net'), 'dense 10 softmax\n');
    }
    expect(() => readRun(runs)).toThrow(
      `${runs}: not a run directory (no model.net); the runs in it: ${join(runs, 'a')}, ${join(runs, 'b')}`,
    );
  });
});

describe('small parts', () => {
  it('makeDir makes parents, accepts an existing folder, and fails cleanly under /proc', () => {
    const deep = join(tmp, 'a', 'b', 'c');
    makeDir(deep);
    makeDir(deep);
    expect(existsSync(deep)).toBe(true);
    // Node 20's recursive mkdirSync never returns here.
    expect(() => makeDir('/proc/fmgpu-nope/x')).toThrow(/ENOENT/);
  });

  it('defaultRunDir: runs/<model>-<UTC timestamp>', () => {
    expect(defaultRunDir('examples/quick.net', new Date(Date.UTC(2026, 0, 2, 3, 4, 5)))).toBe(
      join('runs', 'quick-20260102-030405'),
    );
  });

  it('history.csv: a header, one row per epoch, empty cells where there was no validation', () => {
    const csv = historyCsv([
      { epoch: 1, seconds: 2.5, loss: 0.5, accuracy: 0.75, lr: 0.001 },
      { epoch: 2, seconds: 2, loss: 0.25, accuracy: 0.875, val_loss: 0.3, val_accuracy: 0.9, lr: 0.0005 },
    ]);
    expect(csv).toBe(
      'epoch,seconds,loss,accuracy,val_loss,val_accuracy,lr\n1,2.5,0.5,0.75,,,0.001\n2,2,0.25,0.875,0.3,0.9,0.0005\n',
    );
  });
});
