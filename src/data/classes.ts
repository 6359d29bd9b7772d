// Class names: a dataset's, in label order. A model's class count is its output width
// (Trainer.classes; the language's default is dsl/checker.ts's DEFAULT_CLASSES), and the names come
// from the data: a list beside the files (classes.txt), Fashion-MNIST's own for Fashion-MNIST's
// files, else the label numbers.
import { DataError } from '../errors.ts';

// Fashion-MNIST's ten classes, in label order: the one place they are written.
export const CLASS_NAMES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;
export const NUM_CLASSES = CLASS_NAMES.length;

/** Labels are bytes: at most 256 classes (CIFAR-100 has 100). */
export const MAX_CLASSES = 256;

/** The first labels of Fashion-MNIST's training and test files: how its files are told from MNIST's. */
const FASHION_TRAIN_START = [9, 0, 0, 3, 0, 2, 7, 2, 5, 5];
const FASHION_TEST_START = [9, 2, 1, 1, 6, 1, 4, 6, 5, 7];

const startsWith = (labels: Uint8Array, start: readonly number[]): boolean =>
  labels.length >= start.length && start.every((l, i) => labels[i] === l);

/** Whether these are Fashion-MNIST's label files (or their first images): they begin as its own do. */
export function isFashionMnist(train: Uint8Array | null, test: Uint8Array | null): boolean {
  return (!!train && startsWith(train, FASHION_TRAIN_START)) || (!!test && startsWith(test, FASHION_TEST_START));
}

/** "0", "1", …: the names of classes that have none of their own. */
export const labelNumbers = (n: number): string[] => Array.from({ length: n }, (_, c) => String(c));

/**
 * The names of a model's classes when its run does not record them: a run from before they were
 * recorded was trained on Fashion-MNIST (the only data fmgpu read then), so ten classes are its.
 */
export const namesForOutputs = (n: number): string[] => (n === NUM_CLASSES ? [...CLASS_NAMES] : labelNumbers(n));

/** One more than the largest label in any of the sets: the class count the labels imply. */
export function labelRange(...sets: (Uint8Array | null | undefined)[]): number {
  let max = -1;
  for (const s of sets) if (s) for (const l of s) if (l > max) max = l;
  return max + 1;
}

/** A classes.txt: one name a line, in label order; blank lines at the end are ignored. */
export function parseClassList(text: string, file: string): string[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  while (lines.length && lines.at(-1)?.trim() === '') lines.pop();
  const names = lines.map((l) => l.trim());
  if (names.length === 0) throw new DataError(`${file}: no class names (expected one name a line, in label order)`);
  if (names.length > MAX_CLASSES)
    throw new DataError(`${file}: ${names.length} class names, more than the ${MAX_CLASSES} fmgpu's byte labels hold`);
  const seen = new Map<string, number>();
  for (const [i, name] of names.entries()) {
    if (name === '') throw new DataError(`${file}:${i + 1}: an empty class name (class ${i})`);
    const before = seen.get(name);
    if (before !== undefined)
      throw new DataError(`${file}:${i + 1}: class name "${name}" is already class ${before} (line ${before + 1})`);
    seen.set(name, i);
  }
  return names;
}

/**
 * Labels must name one of `classes` classes. A message names the label's line in its file where `lines` has it (a
 * CSV's), else its index (`from` the first's, when they are a part of the file's); `why` follows the place.
 */
export function checkLabels(
  labels: Uint8Array,
  classes: number,
  file: string,
  at: { from?: number; lines?: Uint32Array; why?: string } = {},
): void {
  const bad = labels.findIndex((l) => l >= classes);
  if (bad < 0) return;
  const line = at.lines?.[bad];
  const where = line === undefined ? `${file}${at.why ?? ''}` : `${file}:${line}${at.why ?? ''}`;
  const index = line === undefined ? ` at index ${(at.from ?? 0) + bad}` : '';
  throw new DataError(`${where}: label ${labels[bad]}${index} is outside 0–${classes - 1}`);
}
