// Class folders of PNG and JPEG images (issue 19): decoded, resized by area averaging to the network's
// input and channels; through the built CLI as DIR/train|test/<class>/ (train, eval, predict --test,
// resume) and as one tree split by validation= (the held-out part is the test set, as Keras evaluates
// on image_dataset_from_directory's validation subset); a corrupt image refused naming it.
import { beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { encodePng, ensureBuilt } from './helpers/files.ts';
import { loadFashionMnist } from '../src/node/data.ts';
import { folderLayout } from '../src/node/folders.ts';
import { fmgpu } from './helpers/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'fmgpu-folders-'));
const COLOURS: Record<string, [number, number, number]> = {
  blue: [20, 30, 220],
  green: [30, 200, 40],
  red: [210, 20, 30],
};

function flat(w: number, h: number, [r, g, b]: [number, number, number]): Uint8Array {
  const rgba = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) rgba.set([r, g, b, 255], i * 4);
  return rgba;
}

/** `per` images of each class in `dir`/<class>/: PNG and JPEG alternately, of mixed sizes. */
function classTree(dir: string, per: number): void {
  for (const [name, colour] of Object.entries(COLOURS)) {
    mkdirSync(join(dir, name), { recursive: true });
    for (let i = 0; i < per; i++) {
      const w = 12 + ((i * 7) % 30),
        h = 10 + ((i * 5) % 25);
      const rgba = flat(w, h, colour);
      if (i % 2 === 0) writeFileSync(join(dir, name, `${i}.png`), encodePng(w, h, rgba));
      else writeFileSync(join(dir, name, `${i}.jpg`), jpeg.encode({ width: w, height: h, data: rgba }, 95).data);
    }
    writeFileSync(join(dir, name, 'notes.txt'), 'not an image');
  }
}

const net = (name: string, input: string, validation: string): string => {
  const file = join(tmp, name);
  writeFileSync(
    file,
    `input ${input}\nconv 4 3x3 same relu\npool 2\nflatten\ndense 3 softmax\n` +
      `train epochs=1 batch=10 validation=${validation}\n`,
  );
  return file;
};

describe('class folders of images (no GPU)', () => {
  it('detects the layouts; decodes and resizes PNG and JPEG to the input, RGB or grey', () => {
    const split = join(tmp, 'unit');
    classTree(join(split, 'train'), 4);
    classTree(join(split, 'test'), 2);
    expect(folderLayout(split)).toBe('split');
    expect(folderLayout(join(split, 'train'))).toBe('tree');
    expect(folderLayout(join(split, 'train', 'red'))).toBeNull();
    const rgb = loadFashionMnist(split, { images: { input: { h: 8, w: 6, c: 3 }, validation: 0, seed: 1 } });
    expect(rgb.classes).toEqual(['blue', 'green', 'red']);
    expect([rgb.train.n, rgb.test.n, rgb.train.rows, rgb.train.cols, rgb.train.channels]).toEqual([12, 6, 8, 6, 3]);
    expect(Array.from(rgb.train.labels)).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    // A flat colour stays that colour after resizing (JPEG within its loss).
    const px = 8 * 6;
    for (let i = 0; i < rgb.train.n; i++) {
      const colour = Object.values(COLOURS)[rgb.train.labels[i]!]!;
      for (let k = 0; k < 3; k++)
        for (const v of rgb.train.images.subarray((i * 3 + k) * px, (i * 3 + k + 1) * px))
          expect(Math.abs(v - colour[k]!)).toBeLessThanOrEqual(8);
    }
    const grey = loadFashionMnist(split, { images: { input: { h: 5, w: 5, c: 1 }, validation: 0, seed: 1 } });
    expect(grey.train.channels).toBeUndefined();
    const [r, g, b] = COLOURS.red as [number, number, number];
    expect(Math.abs(grey.train.images[8 * 25]! - (0.299 * r + 0.587 * g + 0.114 * b))).toBeLessThanOrEqual(3);
  });

  it('one tree: the seeded last fraction is the test set; --subset spreads over the classes', () => {
    const dir = join(tmp, 'unit', 'train');
    const images = { input: { h: 4, w: 4, c: 3 }, validation: 0.25, seed: 7 };
    const a = loadFashionMnist(dir, { images, subset: 6 });
    expect([a.train.n, a.test.n]).toEqual([6, 3]);
    expect(new Set(a.train.labels).size).toBe(3);
    expect(a.heldOut).toContain('validation=0.25');
    const again = loadFashionMnist(dir, { images });
    expect(Array.from(again.test.labels)).toEqual(Array.from(a.test.labels));
    expect(() => loadFashionMnist(dir, { images: { ...images, validation: 0 } })).toThrow(/has no test set/);
  });
});

