// The user's own validation set and predictions out, through the built CLI on small generated data
// (issue 18, item 4): validation=test, --val-data, --val-csv, the seeded class-stratified split for
// data sorted by class and its record in the checkpoint, honoured on resume; eval scoring a CSV run's
// own test set and naming it; predict --test and predict --csv --out. Every refusal exits 2.
import { beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, idxFolder, syntheticImages, writeIdxDir } from './helpers/files.ts';
import { CLASS_NAMES } from '../src/data/classes.ts';
import { decodeImage } from '../src/node/image.ts';
import { fmgpu, type CliResult as Result } from './helpers/cli.ts';

const NO_GPU = ['--adapter', 'no-such-gpu'];
const events = (r: Result): Record<string, unknown>[] =>
  r.out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
const state = (run: string) => JSON.parse(readFileSync(join(run, 'checkpoint', 'state.json'), 'utf8'));

const tmp = mkdtempSync(join(tmpdir(), 'fmgpu-val-'));
const mixed = join(tmp, 'mixed'); // labels in random order
const byClass = join(tmp, 'by-class'); // the same kind of images, sorted by class
const TINY = join(tmp, 'tiny.net');

/** Kaggle CSV text of n generated images (with a header; `labels: false`: the pixels alone). */
function csv(n: number, seed: number, labels = true): string {
  const { images, labels: y } = syntheticImages(n, seed);
  const head = Array.from({ length: 784 }, (_, i) => `pixel${i + 1}`);
  const rows = [(labels ? ['label', ...head] : head).join(',')];
  for (let i = 0; i < n; i++) {
    const px = Array.from(images.subarray(i * 784, (i + 1) * 784));
    rows.push((labels ? [y[i], ...px] : px).join(','));
  }
  return `${rows.join('\n')}\n`;
}

/** Generated images sorted by class. */
function sortedImages(n: number, seed: number): { images: Uint8Array; labels: Uint8Array } {
  const { images, labels } = syntheticImages(n, seed);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => labels[a]! - labels[b]! || a - b);
  const sorted = new Uint8Array(n * 784);
  order.forEach((src, i) => sorted.set(images.subarray(src * 784, (src + 1) * 784), i * 784));
  return { images: sorted, labels: Uint8Array.from(order, (i) => labels[i]!) };
}

/** A --data folder whose training images are sorted by class. */
const writeSortedIdxDir = (dir: string, nTrain: number, nTest: number): string =>
  idxFolder(dir, { train: nTrain, test: nTest, side: 28 }, (n, seed) =>
    seed === 1 ? sortedImages(n, seed) : syntheticImages(n, seed),
  );

beforeAll(() => {
  ensureBuilt();
  writeIdxDir(mixed, 160, 60);
  writeSortedIdxDir(byClass, 160, 60);
  writeFileSync(TINY, 'conv 2 3x3 relu\npool 2\ndense 10 softmax\ntrain epochs=1 batch=32 lr=0.01\n');
  writeFileSync(join(tmp, 'train.csv'), csv(128, 5));
  writeFileSync(join(tmp, 'test.csv'), csv(40, 6));
  writeFileSync(join(tmp, 'val.csv'), csv(24, 7));
  writeFileSync(join(tmp, 'pixels.csv'), csv(7, 8, false));
  // Its second image (line 3, under the header) has a label the data has no class for.
  writeFileSync(join(tmp, 'val-12.csv'), csv(4, 9).replace(/\n\d+,(?=[^\n]*\n[^\n]*\n[^\n]*\n$)/, '\n12,'));
  // The CSV files' classes are Fashion-MNIST's, named beside them (a random set of 40 may miss one).
  writeFileSync(join(tmp, 'classes.txt'), `${CLASS_NAMES.join('\n')}\n`);
  for (const dir of [mixed, byClass]) writeFileSync(join(dir, 'classes.txt'), `${CLASS_NAMES.join('\n')}\n`);
}, 120_000);

