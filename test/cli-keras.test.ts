// What a Keras user meets in the built CLI. Early stopping: said on the terminal and in --json,
// kept in state.json, shown in report.html, honoured by --resume; without a validation set, a
// warning that says what it watches instead. The training log: the model's own name on resume, the
// augmentation, --init's weights. eval's text confusion matrix.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ensureBuilt, idx, syntheticImages, writeIdxDir } from './helpers/files.ts';
import { confusionTable } from '../src/train/metrics.ts';

const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', NO_COLOR: '1' };
const fmgpu = (...args: string[]) => {
  const r = spawnSync('node', ['bin/fmgpu.js', ...args], { encoding: 'utf8', env, timeout: 300_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

const tmp = mkdtempSync(join(tmpdir(), 'fmgpu-early-'));
const data = join(tmp, 'data');
const NET = join(tmp, 'stall.net');

/**
 * Training images whose last tenth (the validation split) all carry a wrong label: as the network
 * learns, val_loss rises, so patience 1 ends training within a few epochs.
 */
function writeStallingData(dir: string): void {
  writeIdxDir(dir, 640, 100);
  const { images, labels } = syntheticImages(640, 1);
  for (let i = 576; i < 640; i++) labels[i] = (labels[i]! + 3) % 10;
  writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(idx(2051, [640, 28, 28], images)));
  writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(idx(2049, [640], labels)));
}

beforeAll(() => {
  ensureBuilt();
  mkdirSync(data, { recursive: true });
  writeStallingData(data);
  writeFileSync(NET, 'conv 4 3x3 relu\npool 2\ndense 10 softmax\ntrain epochs=8 batch=32 lr=0.01 validation=0.1\n');
}, 120_000);

interface Log {
  epoch: number;
  val_loss: number;
}

describe('early stopping', () => {
  const run = join(tmp, 'run');
  let out = '';
  let history: Log[] = [];

  beforeAll(() => {
    const r = fmgpu('train', NET, '--data', data, '--early-stop', '1', '--out', run);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    out = r.out;
    history = JSON.parse(readFileSync(join(run, 'history.json'), 'utf8')) as Log[];
  }, 300_000);

  it('says on the terminal where it stopped and which weights it restored, as Keras does', () => {
    const stopped = history.at(-1)!.epoch;
    expect(stopped).toBeLessThan(8);
    const best = history.reduce((b, e) => (e.val_loss < b.val_loss ? e : b));
    expect(out).toContain(
      `early stopping at epoch ${stopped} of 8: val_loss has not improved in 1 epoch (patience 1); ` +
        `restoring model weights from the end of the best epoch: ${best.epoch} (val_loss ${best.val_loss.toFixed(4)})`,
    );
    // After the last epoch's line, before the test score.
    const lines = out.split('\n');
    const at = lines.findIndex((l) => l.startsWith('early stopping'));
    expect(lines[at - 1]).toMatch(new RegExp(`^epoch ${stopped}/8 `));
    expect(lines[at + 1]).toMatch(/^test: /);
  });

  it('keeps the stop in state.json and shows it in report.html', () => {
    const state = JSON.parse(readFileSync(join(run, 'checkpoint', 'state.json'), 'utf8'));
    const stopped = history.at(-1)!.epoch;
    expect(state.monitor).toEqual({ bad: 1, lrScale: 1, stopped });
    const best = state.best.epoch as number;
    const html = readFileSync(join(run, 'report.html'), 'utf8');
    expect(html).toContain(
      `Training stopped early at epoch ${stopped} of 8 (val_loss had not improved in 1 epoch, patience 1); ` +
        `the weights of epoch ${best}, the best, were restored at the end: the test scores are theirs.`,
    );
    // The best epoch is marked on both curves.
    expect(html.match(new RegExp(`>best epoch ${best}</text>`, 'g'))).toHaveLength(2);
    expect(html).toContain(`>${stopped} of 8<`);
  });

  it('--resume of a stopped run evaluates without training; a larger patience trains on', () => {
    const again = fmgpu('train', '--resume', run, '--out', join(tmp, 'again'));
    expect(again.code).toBe(0);
    // The summary names the model the run was trained from, not the run's copy of it.
    expect(again.out).toContain('Model: "stall"');
    expect(again.out).not.toContain('Model: "model"');
    const stopped = history.at(-1)!.epoch;
    expect(again.out).toContain(
      `early stopping ended it at epoch ${stopped} (patience 1): evaluating; ` +
        'a larger --early-stop, or --early-stop 0, trains on',
    );
    expect(again.out).not.toMatch(/^epoch \d+\/8 /m);
    const more = fmgpu('train', '--resume', run, '--out', join(tmp, 'more'), '--early-stop', '0', '--json');
    expect(more.code).toBe(0);
    const events = more.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events.filter((e) => e.event === 'epoch').map((e) => e.epoch)[0]).toBe(stopped + 1);
  });

  it('--json: an early_stop event after the last epoch', () => {
    const r = fmgpu('train', NET, '--data', data, '--early-stop', '1', '--out', join(tmp, 'json'), '--json');
    expect(r.code).toBe(0);
    const events = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const i = events.findIndex((e) => e.event === 'early_stop');
    const stopped = history.at(-1)!.epoch;
    const best = history.reduce((b, e) => (e.val_loss < b.val_loss ? e : b));
    expect(events[i]).toEqual({
      event: 'early_stop',
      epoch: stopped,
      epochs: 8,
      patience: 1,
      monitor: 'val_loss',
      best_epoch: best.epoch,
      best: best.val_loss,
      restored_epoch: best.epoch,
    });
    expect(events[i - 1]).toMatchObject({ event: 'epoch', epoch: stopped });
    expect(events[i + 1]).toMatchObject({ event: 'test' });
  });

  it('without a validation set: a warning that says the training loss is watched instead', () => {
    const r = fmgpu(
      'train',
      NET,
      '--data',
      data,
      '--validation',
      '0',
      '--early-stop',
      '2',
      '--epochs',
      '1',
      '--out',
      join(tmp, 'noval'),
    );
    expect(r.code).toBe(0);
    expect(r.err).toBe(
      'fmgpu: warning: there is no validation set, so early stopping (patience 2) watches the training loss and ' +
        'restores the weights of the epoch where it was lowest; to watch val_loss, hold out validation: ' +
        'validation=0.1 in the train line, or --validation 0.1\n',
    );
  });
});