describe('what a class folder holds (no GPU)', () => {
  it("its subfolders' images too, sorted by path; hidden files, hidden folders and __MACOSX skipped", () => {
    const dir = join(tmp, 'nested');
    classTree(join(dir, 'train'), 2);
    classTree(join(dir, 'test'), 1);
    // After red's own 0.png and 1.jpg, by path: more/a.png (white), then more/deeper/b.png (black).
    mkdirSync(join(dir, 'train', 'red', 'more', 'deeper'), { recursive: true });
    writeFileSync(join(dir, 'train', 'red', 'more', 'a.png'), encodePng(3, 3, flat(3, 3, [255, 255, 255])));
    writeFileSync(join(dir, 'train', 'red', 'more', 'deeper', 'b.png'), encodePng(3, 3, flat(3, 3, [0, 0, 0])));
    // What a Mac leaves in a zip: ._ files beside each image, a __MACOSX folder, a hidden folder.
    writeFileSync(join(dir, 'train', 'red', '._0.png'), 'AppleDouble');
    mkdirSync(join(dir, 'train', '__MACOSX', 'red'), { recursive: true });
    writeFileSync(join(dir, 'train', '__MACOSX', 'red', '._0.png'), 'AppleDouble');
    mkdirSync(join(dir, 'train', 'red', '.cache'));
    writeFileSync(join(dir, 'train', 'red', '.cache', 'c.png'), 'not read');
    const images = { input: { h: 4, w: 4, c: 3 }, validation: 0, seed: 1 };
    const d = loadFashionMnist(dir, { images });
    expect(d.classes).toEqual(['blue', 'green', 'red']);
    expect(Array.from(d.train.labels)).toEqual([0, 0, 1, 1, 2, 2, 2, 2]);
    const px = 4 * 4 * 3;
    expect(d.train.images.subarray(6 * px, 7 * px).every((v) => v === 255)).toBe(true);
    expect(d.train.images.subarray(7 * px, 8 * px).every((v) => v === 0)).toBe(true);
  });

  it('train/ without test/ beside it (a train/ and val/ layout) is refused, not read as two classes', () => {
    const dir = join(tmp, 'train-val');
    classTree(join(dir, 'train'), 1);
    classTree(join(dir, 'val'), 1);
    const images = { input: { h: 4, w: 4, c: 3 }, validation: 0.5, seed: 1 };
    expect(() => loadFashionMnist(dir, { images })).toThrow(
      `${dir}: train/ holds class folders but there is no test/ beside it: fmgpu reads DIR/train/<class>/ with ` +
        'DIR/test/<class>/, or one tree DIR/<class>/ (--data DIR/train, its validation= holding out a test set)',
    );
  });
});

