// CSV of any size and channel count (issue 19): H×W×C from the network's `input` line, each line's
// pixels H×W×C (channels together) held channel-planar; labels as numbers or names (classes in order
// of first appearance in the training file, recorded in run.json); the column count checked against
// the input in one line naming both.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt } from './helpers/files.ts';
import { LabelNames, parseCsv } from '../src/data/csv.ts';
import { Rng } from '../src/util/rng.ts';
import { fmgpu } from './helpers/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'fmgpu-csv-'));

describe('CSV shapes and named labels (no GPU)', () => {
  it('H×W×C lines are held channel-planar', () => {
    // 1x2 pixels of 3 channels: (1,2,3) (4,5,6).
    const ds = parseCsv('7,1,2,3,4,5,6\n', 'f.csv', { rows: 1, cols: 2, channels: 3 });
    expect(ds.channels).toBe(3);
    expect(Array.from(ds.images)).toEqual([1, 4, 2, 5, 3, 6]);
    expect(Array.from(ds.labels)).toEqual([7]);
  });

  it('names become classes in order of first appearance; a fixed list refuses others', () => {
    const names = new LabelNames();
    const shape = { rows: 1, cols: 1, names };
    const ds = parseCsv('label,pixel1\ndog,1\ncat,2\ndog,3\n', 'f.csv', shape);
    expect(names.list).toEqual(['dog', 'cat']);
    expect(Array.from(ds.labels)).toEqual([0, 1, 0]);
    names.fixed = true;
    names.from = 'train.csv';
    expect(() => parseCsv('cat,1\nbird,2\n', 'g.csv', shape)).toThrow(
      'g.csv:2: label "bird" is not one of the 2 classes of train.csv',
    );
    expect(() => parseCsv('cat,1\n3,2\n', 'g.csv', shape)).toThrow(
      'g.csv:2: label "3" is a number, but the labels above it are names',
    );
  });

  it('a line of another column count names the input it was checked against', () => {
    expect(() =>
      parseCsv('1,2,3\n', 'f.csv', { rows: 2, cols: 2, channels: 3, what: "the model's input 2x2x3" }),
    ).toThrow("f.csv:1: 3 columns, expected 13 (a label and 12 pixels of the model's input 2x2x3)");
  });
});

/** n lines of a name and 8x8x3 pixels (H×W×C): class k bright in channel k. */
function csv(n: number, seed: number, classes = ['red', 'green', 'blue']): string {
  const rng = new Rng(seed);
  const lines = [`label,${Array.from({ length: 192 }, (_, i) => `p${i}`).join(',')}`];
  for (let i = 0; i < n; i++) {
    const k = rng.int(classes.length);
    const px = Array.from({ length: 192 }, (_, p) => (p % 3 === k ? 170 : 20) + rng.int(60));
    lines.push(`${classes[k]},${px.join(',')}`);
  }
  return `${lines.join('\n')}\n`;
}

describe('a colour CSV with named labels through the CLI', () => {
  it('trains, records the names, evaluates, predicts, resumes; wrong widths and names refused', () => {
    ensureBuilt();
    const train = join(tmp, 'train.csv');
    const test = join(tmp, 'test.csv');
    writeFileSync(train, csv(60, 1));
    writeFileSync(test, csv(20, 2));
    const net = join(tmp, 'c.net');
    writeFileSync(
      net,
      'input 8x8x3\nconv 4 3x3 same relu\nflatten\ndense 3 softmax\ntrain epochs=1 batch=10 validation=0\n',
    );
    const run = join(tmp, 'run');
    const r = fmgpu('train', net, '--csv', train, '--test-csv', test, '--out', run);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const info = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
    const first = readFileSync(train, 'utf8').split('\n')[1]!.split(',')[0];
    expect(info.classes[0]).toBe(first);
    expect([...info.classes].sort()).toEqual(['blue', 'green', 'red']);
    expect(info.shape).toEqual({ h: 8, w: 8, c: 3 });
    const metrics = JSON.parse(readFileSync(join(run, 'metrics.json'), 'utf8'));
    const ev = fmgpu('eval', run, '--json');
    expect(ev.err).toBe('');
    expect(JSON.parse(ev.out.trim()).test_accuracy).toBeCloseTo(metrics.test_accuracy, 6);
    const p = fmgpu('predict', run, '--csv', test);
    expect(p.code).toBe(0);
    expect(p.out.split('\n')[0]).toBe(`id,label,${info.classes.join(',')}`);
    const rep = fmgpu('report', run);
    expect(rep.err).toBe('');
    expect(rep.code).toBe(0);
    const html = readFileSync(join(run, 'report.html'), 'utf8');
    for (const name of info.classes as string[]) expect(html).toContain(`>${name}<`);
    const again = fmgpu('train', '--resume', run, '--epochs', '2');
    expect(again.err).toBe('');
    expect(again.code).toBe(0);

    const grey = join(tmp, 'grey.net');
    writeFileSync(grey, 'input 8x8x1\nconv 4 3x3 same relu\nflatten\ndense 3 softmax\n');
    const w = fmgpu('train', grey, '--csv', train, '--test-csv', test, '--out', join(tmp, 'never'));
    expect(w.code).toBe(2);
    expect(w.err).toBe(
      `fmgpu: error: ${train}:1: 193 columns, expected 65 (a label and 64 pixels of the model's input 8x8x1)`,
    );
    const other = join(tmp, 'other.csv');
    writeFileSync(other, csv(5, 3, ['red', 'cyan']));
    const o = fmgpu('train', net, '--csv', train, '--test-csv', other, '--out', join(tmp, 'never'));
    expect(o.code).toBe(2);
    expect(o.err.split('\n')).toHaveLength(1);
    expect(o.err).toContain(`label "cyan" is not one of the 3 classes of ${train}`);
  });
});
