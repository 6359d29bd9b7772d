// Run directories (src/node/rundir.ts): checkpoints switched by one rename, reading them back, the
// weights eval and predict fall back to, and the refusals that name what is missing.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors, type NamedTensor } from '../src/model/safetensors.ts';
import { defaultRunDir, historyCsv, makeDir, readCheckpoint, readRun, writeCheckpoint, writeFileAtomic, type CheckpointState } from '../src/node/rundir.ts';

const tmp = mkdtempSync(join(tmpdir(), 'fmgpu-rundir-'));
const tensors = (v: number): Map<string, NamedTensor> => new Map([['dense1.weight', { shape: [2, 3], data: Float32Array.from({ length: 6 }, (_, i) => v + i) }]]);
const state = (epoch: number): CheckpointState => ({ epoch, step: epoch * 10, seed: 7, optimizer: 'adam', best: { value: 1 / epoch, epoch }, history: [] });
const save = (dir: string, epoch: number): void =>
  writeCheckpoint(dir, { weights: encodeSafetensors(tensors(epoch)), best: encodeSafetensors(tensors(-epoch)), optimizer: encodeSafetensors(tensors(100 + epoch)), state: state(epoch) });

describe('checkpoints', () => {
  it('each checkpoint is a new folder; the link switches to it and older folders go', () => {
    const dir = join(tmp, 'ck');
    makeDir(dir);
    save(dir, 1);
    const first = readlinkSync(join(dir, 'checkpoint'));
    save(dir, 2);
    const second = readlinkSync(join(dir, 'checkpoint'));
    expect(second).not.toBe(first);
    expect(second).toMatch(/^checkpoint-2-/);
    expect(readdirSync(dir).sort()).toEqual(['checkpoint', second]);
    const ck = readCheckpoint(dir);
    expect(ck.state).toEqual(state(2));
    expect(Array.from(ck.weights.get('dense1.weight')!.data)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(Array.from(ck.best!.get('dense1.weight')!.data)).toEqual([-2, -1, 0, 1, 2, 3]);
    expect(ck.optimizer.get('dense1.weight')!.shape).toEqual([2, 3]);
  });

  it('a run killed mid-write leaves the last complete checkpoint readable, and its debris is cleared next time', () => {
    const dir = join(tmp, 'killed');
    makeDir(dir);
    save(dir, 1);
    // What a kill between writing the new folder and the switch leaves behind.
    mkdirSync(join(dir, 'checkpoint-2-123'));
    writeFileSync(join(dir, 'checkpoint-2-123', 'weights.safetensors'), 'half');
    symlinkSync('checkpoint-2-123', join(dir, 'checkpoint.tmp-99999'));
    expect(readCheckpoint(dir).state.epoch).toBe(1);
    save(dir, 2);
    expect(readdirSync(dir).filter((f) => f !== 'checkpoint')).toEqual([readlinkSync(join(dir, 'checkpoint'))]);
  });

  const broken: [string, (dir: string) => void, string][] = [
    ['no checkpoint', () => undefined, 'no checkpoint to resume from'],
    ['a missing file', (d) => (save(d, 1), rmSync(join(d, 'checkpoint', 'optimizer.safetensors'))), 'optimizer.safetensors is missing: the checkpoint is incomplete'],
    ['unreadable state', (d) => (save(d, 1), writeFileSync(join(d, 'checkpoint', 'state.json'), '{')), 'state.json: unreadable'],
  ];
  it.each(broken)('refuses to resume from %s', (name, setup, message) => {
    const dir = join(tmp, `bad-${name.replace(/ /g, '-')}`);
    makeDir(dir);
    setup(dir);
    expect(() => readCheckpoint(dir)).toThrow(message);
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
    ['missing', join(tmp, 'nope'), 'run directory ' + join(tmp, 'nope') + ' not found'],
    ['without model.net', tmp, `${tmp}: not a run directory (no model.net)`],
  ])('refuses a run directory %s', (_, dir, message) => {
    expect(() => readRun(dir)).toThrow(message);
  });

  it('refuses a run with neither weights nor checkpoint', () => {
    const dir = join(tmp, 'empty-run');
    makeDir(dir);
    writeFileSync(join(dir, 'model.net'), '');
    expect(() => readRun(dir)).toThrow(`${dir}: no weights.safetensors and no checkpoint`);
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
    expect(defaultRunDir('examples/quick.net', new Date(Date.UTC(2026, 0, 2, 3, 4, 5)))).toBe(join('runs', 'quick-20260102-030405'));
  });

  it('history.csv: a header, one row per epoch, empty cells where there was no validation', () => {
    const csv = historyCsv([
      { epoch: 1, seconds: 2.5, loss: 0.5, accuracy: 0.75, lr: 0.001 },
      { epoch: 2, seconds: 2, loss: 0.25, accuracy: 0.875, val_loss: 0.3, val_accuracy: 0.9, lr: 0.0005 },
    ]);
    expect(csv).toBe('epoch,seconds,loss,accuracy,val_loss,val_accuracy,lr\n1,2.5,0.5,0.75,,,0.001\n2,2,0.25,0.875,0.3,0.9,0.0005\n');
  });
});