describe('class folders through the CLI', () => {
  const data = join(tmp, 'photos');
  const run = join(tmp, 'run');
  beforeAll(() => {
    ensureBuilt();
    classTree(join(data, 'train'), 10);
    classTree(join(data, 'test'), 4);
  });

  it('trains on train/ and tests on test/, the classes the folder names', () => {
    const r = fmgpu('train', net('rgb.net', '16x16x3', '0'), '--data', data, '--out', run);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const info = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
    expect(info.classes).toEqual(['blue', 'green', 'red']);
    expect(info.shape).toEqual({ h: 16, w: 16, c: 3 });
    expect(info.normalize.mean).toHaveLength(3);
  });

  it("eval, predict --test, report and resume read the folder at the run's input size", () => {
    const metrics = JSON.parse(readFileSync(join(run, 'metrics.json'), 'utf8'));
    const ev = fmgpu('eval', run, '--json');
    expect(ev.err).toBe('');
    expect(ev.code).toBe(0);
    expect(JSON.parse(ev.out.trim()).test_accuracy).toBeCloseTo(metrics.test_accuracy, 6);
    const p = fmgpu('predict', run, '--test', '0-2', '--json');
    expect(p.code).toBe(0);
    for (const line of p.out.trim().split('\n')) expect(COLOURS).toHaveProperty(JSON.parse(line).truth.class);
    const rep = fmgpu('report', run);
    expect(rep.err).toBe('');
    expect(rep.code).toBe(0);
    const html = readFileSync(join(run, 'report.html'), 'utf8');
    for (const name of Object.keys(COLOURS)) expect(html).toContain(`>${name}<`);
    const r = fmgpu('train', '--resume', run, '--epochs', '2');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('epoch 2/2');
  });

  it("a test folder of some of the run's classes is labelled by their names; a class not the run's is refused", () => {
    // green and red only: their labels are the run's 1 and 2 (blue, green, red), not 0 and 1.
    const some = join(tmp, 'some');
    classTree(join(some, 'train'), 2);
    classTree(join(some, 'test'), 2);
    for (const part of ['train', 'test']) rmSync(join(some, part, 'blue'), { recursive: true });
    const p = fmgpu('predict', run, '--data', some, '--test', '0-3', '--json');
    expect(p.err).toBe('');
    expect(p.code).toBe(0);
    const truth = p.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).truth);
    expect(truth.map((t) => t.class)).toEqual(['green', 'green', 'red', 'red']);
    expect(truth.map((t) => t.label)).toEqual([1, 1, 2, 2]);
    const ev = fmgpu('eval', run, '--data', some, '--json');
    expect(ev.code).toBe(0);
    const perClass = JSON.parse(ev.out.trim()).per_class;
    expect(perClass.map((c: { name: string; support: number }) => [c.name, c.support])).toEqual([
      ['blue', 0],
      ['green', 2],
      ['red', 2],
    ]);
    // A run whose classes are numbers (0, 1, 2: its run.json's copy edited) and a folder of classes 1 and 2:
    // labelled 1 and 2, not 0 and 1; scored beside a run that names them otherwise: refused.
    const digits = join(tmp, 'run-digits');
    cpSync(run, digits, { recursive: true });
    const info = JSON.parse(readFileSync(join(digits, 'run.json'), 'utf8'));
    writeFileSync(join(digits, 'run.json'), JSON.stringify({ ...info, classes: ['0', '1', '2'] }));
    const numbered = join(tmp, 'numbered');
    for (const part of ['train', 'test']) {
      cpSync(join(some, part), join(numbered, part), { recursive: true });
      renameSync(join(numbered, part, 'green'), join(numbered, part, '1'));
      renameSync(join(numbered, part, 'red'), join(numbered, part, '2'));
    }
    const d = fmgpu('predict', digits, '--data', numbered, '--test', '0-3', '--json');
    expect(d.err).toBe('');
    expect(
      d.out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).truth.label),
    ).toEqual([1, 1, 2, 2]);
    // Scored together (an ensemble), in either order, on any test set: refused, not averaged class by index.
    for (const runs of [
      [run, digits],
      [digits, run],
    ]) {
      const both = fmgpu('eval', ...runs, '--data', some);
      const lists = runs[0] === run ? 'blue, green, red; 0, 1, 2' : '0, 1, 2; blue, green, red';
      expect(both.err).toBe(
        `fmgpu: error: ${runs[0]} and ${runs[1]} have different classes (${lists}): ` +
          'runs scored together need the same classes in the same order',
      );
      expect(both.code).toBe(2);
    }
    expect(fmgpu('eval', run, digits).code).toBe(2);
    // A class the run does not have: refused, not scored as another.
    const other = join(tmp, 'other');
    classTree(join(other, 'train'), 1);
    classTree(join(other, 'test'), 1);
    for (const part of ['train', 'test']) renameSync(join(other, part, 'blue'), join(other, part, 'purple'));
    for (const cmd of [['eval'], ['predict', '--test', '0'], ['report', '--out', join(tmp, 'other.html')]]) {
      const r = fmgpu(cmd[0]!, run, ...cmd.slice(1), '--data', other);
      expect(r.err).toBe(`fmgpu: error: ${other}: class "purple" is not a class of ${run} (blue, green, red)`);
      expect(r.code).toBe(2);
    }
  });

  it('one tree, grey: validation= holds out the test set, which eval scores again', () => {
    const tree = join(data, 'train');
    const treeRun = join(tmp, 'tree-run');
    const r = fmgpu('train', net('grey.net', '12x12x1', '0.2'), '--data', tree, '--out', treeRun);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('validation=0.2');
    const ev = fmgpu('eval', treeRun);
    expect(ev.code).toBe(0);
    expect(ev.out).toContain('(6 images');
    // split= chooses a fraction of the training images: a tree's held-out part is not one (refused, not ignored).
    const split = fmgpu('train', net('split.net', '12x12x1', '0.2'), '--data', tree, '--split', 'last');
    expect(split.err).toMatch(
      new RegExp(`^fmgpu: error: split=last does not apply to one tree of class folders \\(${tree}\\): the validation`),
    );
    expect(split.code).toBe(2);
    const none = fmgpu('train', net('none.net', '12x12x1', '0'), '--data', tree, '--out', join(tmp, 'never'));
    expect(none.code).toBe(2);
    expect(none.err.split('\n')).toHaveLength(1);
    expect(none.err).toContain('has no test set');
  });

  it('a corrupt image is refused in one line naming it', () => {
    const bad = join(tmp, 'bad');
    classTree(join(bad, 'train'), 2);
    classTree(join(bad, 'test'), 2);
    writeFileSync(join(bad, 'test', 'green', '1.jpg'), new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 4, 1, 2]));
    const r = fmgpu('train', net('bad.net', '8x8x3', '0'), '--data', bad, '--out', join(tmp, 'never'));
    expect(r.code).toBe(2);
    expect(r.err.split('\n')).toHaveLength(1);
    expect(r.err).toContain(`${join(bad, 'test', 'green', '1.jpg')}: not a readable JPEG`);
  });
});
