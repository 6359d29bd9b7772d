// The user's own validation set, without a GPU (issue 18, item 4): the seeded, class-stratified
// split and its detection of data sorted by class, `validation=test` and `split=` in the language,
// CSV files without labels (predict --csv), and --test's index lists.
import { describe, expect, it } from 'vitest';
import { DslError, formatError, overrideTrain, parseNet } from '../dsl/index.ts';
import { firstLineLabelled, parseCsv } from '../src/data/csv.ts';
import { labelHistogram, validationSplit, type Dataset } from '../src/data/dataset.ts';
import { classQuotas, holdOut, sortedByClass, stratifiedSplit } from '../src/data/split.ts';
import { parseIndices } from '../src/cli/predict-sets.ts';
import { parseState } from '../src/node/state.ts';
import { Rng } from '../src/util/rng.ts';

/** n 2×2 images with these labels; pixel 0 holds the sample's index mod 256, to follow it. */
function dataset(labels: number[]): Dataset {
  const n = labels.length;
  const images = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) images.fill(i % 256, i * 4, i * 4 + 4);
  return { images, labels: Uint8Array.from(labels), n, rows: 2, cols: 2 };
}
const sorted = (perClass: number[]): number[] => perClass.flatMap((k, c) => new Array<number>(k).fill(c));
const shuffled = (n: number, seed: number): number[] => {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => rng.int(10));
};

describe('data sorted by class', () => {
  it.each([
    ['sorted', sorted([5, 5, 5]), true],
    ['grouped in another order of the classes', [2, 2, 0, 0, 0, 1], true],
    ['one class twice', [0, 0, 1, 1, 0], false],
    ['shuffled', shuffled(100, 1), false],
    ['one class only: nothing to stratify', [3, 3, 3], false],
    ['empty', [], false],
  ])('%s', (_, labels, want) => expect(sortedByClass(Uint8Array.from(labels))).toBe(want));
});

describe('the class-stratified random split', () => {
  it('classQuotas: the total, shared in proportion, remainders to the largest parts', () => {
    expect(classQuotas([50, 30, 20], 10)).toEqual([5, 3, 2]);
    expect(classQuotas([5, 5, 5], 4)).toEqual([2, 1, 1]); // ties go to the lower class
    expect(classQuotas([1, 9], 5)).toEqual([1, 4]); // 0.5 and 4.5: one each way, by remainder then class
    expect(classQuotas([0, 7], 3)).toEqual([0, 3]);
  });

  it.each([
    [sorted([60, 30, 10]), 0.1],
    [sorted([7, 7, 7, 7]), 0.25],
    [shuffled(101, 3), 0.3],
  ])('as many as Keras holds out, the fraction of each class, every sample once (%#)', (labels, f) => {
    const ds = dataset(labels);
    const { train, val } = stratifiedSplit(ds, f, 7);
    expect(val.n).toBe(validationSplit(ds, f).val.n);
    expect(train.n + val.n).toBe(ds.n);
    const all = labelHistogram(ds);
    const held = labelHistogram(val);
    all.forEach((k, c) => expect(Math.abs((held[c] as number) - k * f)).toBeLessThan(1));
    // Each sample once, in file order within each part (pixel 0 is its index).
    const ids = (d: Dataset): number[] => Array.from({ length: d.n }, (_, i) => d.images[i * 4] as number);
    expect([...ids(train), ...ids(val)].sort((a, b) => a - b)).toEqual(ids(ds));
    for (const part of [train, val]) expect(ids(part)).toEqual([...ids(part)].sort((a, b) => a - b));
    for (const part of [train, val]) ids(part).forEach((id, i) => expect(part.labels[i]).toBe(ds.labels[id]));
  });

  it('seeded: the same seed the same split, another seed another', () => {
    const ds = dataset(sorted([40, 40, 40]));
    const pick = (seed: number): number[] => Array.from(stratifiedSplit(ds, 0.25, seed).val.images);
    expect(pick(1)).toEqual(pick(1));
    expect(pick(2)).not.toEqual(pick(1));
  });

  it("holdOut auto: random for data sorted by class (not just its last class), Keras's last fraction else", () => {
    const byClass = dataset(sorted([20, 20, 20, 20]));
    const auto = holdOut(byClass, 0.25, 'auto', 0);
    expect(auto.split).toBe('random');
    expect(labelHistogram(auto.val).slice(0, 4)).toEqual([5, 5, 5, 5]);
    // Keras's split of the same data validates on the last class alone.
    expect(labelHistogram(holdOut(byClass, 0.25, 'last', 0).val).slice(0, 4)).toEqual([0, 0, 0, 20]);
    const mixed = dataset(shuffled(80, 5));
    const last = holdOut(mixed, 0.25, 'auto', 0);
    expect(last.split).toBe('last');
    expect(Array.from(last.val.images)).toEqual(Array.from(validationSplit(mixed, 0.25).val.images));
    expect(holdOut(mixed, 0.25, 'random', 0).split).toBe('random');
  });
});