describe('a validation set of the user', () => {
  it('validation=test validates on the test set, as Keras validation_data=(x_test, y_test)', () => {
    const run = join(tmp, 'val-test');
    const r = fmgpu('train', TINY, '--data', mixed, '--out', run, '--validation', 'test');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('data: 160 training, 60 validation, 60 test images');
    expect(r.out).toContain('validation: the test set (validation=test)');
    expect(JSON.parse(readFileSync(join(run, 'history.json'), 'utf8'))[0].val_loss).toBeGreaterThan(0);
    expect(state(run).data.validation).toMatchObject({ set: 'test', images: 60 });
    // The same in the file's train line.
    const file = join(tmp, 'val-test.net');
    writeFileSync(file, readFileSync(TINY, 'utf8').replace('lr=0.01', 'lr=0.01 validation=test'));
    const j = fmgpu('train', file, '--data', mixed, '--out', join(tmp, 'val-test-file'), '--json');
    expect(events(j)[0]).toMatchObject({ event: 'start', train: 160, validation: 60, validation_set: 'test' });
  });

  it("--val-csv and --val-data: a set of its own, named; it replaces the file's validation fraction", () => {
    const run = join(tmp, 'val-csv');
    const r = fmgpu('train', TINY, '--data', mixed, '--out', run, '--val-csv', join(tmp, 'val.csv'));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('data: 160 training, 24 validation, 60 test images');
    expect(r.out).toContain(`validation: ${join(tmp, 'val.csv')}\n`);
    expect(state(run).data.validation).toMatchObject({ set: 'file', images: 24 });
    const file = join(tmp, 'val-tenth.net');
    writeFileSync(file, readFileSync(TINY, 'utf8').replace('lr=0.01', 'lr=0.01 validation=0.1'));
    const d = fmgpu('train', file, '--data', mixed, '--out', join(tmp, 'val-data'), '--val-data', byClass);
    expect(d.code).toBe(0);
    expect(d.out).toContain('data: 160 training, 60 validation, 60 test images');
    const named = join(byClass, 't10k-images-idx3-ubyte.gz');
    expect(d.out).toContain(`validation: ${named} (in place of the file's validation=0.1)`);
  });

  it("data sorted by class: a seeded random fraction of each class, recorded; --split last is Keras's", () => {
    const run = join(tmp, 'sorted');
    const r = fmgpu('train', TINY, '--data', byClass, '--out', run, '--validation', '0.25', '--epochs', '2');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain(
      'validation: a seeded random 25% of each class (split=random: the training data is sorted by class)',
    );
    expect(state(run).data.validation).toMatchObject({ set: 'random', images: 40 });
    const last = fmgpu(
      'train',
      TINY,
      '--data',
      byClass,
      '--out',
      join(tmp, 'sorted-last'),
      '--validation',
      '0.25',
      '--split',
      'last',
      '--json',
    );
    expect(events(last)[0]).toMatchObject({ validation: 40, validation_set: 'last' });
    // Mixed data keeps Keras's split unless told.
    const m = fmgpu('train', TINY, '--data', mixed, '--out', join(tmp, 'mixed-split'), '--validation', '0.25');
    expect(m.out).toContain("validation: the last 25% of the training images (Keras's validation_split)");
    const rnd = fmgpu(
      'train',
      TINY,
      '--data',
      mixed,
      '--out',
      join(tmp, 'mixed-rnd'),
      '--validation',
      '0.25',
      '--split',
      'random',
      '--json',
    );
    expect(events(rnd)[0]).toMatchObject({ validation_set: 'random' });

    // Resume honours the recorded split, and refuses another.
    const again = join(tmp, 'sorted-more');
    cpSync(run, again, { recursive: true });
    const ok = fmgpu('train', '--resume', again, '--epochs', '3');
    expect(ok.err).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('resuming at epoch 3 of 3');
    const refused = fmgpu('train', '--resume', run, '--split', 'last', ...NO_GPU);
    expect(refused.code).toBe(2);
    expect(refused.err).toBe(
      `fmgpu: error: --resume ${run}: the run was validated on a random fraction of each class (split=random), ` +
        'not the last fraction of the training images (split=last): a resumed run keeps its validation set',
    );
    const other = fmgpu('train', '--resume', run, '--val-csv', join(tmp, 'val.csv'), ...NO_GPU);
    expect(other.code).toBe(2);
    expect(other.err).toContain('the run was trained with validation 0.25, not validation 0');
    // Another --subset changes the validation images first: the message names --subset too.
    const fewer = fmgpu('train', '--resume', run, '--subset', '100', ...NO_GPU);
    expect(fewer.err).toMatch(
      /validation images are not the ones .*now: check --subset, --validation and the data source\)/,
    );

    // A checkpoint from before the data record: every run then held out the last fraction, so a
    // resume on data sorted by class keeps that split rather than taking today's default.
    const old = join(tmp, 'sorted-old');
    cpSync(join(tmp, 'sorted-last'), old, { recursive: true });
    const file = join(old, 'checkpoint', 'state.json');
    const { data: _, ...before } = state(old);
    writeFileSync(file, JSON.stringify(before));
    const resumed = fmgpu('train', '--resume', old, '--epochs', '3');
    expect(resumed.err).toBe('');
    expect(resumed.code).toBe(0);
    expect(resumed.out).toContain("validation: the last 25% of the training images (Keras's validation_split)");
  });
});

