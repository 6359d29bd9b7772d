// A folder of class folders of PNG/JPEG images, as Keras's image_dataset_from_directory and
// torchvision's ImageFolder read them. Two layouts:
//   - split: DIR/train/<class>/*.png|jpg and DIR/test/<class>/* (the test classes among the training ones);
//   - tree:  DIR/<class>/*, which has no test set: as Keras's image_dataset_from_directory(validation_split=v,
//     seed=s), the files (in class order, each class's sorted by path) are shuffled with the train line's seed and
//     the last floor(v·n) held out; Keras evaluates on that validation subset, and so that held-out part is
//     both the validation set and the test set (the train line must give validation=v > 0).
// Class names are the folder names, sorted; a class's images are those in its folder and the folders under
// it (as both walk them), sorted by path; files other than .png, .jpg and .jpeg are skipped, and so are hidden
// files and folders (a name starting with a dot: macOS's ._ files) and macOS's __MACOSX folders. Each image
// is decoded by src/node/image.ts (its bounds hold per image), shown as its EXIF orientation says, and
// resized by area averaging to the network's input H×W (the aspect ratio not kept, as Keras's default)
// and channels: 1 (ITU-R 601 luma), 3 (RGB) or 4 (RGBA); otherwise alpha is ignored, as Keras does.
// The whole set is bounded: its decoded bytes are counted from the file count before any is read.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../errors.ts';
import { MAX_CLASSES } from '../data/classes.ts';
import { spread, type Dataset } from '../data/dataset.ts';
import { planeOf, resizePlane } from '../data/image.ts';
import { Rng } from '../util/rng.ts';
import { GiB, formatBytes, openInput } from './files.ts';
import { MAX_IMAGE_BYTES, decodeImage } from './image.ts';

/** The network's input an image is resized to. */
export interface Target {
  h: number;
  w: number;
  c: number;
  /** What set it, for errors (default "the model's input"; fmgpu serve's is its --input flag). */
  what?: string;
}

/** The decoded images of one folder dataset at most (train and test together). */
export const FOLDERS_MAX_BYTES = 2 * GiB;

const IMAGE_FILE = /\.(png|jpe?g)$/i;

export type FolderLayout = 'split' | 'tree';

const isDir = (p: string): boolean => existsSync(p) && statSync(p).isDirectory();
/** A name fmgpu does not read as data: hidden (macOS's ._ files among them), or macOS's __MACOSX. */
const skipped = (name: string): boolean => name.startsWith('.') || name === '__MACOSX';
const subfolders = (dir: string): string[] =>
  readdirSync(dir)
    .filter((n) => !skipped(n) && isDir(join(dir, n)))
    .sort();
/** How deep under a class folder its images are looked for (a symbolic link to a folder is not followed). */
const MAX_DEPTH = 16;

/** What a folder holds that fmgpu reads: its entries but hidden ones and __MACOSX. */
const shown = (dir: string) => readdirSync(dir, { withFileTypes: true }).filter((e) => !skipped(e.name));

/** Whether `dir` or a folder under it (to MAX_DEPTH) holds an image: stops at the first. */
function hasImages(dir: string, depth = 0): boolean {
  if (depth > MAX_DEPTH) return false;
  const entries = shown(dir);
  return (
    entries.some((e) => !e.isDirectory() && IMAGE_FILE.test(e.name)) ||
    entries.some((e) => e.isDirectory() && hasImages(join(dir, e.name), depth + 1))
  );
}

/** The image files in `dir` and the folders under it (not hidden, not links to folders), sorted by path. */
function imagesUnder(dir: string): string[] {
  const walk = (d: string, depth: number): string[] => {
    if (depth > MAX_DEPTH) throw new DataError(`${d}: folders nested more than ${MAX_DEPTH} deep in a class folder`);
    const entries = shown(d);
    const files = entries.filter((e) => !e.isDirectory() && IMAGE_FILE.test(e.name)).map((e) => join(d, e.name));
    return [...files, ...entries.filter((e) => e.isDirectory()).flatMap((e) => walk(join(d, e.name), depth + 1))];
  };
  return walk(dir, 0).sort();
}

/** Whether DIR is a folder of class folders of images, and which layout; null when not. */
export function folderLayout(dir: string): FolderLayout | null {
  if (!isDir(dir)) return null;
  const subs = subfolders(dir);
  const classesWithImages = (d: string): boolean => subfolders(d).some((c) => hasImages(join(d, c)));
  if (subs.includes('train') && classesWithImages(join(dir, 'train'))) {
    if (subs.includes('test')) return 'split';
    // train/ and val/ (or train/ alone) are not two classes: say which layouts are read.
    throw new DataError(
      `${dir}: train/ holds class folders but there is no test/ beside it: fmgpu reads DIR/train/<class>/ with ` +
        'DIR/test/<class>/, or one tree DIR/<class>/ (--data DIR/train, its validation= holding out a test set)',
    );
  }
  return subs.some((c) => hasImages(join(dir, c))) ? 'tree' : null;
}

interface Listing {
  classes: string[];
  /** Every image file with its label, in class order, each class's files sorted by path. */
  files: { file: string; label: number }[];
}

function listClasses(dir: string, classes = subfolders(dir)): Listing {
  if (classes.length > MAX_CLASSES)
    throw new DataError(`${dir}: ${classes.length} class folders, more than the ${MAX_CLASSES} fmgpu takes`);
  const files = classes.flatMap((name, label) => {
    const d = join(dir, name);
    return isDir(d) ? imagesUnder(d).map((file) => ({ file, label })) : [];
  });
  return { classes, files };
}