describe('the language: validation=test, split=', () => {
  const error = (source: string): string => {
    try {
      parseNet(source, 'model.net');
    } catch (e) {
      if (e instanceof DslError) return formatError(e).split('\n')[0] as string;
    }
    throw new Error('no error');
  };
  it('validation=test and split=random parse; auto is the default', () => {
    expect(parseNet('dense 10\ntrain validation=test').train).toMatchObject({ validation: 'test', split: 'auto' });
    expect(parseNet('dense 10\ntrain validation=0.2 split=random').train).toMatchObject({
      validation: 0.2,
      split: 'random',
    });
  });
  it.each([
    [
      'train validation=tset',
      'model.net:2:18: error: expected a number in [0, 1) or test for validation ' +
        'but found "tset" (did you mean "test"?)',
    ],
    ['train validation=1', 'model.net:2:18: error: expected a number in [0, 1) or test for validation but found "1"'],
    ['train split=random', 'model.net:2:7: error: split applies only to a validation fraction but validation is 0'],
    [
      'train validation=test split=last',
      'model.net:2:23: error: split applies only to a validation fraction but validation is test',
    ],
    [
      'train split=rand validation=0.1',
      'model.net:2:13: error: expected auto, last or random for split but found "rand" (did you mean "random"?)',
    ],
  ])('%s', (line, message) => expect(error(`dense 10\n${line}`)).toBe(message));
  it('the command line: --validation test, --split', () => {
    const t = parseNet('dense 10\ntrain validation=0.1').train;
    const r = overrideTrain(t, 'validation', 'test');
    expect(r.ok && r.config.validation).toBe('test');
    const s = overrideTrain(t, 'split', 'last');
    expect(s.ok && s.config.split).toBe('last');
    expect(overrideTrain(parseNet('dense 10').train, 'split', 'random')).toEqual({
      ok: false,
      message: 'split applies only to a validation fraction but validation is 0',
    });
  });
});

describe('CSV files without labels, for predict --csv', () => {
  const shape = { rows: 2, cols: 2 };
  it('the first line that is not blank says which form a file has', () => {
    const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
    expect(firstLineLabelled(enc('\n\r\nlabel,a,b,c,d\n1,2'), shape)).toBe(true);
    expect(firstLineLabelled(enc('a,b,c,d\n'), shape)).toBe(false);
    expect(firstLineLabelled(enc('1,2,3\n'), shape)).toBe(null);
  });
  it('pixels alone: a header skipped, labels 0, errors name the pixel', () => {
    const ds = parseCsv('pixel1,pixel2,pixel3,pixel4\n1,2,3,4\n5,6,7,8\n', 'x.csv', { ...shape, labelled: false });
    expect(Array.from(ds.images)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(Array.from(ds.labels)).toEqual([0, 0]);
    expect(() => parseCsv('1,2,3,300\n', 'x.csv', { ...shape, labelled: false })).toThrow(
      'x.csv:1: pixel4 is 300, outside 0–255',
    );
    expect(() => parseCsv('1,2,3,4,5\n', 'x.csv', { ...shape, labelled: false })).toThrow(
      'x.csv:1: 5 columns, expected 4 (4 pixels)',
    );
  });
});

describe('predict --test indices', () => {
  it.each([
    ['5', [5]],
    ['3,8', [3, 8]],
    ['10-12,0', [10, 11, 12, 0]],
    [' 1 - 2 ', [1, 2]],
  ])('%s', (text, want) => expect(parseIndices(text, 20)).toEqual(want));
  it.each([
    ['20', '--test 20: the test set has 20 images (indices 0–19)'],
    ['x', '--test "x": expected indices like 5, 3,8 or 10-19'],
    ['-1', '--test "-1": expected indices like 5, 3,8 or 10-19'],
    ['5-2', '--test 5-2: a range runs from the lower index to the higher'],
    ['1,,2', '--test "1,,2": expected indices like 5, 3,8 or 10-19'],
  ])('%s is refused', (text, message) => expect(() => parseIndices(text, 20)).toThrow(message));
});

describe("state.json's validation record", () => {
  const state = (validation: unknown): string =>
    JSON.stringify({
      epoch: 0,
      step: 0,
      seed: 0,
      optimizer: 'adam',
      best: null,
      history: [],
      data: { images: 10, hash: 'x', validation },
    });
  it('is read, and checked', () => {
    const v = { set: 'random', images: 3, hash: 'h' };
    expect(parseState(state(v), 's.json').data?.validation).toEqual(v);
    expect(() => parseState(state({ ...v, set: 'middle' }), 's.json')).toThrow(
      's.json: "data".validation.set must be none, last, random, test or file, not "middle"',
    );
  });
});