describe('refusals before the GPU is opened: exit 2, one line', () => {
  const rows: [string, () => string[], string][] = [
    [
      'two validation sets',
      () => ['--val-csv', join(tmp, 'val.csv'), '--val-data', byClass],
      '--val-data and --val-csv are two validation sets: give one',
    ],
    [
      'a fraction and a file',
      () => ['--validation', '0.1', '--val-csv', join(tmp, 'val.csv')],
      '--validation 0.1 and --val-csv are two validation sets: give one',
    ],
    [
      'split without a fraction',
      () => ['--split', 'random'],
      '--split: split applies only to a validation fraction but validation is 0',
    ],
    [
      'split with validation=test',
      () => ['--validation', 'test', '--split', 'last'],
      '--split: split applies only to a validation fraction but validation is test',
    ],
    [
      'a misspelt test',
      () => ['--validation', 'tset'],
      '--validation: expected a number in [0, 1) or test for validation but found "tset" (did you mean "test"?)',
    ],
    [
      'an unknown split',
      () => ['--validation', '0.1', '--split', 'shuffle'],
      '--split: expected auto, last or random for split but found "shuffle"',
    ],
    [
      'a missing --val-data folder',
      () => ['--val-data', join(tmp, 'nope')],
      `data directory ${join(tmp, 'nope')} not found`,
    ],
    ['a missing --val-csv file', () => ['--val-csv', join(tmp, 'nope.csv')], `${join(tmp, 'nope.csv')}: no such file`],
    [
      'a --val-csv label the data has no class for, at its line',
      () => ['--val-csv', join(tmp, 'val-12.csv')],
      `${join(tmp, 'val-12.csv')}:3 (the data has 10 classes): label 12 is outside 0–9`,
    ],
  ];
  it.each(rows)('%s', (_, args, message) => {
    const out = join(tmp, 'refused');
    const r = fmgpu('train', TINY, '--data', mixed, '--out', out, ...args(), ...NO_GPU);
    expect(r.err).toBe(`fmgpu: error: ${message}`);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(existsSync(out)).toBe(false);
  });
});

describe('eval names the test set; a CSV run scores its own', () => {
  const run = join(tmp, 'csv-run');
  it("no flags: the run's own test CSV; --data: the one given", () => {
    const t = fmgpu('train', TINY, '--csv', join(tmp, 'train.csv'), '--test-csv', join(tmp, 'test.csv'), '--out', run);
    expect(t.code).toBe(0);
    const r = fmgpu('eval', run);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]).toBe(
      `test set: ${join(tmp, 'test.csv')} (40 images, the one ${run} was trained with)`,
    );
    expect(r.out).toMatch(/test loss \d\.\d{4} {2}accuracy \d+\.\d\d% \(40 images\)/);
    const j = JSON.parse(fmgpu('eval', run, '--json').out.trim());
    expect(j).toMatchObject({ test_set: join(tmp, 'test.csv'), n: 40 });
    const given = fmgpu('eval', run, '--data', mixed);
    expect(given.out.split('\n')[0]).toBe(`test set: ${mixed} (60 images, given by --data)`);
  });
  it("report: the run's own test CSV too, named (not the default data folder)", () => {
    const r = fmgpu('report', run, '--out', join(tmp, 'csv-report.html'));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.split('\n').slice(0, 2)).toEqual([
      `test set: ${join(tmp, 'test.csv')} (40 images, the one ${run} was trained with)`,
      `report: ${join(tmp, 'csv-report.html')}`,
    ]);
    const given = fmgpu('report', run, '--data', mixed, '--out', join(tmp, 'mixed-report.html'));
    expect(given.out.split('\n')[0]).toBe(`test set: ${mixed} (60 images, given by --data)`);
  });
  it('runs trained on different test sets need one given; a test CSV that is gone is named', () => {
    const r = fmgpu('eval', run, join(tmp, 'val-csv'), ...NO_GPU);
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      `fmgpu: error: ${run} was tested on ${join(tmp, 'test.csv')} but ${join(tmp, 'val-csv')} on ${mixed}: ` +
        'give the test set to score them on with --data DIR or --test-csv FILE',
    );
    const moved = join(tmp, 'csv-run-moved');
    cpSync(run, moved, { recursive: true });
    const info = JSON.parse(readFileSync(join(moved, 'run.json'), 'utf8'));
    info.flags['test-csv'] = join(tmp, 'gone.csv');
    writeFileSync(join(moved, 'run.json'), JSON.stringify(info));
    const gone = fmgpu('eval', moved, ...NO_GPU);
    expect(gone.code).toBe(2);
    expect(gone.err).toBe(
      `fmgpu: error: ${join(tmp, 'gone.csv')}: no such file (the test set ${moved} was trained with): ` +
        'give one with --test-csv FILE or --data DIR',
    );
  });
});

