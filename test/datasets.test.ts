// Data beyond Fashion-MNIST (issue 19, steps 1–2), through the built CLI on small generated idx
// sets: any image size and label range, the class count and names from the data (classes.txt, or
// the label numbers), the network checked against them before training, and every class list after
// it (metrics.json, eval, predict, report) naming them; resume; refusals exit 2.
import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, idxFolder } from './helpers/files.ts';
import { Rng } from '../src/util/rng.ts';
import { CLASS_NAMES, isFashionMnist, labelRange, parseClassList } from '../src/data/classes.ts';
import { loadFashionMnist } from '../src/node/data.ts';
import { fmgpu } from './helpers/cli.ts';
import { decodeSafetensors } from '../src/model/safetensors.ts';
import { trainedWith } from '../src/model/trained-with.ts';

const tmp = mkdtempSync(join(tmpdir(), 'fmgpu-datasets-'));

/** side×side images of `classes` classes: class c is a bright band at the c-th of `classes` row bands. */
function bands(n: number, side: number, classes: number, seed: number): { images: Uint8Array; labels: Uint8Array } {
  const rng = new Rng(seed);
  const images = new Uint8Array(n * side * side);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = rng.int(classes);
    labels[i] = c;
    for (let y = 0; y < side; y++)
      for (let x = 0; x < side; x++)
        images[(i * side + y) * side + x] = (Math.floor((y * classes) / side) === c ? 200 : 0) + rng.int(40);
  }
  return { images, labels };
}

/** A folder of idx files of side×side images (labels gzipped, images plain), with classes.txt if named. */
const idxDir = (name: string, side: number, classes: number, names?: string[]): string =>
  idxFolder(join(tmp, name), { train: 96, test: 30, side, names, plain: 'images' }, (n, seed) =>
    bands(n, side, classes, seed),
  );

const net = (name: string, outputs: number, extra = ''): string => {
  const file = join(tmp, name);
  writeFileSync(file, `${extra}conv 4 3x3 same relu\npool 2\nflatten\ndense ${outputs} softmax\n`);
  return file;
};

describe('class names come from the data', () => {
  it('classes.txt: one name a line; empty and repeated names refused with their line', () => {
    expect(parseClassList('\uFEFFcat\r\ndog\n\n', 'c.txt')).toEqual(['cat', 'dog']);
    expect(() => parseClassList('cat\n\ndog\n', 'c.txt')).toThrow('c.txt:2: an empty class name (class 1)');
    expect(() => parseClassList('cat\ndog\ncat\n', 'c.txt')).toThrow(
      'c.txt:3: class name "cat" is already class 0 (line 1)',
    );
    expect(() => parseClassList('\n', 'c.txt')).toThrow('c.txt: no class names');
  });

  it("Fashion-MNIST's names for its own files only; other labels by their numbers", () => {
    expect(labelRange(Uint8Array.of(0, 4), Uint8Array.of(2))).toBe(5);
    expect(isFashionMnist(Uint8Array.of(9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 1), null)).toBe(true);
    expect(isFashionMnist(Uint8Array.of(5, 0, 4, 1, 9, 2, 1, 3, 1, 4), Uint8Array.of(7, 2, 1, 0))).toBe(false);
    expect(loadFashionMnist(undefined, { subset: 10 }).classes).toEqual([...CLASS_NAMES]);
    const three = loadFashionMnist(idxDir('numbers', 12, 3));
    expect(three.classes).toEqual(['0', '1', '2']);
    expect([three.train.rows, three.train.cols]).toEqual([12, 12]);
  });
});