describe('the training log and eval', () => {
  const run = join(tmp, 'run');

  it('names the augmentation in use and the weights --init starts from', () => {
    const first = readFileSync(join(run, 'report.html'), 'utf8');
    expect(first).toContain('fmgpu report'); // the run above exists
    const net = join(tmp, 'augmented.net');
    writeFileSync(net, `${readFileSync(NET, 'utf8')}augment shift=2 flip rotate=10\n`);
    const r = fmgpu('train', net, '--data', data, '--init', run, '--epochs', '1', '--out', join(tmp, 'init'));
    expect(r.code).toBe(0);
    expect(r.out).toContain('\naugmentation: shift=2 flip rotate=10 (training batches only)\n');
    expect(r.out).toContain(`\ninitial weights: ${join(run, 'weights.safetensors')} (--init ${run})\n`);
    const plain = fmgpu('train', NET, '--data', data, '--epochs', '1', '--out', join(tmp, 'plain'), '--json');
    const start = JSON.parse(plain.out.split('\n')[0]!);
    expect(start).toMatchObject({ event: 'start', augment: null, init: null });
    const text = fmgpu('train', NET, '--data', data, '--epochs', '1', '--out', join(tmp, 'plain2'));
    expect(text.out).toContain('\naugmentation: none\n');
    expect(text.out).not.toContain('initial weights');
  });

  it('eval prints the confusion matrix with aligned, numbered columns and whole class names', () => {
    const r = fmgpu('eval', run, '--data', data);
    expect(r.code).toBe(0);
    const j = JSON.parse(fmgpu('eval', run, '--data', data, '--json').out.trim());
    const table = confusionTable(j.confusion);
    expect(r.out).toContain(`\n${table}\n`);
    expect(table.split('\n')[0]).toMatch(/^true \\ predicted {4}0 {4}1/);
    expect(table).toContain('\n9 Ankle boot ');
  });
});