describe('predictions out', () => {
  const run = () => join(tmp, 'val-test'); // trained on `mixed` above
  it('--test: test images by index, with their true class', () => {
    const r = fmgpu('predict', run(), '--test', '0,3-4');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toBe(`test set: ${mixed} (60 images, the one ${run()} was trained with)`);
    expect(lines.slice(1).map((l) => l.split(':')[0])).toEqual(['test[0]', 'test[3]', 'test[4]']);
    expect(lines[1]).toMatch(/^test\[0\]: [A-Za-z/ -]+ \d+\.\d%, .* \(true: [A-Za-z/ -]+, (right|wrong)\)$/);
    const j = events(fmgpu('predict', run(), '--test', '5', '--json'));
    const labels = syntheticImages(60, 2).labels;
    expect(j).toHaveLength(1);
    expect(j[0]).toMatchObject({ test: 5, truth: { label: labels[5] } });
    expect(j[0]!.top).toHaveLength(3);
    expect(events(fmgpu('predict', run(), '--test', '5', '--json', '--top', '10'))[0]!.top).toHaveLength(10);
    // --save-input: each test image as it is in the data, to look at (plt.imshow(x_test[5])).
    const seen = join(tmp, 'seen');
    expect(fmgpu('predict', run(), '--test', '5,0', '--save-input', seen).code).toBe(0);
    expect(readdirSync(seen).sort()).toEqual(['test-0.png', 'test-5.png']);
    const png = decodeImage(readFileSync(join(seen, 'test-5.png')), 'test-5.png');
    expect([png.width, png.height]).toEqual([28, 28]);
    const { images } = syntheticImages(60, 2);
    expect(Array.from({ length: 784 }, (_, i) => png.data[4 * i])).toEqual(
      Array.from(images.subarray(5 * 784, 6 * 784)),
    );
    // That PNG, predicted as a photo, gets what --test gives the image.
    const asPhoto = events(fmgpu('predict', run(), join(seen, 'test-5.png'), '--json'))[0]!;
    expect(asPhoto.top).toEqual(j[0]!.top);
    const csv = fmgpu('predict', run(), '--csv', join(tmp, 'pixels.csv'), '--top', '2');
    expect([csv.code, csv.err]).toEqual([
      2,
      "fmgpu: error: --top goes with images or --test: --csv writes every class's probability",
    ]);
  });
  it('--csv --out: a Kaggle submission, id from 1, label, a probability per class, written whole', () => {
    const file = join(tmp, 'predictions.csv');
    const r = fmgpu('predict', run(), '--csv', join(tmp, 'pixels.csv'), '--out', file);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toBe(`7 predictions of ${join(tmp, 'pixels.csv')} written to ${file}\n`);
    const rows = readFileSync(file, 'utf8').trim().split('\n');
    expect(rows[0]).toBe('id,label,T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot');
    expect(rows).toHaveLength(8);
    rows.slice(1).forEach((row, i) => {
      const [id, label, ...p] = row.split(',').map(Number);
      expect(id).toBe(i + 1);
      expect(p).toHaveLength(10);
      expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
      expect(label).toBe(p.indexOf(Math.max(...p)));
    });
    expect(readdirSync(tmp).filter((f) => f.startsWith('predictions.csv'))).toEqual(['predictions.csv']);
    // Without --out, to stdout; a labelled CSV is read too (its labels are not used).
    const s = fmgpu('predict', run(), '--csv', join(tmp, 'val.csv'));
    expect(s.code).toBe(0);
    expect(s.out.trim().split('\n')).toHaveLength(25);
  });
  const refusals: [string, () => string[], string][] = [
    ['--test out of range', () => ['--test', '60'], '--test 60: the test set has 60 images (indices 0–59)'],
    ['--test and --csv', () => ['--test', '1', '--csv', join(tmp, 'val.csv')], '--test and --csv: give one'],
    ['--out without --csv', () => ['--test', '1', '--out', join(tmp, 'x.csv')], '--out goes with --csv FILE'],
    [
      '--out a folder',
      () => ['--csv', join(tmp, 'val.csv'), '--out', tmp],
      `--out ${tmp} is a folder: name the CSV file to write`,
    ],
    [
      '--out in a missing folder',
      () => ['--csv', join(tmp, 'val.csv'), '--out', join(tmp, 'no', 'p.csv')],
      `--out ${join(tmp, 'no', 'p.csv')}: the folder ${join(tmp, 'no')} does not exist`,
    ],
    [
      '--out the CSV it reads (data loss)',
      () => ['--csv', join(tmp, 'val.csv'), '--out', join(tmp, 'val.csv')],
      `--out ${join(tmp, 'val.csv')} would overwrite ${join(tmp, 'val.csv')}, which fmgpu reads: name another file`,
    ],
    [
      "--out a file of the run (the run's weights)",
      () => ['--csv', join(tmp, 'val.csv'), '--out', join(run(), 'weights.safetensors')],
      `--out ${join(run(), 'weights.safetensors')} would overwrite ${join(run(), 'weights.safetensors')}, ` +
        'which fmgpu reads: name another file',
    ],
    [
      "--out a file of the run's checkpoint",
      () => ['--csv', join(tmp, 'val.csv'), '--out', join(run(), 'checkpoint', 'state.json')],
      `--out ${join(run(), 'checkpoint', 'state.json')} would overwrite ${join(run(), 'checkpoint', 'state.json')}, ` +
        'which fmgpu reads: name another file',
    ],
    [
      '--out a file of another kind (data loss)',
      () => ['--csv', join(tmp, 'val.csv'), '--out', join(tmp, 'notes.txt')],
      `--out ${join(tmp, 'notes.txt')} holds a file that is not a predictions CSV (id,label,…): fmgpu replaces only ` +
        'a file of the kind it writes; name another file, or remove that one first',
    ],
    [
      'images and --test',
      () => [join(tmp, 'x.png'), '--test', '1'],
      `predict takes image files or --test or --csv, not both ("${join(tmp, 'x.png')}" and the flag)`,
    ],
    [
      '--save-input with --csv',
      () => ['--csv', join(tmp, 'val.csv'), '--save-input', join(tmp, 'never-saved')],
      '--save-input goes with images or --test, not --csv',
    ],
    [
      '--invert with --test',
      () => ['--test', '1', '--invert'],
      '--invert applies to image files, not to --test or --csv',
    ],
    [
      'a CSV of neither form',
      () => ['--csv', join(tmp, 'bad.csv')],
      `${join(tmp, 'bad.csv')}:1: 3 columns, expected 785 (a label and 784 pixels of the model's input 28x28x1)`,
    ],
  ];
  it('--csv --out: a class name with a comma or a quote is quoted, so every row keeps its columns', () => {
    const named = join(tmp, 'val-test-named');
    cpSync(run(), named, { recursive: true });
    const info = JSON.parse(readFileSync(join(named, 'run.json'), 'utf8'));
    const classes = info.classes.map((c: string, i: number) => (i === 0 ? 'apple, red' : i === 1 ? 'a "b"' : c));
    writeFileSync(join(named, 'run.json'), JSON.stringify({ ...info, classes }));
    const file = join(tmp, 'named.csv');
    const r = fmgpu('predict', named, '--csv', join(tmp, 'pixels.csv'), '--out', file);
    expect(r.code, r.err).toBe(0);
    const [header] = readFileSync(file, 'utf8').split('\n');
    expect(header).toBe(`id,label,"apple, red","a ""b""",${classes.slice(2).join(',')}`);
  });
  it('report --out naming its test CSV is refused before the test set is read; the CSV kept', () => {
    const csv = join(tmp, 'val.csv');
    const before = readFileSync(csv);
    const r = fmgpu('report', run(), '--test-csv', csv, '--out', csv, ...NO_GPU);
    expect(r.err).toBe(`fmgpu: error: --out ${csv} would overwrite ${csv}, which fmgpu reads: name another file`);
    expect(r.code).toBe(2);
    expect(readFileSync(csv).equals(before)).toBe(true);
  });
  it.each(refusals)('%s: exit 2, one line', (_, args, message) => {
    writeFileSync(join(tmp, 'bad.csv'), '1,2,3\n');
    writeFileSync(join(tmp, 'notes.txt'), 'my notes\n');
    const kept = [join(tmp, 'val.csv'), join(run(), 'weights.safetensors'), join(tmp, 'notes.txt')];
    const before = kept.map((f) => readFileSync(f));
    const r = fmgpu('predict', run(), ...args(), ...NO_GPU);
    expect(r.err).toBe(`fmgpu: error: ${message}`);
    expect(r.code).toBe(2);
    kept.forEach((f, i) => expect(readFileSync(f).equals(before[i]!), `${f} unchanged`).toBe(true));
  });
});