describe('a 16x16 idx set of 3 named classes, through the CLI', () => {
  const data = idxDir('sixteen', 16, 3, ['top', 'middle', 'bottom']);
  const run = join(tmp, 'run');
  beforeAll(() => {
    ensureBuilt();
  });

  it('a network that ends in another count is refused before training, naming both', () => {
    const bad = net('ten.net', 10);
    const r = fmgpu('train', bad, '--data', data, '--out', join(tmp, 'never'));
    expect(r.code).toBe(2);
    expect(r.err.split('\n')[0]).toBe(`${bad}:4:1: error: the network ends in 10 outputs but the data has 3 classes`);
  });

  it('labels past classes.txt are refused, naming the list', () => {
    const dir = idxDir('short-list', 16, 3, ['top', 'middle']);
    const r = fmgpu('train', net('two.net', 2), '--data', dir, '--out', join(tmp, 'never2'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/label 2 at index \d+ is outside 0–1 \(.*classes\.txt names 2\)/);
  });

  it('trains with the input taken from the data; metrics, eval, predict and report name the classes', () => {
    const model = net('three.net', 3, 'train epochs=1 batch=16 validation=0\n');
    const r = fmgpu('train', model, '--data', data, '--out', run);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const info = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
    expect(info.classes).toEqual(['top', 'middle', 'bottom']);
    expect(info.shape).toEqual({ h: 16, w: 16, c: 1 });
    // The weights file says so too, for the page that reads it without run.json (grey: no normalisation).
    const { metadata } = decodeSafetensors(new Uint8Array(readFileSync(join(run, 'weights.safetensors'))));
    expect(trainedWith(metadata, 'weights.safetensors')).toEqual({ classes: ['top', 'middle', 'bottom'] });
    const metrics = JSON.parse(readFileSync(join(run, 'metrics.json'), 'utf8'));
    expect(typeof metrics.test_accuracy).toBe('number');
    expect(metrics.per_class.map((c: { name: string }) => c.name)).toEqual(['top', 'middle', 'bottom']);
    expect(metrics.confusion).toHaveLength(9);
    expect(metrics.per_class.reduce((a: number, c: { support: number }) => a + c.support, 0)).toBe(30);

    const ev = fmgpu('eval', run);
    expect(ev.code).toBe(0);
    expect(ev.out).toContain('2 bottom');
    expect(ev.out).toMatch(/^\s+middle\s+\d\.\d\d/m);
    const p = fmgpu('predict', run, '--test', '0-1', '--json');
    expect(p.code).toBe(0);
    for (const line of p.out.trim().split('\n')) {
      const o = JSON.parse(line);
      expect(o.top).toHaveLength(3);
      expect(['top', 'middle', 'bottom']).toContain(o.truth.class);
    }
    const rep = fmgpu('report', run, '--data', data);
    expect(rep.code).toBe(0);
    expect(readFileSync(join(run, 'report.html'), 'utf8')).toContain('>middle<');
  });

  it('resumes, checked against the same classes', () => {
    const r = fmgpu('train', '--resume', run, '--epochs', '2');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('epoch 2/2');
  });

  it('a test set with labels past the run’s classes is refused by eval, predict --test and report', () => {
    const four = idxDir('four', 16, 4);
    for (const cmd of [['eval'], ['predict', '--test', '0'], ['report', '--out', join(four, 'r.html')]]) {
      const r = fmgpu(cmd[0]!, run, ...cmd.slice(1), '--data', four);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/^fmgpu: error: .*four \(.* has 3 classes\): label 3 at index \d+ is outside 0–2$/);
    }
  });
});

describe('idx files of any size: 28x28 MNIST-like labels by number, 8x8', () => {
  beforeAll(() => {
    ensureBuilt();
  });
  it('images larger than the batch gather takes are refused before a run is written', () => {
    const data = idxDir('big-130', 130, 2);
    const run = join(tmp, 'run-130');
    const r = fmgpu(
      'train',
      net('n130.net', 2, 'train epochs=1 batch=16 validation=0\n'),
      '--data',
      data,
      '--out',
      run,
    );
    expect(r.err).toBe(
      `fmgpu: error: ${data}: images of 130x130x1, more than the 128x128x4 fmgpu trains on (image folders and ` +
        'photos are resized to the input line)',
    );
    expect(r.code).toBe(2);
    expect(existsSync(run)).toBe(false);
  });
  it.each([
    [8, 5],
    [28, 10],
  ])('%i-pixel square images of %i classes train and name their classes by number', (side, classes) => {
    const data = idxDir(`any-${side}`, side, classes);
    const run = join(tmp, `run-${side}`);
    const r = fmgpu(
      'train',
      net(`n${side}.net`, classes, 'train epochs=1 batch=16 validation=0\n'),
      '--data',
      data,
      '--out',
      run,
    );
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const metrics = JSON.parse(readFileSync(join(run, 'metrics.json'), 'utf8'));
    expect(metrics.per_class.map((c: { name: string }) => c.name)).toEqual(
      Array.from({ length: classes }, (_, c) => String(c)),
    );
  });
});