/** The test folders' classes must be among the training ones; their labels are the training ones'. */
function testListing(dir: string, classes: string[]): Listing {
  const testDir = join(dir, 'test');
  const extra = subfolders(testDir).find((c) => !classes.includes(c));
  if (extra !== undefined)
    throw new DataError(`${join(testDir, extra)}: a class the training folders (${join(dir, 'train')}) do not have`);
  return listClasses(testDir, classes);
}

function checkTarget(t: Target, dir: string): void {
  if (t.c !== 1 && t.c !== 3 && t.c !== 4)
    throw new DataError(
      `${dir}: images are read as 1 (grey), 3 (RGB) or 4 (RGBA) channels, ` +
        `but ${t.what ?? "the model's input"} has ${t.c}`,
    );
}

/** The decoded bytes of `n` images must fit FOLDERS_MAX_BYTES: checked before any image is read. */
function checkTotal(n: number, t: Target, dir: string): void {
  const bytes = n * t.h * t.w * t.c;
  if (bytes > FOLDERS_MAX_BYTES)
    throw new DataError(
      `${dir}: ${n.toLocaleString('en-US')} images of ${t.h}x${t.w}x${t.c} take ${bytes.toLocaleString('en-US')} ` +
        `bytes, more than the ${formatBytes(FOLDERS_MAX_BYTES)} fmgpu holds for a folder of images`,
    );
}

/** One image file → C planes of H×W bytes at `out`. */
function readImage(file: string, t: Target, out: Uint8Array): void {
  const f = openInput(file, { what: 'a PNG or JPEG image', maxBytes: MAX_IMAGE_BYTES });
  let bytes: Uint8Array;
  try {
    bytes = f.readAll();
  } finally {
    f.close();
  }
  const img = decodeImage(bytes, file);
  const plane = new Float32Array(img.width * img.height);
  for (let k = 0; k < t.c; k++) {
    // Bytes as they are (unit 1), alpha ignored (over: null).
    const o = { orientation: img.orientation, channel: t.c === 1 ? 'luma' : k, unit: 1, over: null } as const;
    const { width: w, height: h } = planeOf(img.data, img.width, img.height, o, plane);
    const small = resizePlane(plane, w, h, t.w, t.h);
    const at = k * t.h * t.w;
    for (let i = 0; i < small.length; i++) out[at + i] = Math.min(255, Math.max(0, Math.round(small[i]!)));
  }
}

function decodeAll(files: readonly { file: string; label: number }[], t: Target): Dataset {
  const px = t.h * t.w * t.c;
  const images = new Uint8Array(files.length * px);
  const labels = new Uint8Array(files.length);
  files.forEach(({ file, label }, i) => {
    readImage(file, t, images.subarray(i * px, (i + 1) * px));
    labels[i] = label;
  });
  return { images, labels, n: files.length, rows: t.h, cols: t.w, ...(t.c > 1 ? { channels: t.c } : {}) };
}

/** What a tree holds out: the train line's validation fraction and seed. */
export interface HoldOut {
  validation: number | 'test';
  seed: number;
}

/** A tree's files split as Keras's image_dataset_from_directory(validation_split, seed) splits them. */
function treeSplit(dir: string, l: Listing, o: HoldOut): { train: Listing['files']; test: Listing['files'] } {
  if (typeof o.validation !== 'number' || o.validation <= 0)
    throw new DataError(
      `${dir}: one tree of class folders has no test set: give the train line validation=0.2 (or another ` +
        "fraction) to hold one out, as Keras's validation_split, or make DIR/train/<class> and DIR/test/<class>",
    );
  const order = new Rng(o.seed).shuffle(Uint32Array.from(l.files.keys()));
  const files = Array.from(order, (i) => l.files[i]!);
  const held = Math.floor(o.validation * files.length);
  return { train: files.slice(0, files.length - held), test: files.slice(files.length - held) };
}

export interface FolderData {
  train: Dataset;
  test: Dataset;
  classes: string[];
  /** A tree's held-out part (the test set, and the validation set too): how to say so. */
  heldOut: string | null;
}

/** The training set (`keep` of its images, spread), the test set and the class names of a folder of images. */
export function loadImageFolders(dir: string, t: Target, hold: HoldOut, keep?: number): FolderData {
  checkTarget(t, dir);
  const layout = folderLayout(dir);
  if (layout === 'split') {
    const train = listClasses(join(dir, 'train'));
    const test = testListing(dir, train.classes);
    const kept = spread(train.files, keep);
    checkTotal(kept.length + test.files.length, t, dir);
    return { train: decodeAll(kept, t), test: decodeAll(test.files, t), classes: train.classes, heldOut: null };
  }
  const all = listClasses(dir);
  const s = treeSplit(dir, all, hold);
  const kept = spread(s.train, keep);
  checkTotal(kept.length + s.test.length, t, dir);
  const heldOut =
    `the last ${s.test.length} of ${dir}'s shuffled images ` +
    `(validation=${hold.validation}, as Keras's validation_split)`;
  return { train: decodeAll(kept, t), test: decodeAll(s.test, t), classes: all.classes, heldOut };
}

/** Only the test set (a tree's held-out part) and the class names. */
export function loadImageFoldersTest(dir: string, t: Target, hold: HoldOut): { ds: Dataset; classes: string[] } {
  checkTarget(t, dir);
  if (folderLayout(dir) === 'split') {
    const { classes } = listClasses(join(dir, 'train'));
    const test = testListing(dir, classes);
    checkTotal(test.files.length, t, dir);
    return { ds: decodeAll(test.files, t), classes };
  }
  const all = listClasses(dir);
  const { test } = treeSplit(dir, all, hold);
  checkTotal(test.length, t, dir);
  return { ds: decodeAll(test, t), classes: all.classes };
}
