// Kaggle's Fashion-MNIST CSV form, decoded from text or from bytes as they are read (reading the
// file: src/node/data.ts loadCsv):
//   label,pixel1,pixel2,…,pixel784      ← optional header: the first line that is not blank, when its first
//                                          pixel cell is not a number, or its pixel cells number the
//                                          columns (pandas' label,0,1,…,783)
//   9,0,0,0,…                           ← one image per line, a class then rows·cols·channels pixels 0–255
// Any size and channel count (the network's input says which): a colour image's pixels one after the
// other, each its channels together (H×W×C, as numpy's x.reshape(n, -1) of channels-last images),
// held channel-planar. Labels are all numbers 0–255 or all names (LabelNames: in order of first
// appearance, or a fixed list such as a classes.txt or a run's classes).
// Blank lines are skipped; errors name the file and the 1-based line.
//
// Memory follows the images, not the text: a first pass counts the lines that have exactly the
// right number of commas (CsvRowCounter: every image is such a line, and so is a header), and the
// parser reserves that many rows, so a file of blank or malformed lines reserves nothing. Lines
// are parsed one at a time (CsvParser.push takes the bytes in chunks); one line may not pass
// maxLineBytes.
import { DataError } from '../errors.ts';
import { MAX_CLASSES } from './classes.ts';
import type { Dataset } from './dataset.ts';

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const NEWLINE = 10;
const short = (c: string): string => (c.length > 20 ? `${c.slice(0, 20)}…` : c);
const COMMA = 44;

/** Class names met as CSV labels: in order of first appearance, or a fixed list (`fixed`). */
export class LabelNames {
  readonly list: string[] = [];
  private readonly index = new Map<string, number>();
  /** `from`: where a fixed list came from, for messages. */
  constructor(
    names: readonly string[] = [],
    public fixed = false,
    public from = '',
  ) {
    for (const n of names) this.add(n);
  }

  private add(name: string): number {
    this.index.set(name, this.list.length);
    return this.list.push(name) - 1;
  }

  /** The class of `name`: new names are added (up to MAX_CLASSES) unless the list is fixed; else null. */
  of(name: string): number | null {
    const known = this.index.get(name);
    if (known !== undefined) return known;
    return this.fixed || this.list.length >= MAX_CLASSES ? null : this.add(name);
  }
}

export interface CsvShape {
  rows: number;
  cols: number;
  /** Colour channels (absent: 1). */
  channels?: number;
  /** What set the shape, for the column count's error ("the model's input 32x32x3"). */
  what?: string;
  /** Where label names go (absent: labels must be numbers). */
  names?: LabelNames;
  /** false: lines of pixels only, no label (a file to predict); the labels read as 0. */
  labelled?: boolean;
}

/** Cells a line of this shape holds: the label (unless unlabelled) and the pixels. */
export const csvCells = (shape: CsvShape): number => csvPixels(shape) + (shape.labelled === false ? 0 : 1);

/** Pixel cells a line holds: rows·cols·channels. */
export const csvPixels = (shape: CsvShape): number => shape.rows * shape.cols * (shape.channels ?? 1);

/**
 * Whether the first line that is not blank holds a label and the pixels (true), the pixels only
 * (false), or neither (null: the parser will say what is wrong).
 */
export function firstLineLabelled(bytes: Uint8Array, shape: CsvShape = { rows: 28, cols: 28 }): boolean | null {
  let commas = 0;
  let blank = true;
  for (const b of bytes) {
    if (b === COMMA) commas++;
    if (b === NEWLINE) {
      if (!blank) break;
      commas = 0;
    } else if (b !== 13) blank = false;
  }
  const px = csvPixels(shape);
  return commas === px ? true : commas === px - 1 ? false : null;
}

/** The longest line the parser holds: 64 characters a cell, at least 1 MiB. */
export const maxLineBytes = (shape: CsvShape): number => Math.max(1 << 20, 64 * (csvPixels(shape) + 1));

/**
 * Whether the first line is a header: its label (or first pixel) cell and its first pixel cell words
 * (label,pixel1,…), or its pixel cells the columns' numbers from 0 or 1 (pandas' label,0,1,…,783) under a
 * word in the label cell, at least 16 of them (no image counts up by one over 16 pixels); without a label cell,
 * only up past 255 (no image's pixels go there). Cell j is pixel j + skip (1-based), cell 0 the label.
 */
function isHeader(cells: readonly string[], skip: number, word: (cell: string | undefined) => boolean): boolean {
  if (word(cells[0]) && word(cells[1 - skip])) return true;
  const pixels = cells.length - 1 + skip;
  const numbered = (from: number): boolean =>
    (skip === 0 ? pixels >= 16 : pixels - 1 + from > 255) &&
    cells.every((c, j) => j + skip === 0 || c.trim() === String(j + skip - 1 + from));
  return (skip === 1 || word(cells[0])) && (numbered(0) || numbered(1));
}

/** Counts the lines with exactly rows·cols commas: at least as many as the images, at most one more (a header). */
export class CsvRowCounter {
  private rows = 0;
  private commas = 0;
  private readonly want: number;
  constructor(shape: CsvShape = { rows: 28, cols: 28 }) {
    this.want = csvCells(shape) - 1;
  }

  push(bytes: Uint8Array): void {
    let { rows, commas } = this;
    const want = this.want;
    for (const b of bytes) {
      if (b === COMMA) commas++;
      else if (b === NEWLINE) {
        if (commas === want) rows++;
        commas = 0;
      }
    }
    this.rows = rows;
    this.commas = commas;
  }

  /** Lines so far, the last one (no newline after it) included. */
  get count(): number {
    return this.rows + (this.commas === this.want ? 1 : 0);
  }
}

/**
 * Parses CSV lines into a Dataset of at most `capacity` images (a CsvRowCounter's count over the
 * same text), stopping after `limit` images.
 */
export class CsvParser {
  private readonly px: number;
  private readonly images: Uint8Array;
  private readonly labels: Uint8Array;
  /** Each image's line (1-based). */
  private readonly lines: Uint32Array;
  private n = 0;
  private lineIndex = 0;
  /** Whether no line but blank ones has been read (the header's place). */
  private first = true;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private readonly decoder = new TextDecoder();
  private readonly maxLine: number;
  /** Whether this file's labels are numbers or names: its first image's says. */
  private labelKind: 'number' | 'name' | null = null;

  constructor(
    private readonly file: string,
    capacity: number,
    private readonly shape: CsvShape = { rows: 28, cols: 28 },
    private readonly limit = Infinity,
  ) {
    this.px = csvPixels(shape);
    const rows = Math.min(capacity, limit);
    this.images = new Uint8Array(rows * this.px);
    this.labels = new Uint8Array(rows);
    this.lines = new Uint32Array(rows);
    this.maxLine = maxLineBytes(shape);
  }

  /** Whether `limit` images have been read: then feed no more. */
  get full(): boolean {
    return this.n >= this.limit;
  }

  /** UTF-8 bytes in any chunks (the caller may reuse the chunk's memory afterwards). False once full. */
  push(bytes: Uint8Array): boolean {
    let start = 0;
    while (start < bytes.length && !this.full) {
      const nl = bytes.indexOf(NEWLINE, start);
      const end = nl < 0 ? bytes.length : nl;
      if (this.pendingBytes + end - start > this.maxLine)
        throw new DataError(
          `${this.file}:${this.lineIndex + 1}: a line longer than ${this.maxLine} bytes ` +
            `(expected a label and ${this.px} pixels)`,
        );
      if (nl < 0) {
        this.pending.push(bytes.slice(start));
        this.pendingBytes += bytes.length - start;
        break;
      }
      let line = bytes.subarray(start, nl);
      if (!this.pendingBytes && (line.length === 0 || (line.length === 1 && line[0] === 13))) {
        this.lineIndex++; // a blank line, without decoding it
        start = nl + 1;
        continue;
      }
      if (this.pendingBytes) {
        const whole = new Uint8Array(this.pendingBytes + line.length);
        let at = 0;
        for (const p of this.pending) {
          whole.set(p, at);
          at += p.length;
        }
        whole.set(line, at);
        line = whole;
        this.pending = [];
        this.pendingBytes = 0;
      }
      this.line(this.decoder.decode(line));
      start = nl + 1;
    }
    return !this.full;
  }

  /** One line of text, without its newline. */
  line(text: string): void {
    const i = this.lineIndex++;
    if (this.full) return;
    const line = text.endsWith('\r') ? text.slice(0, -1) : text;
    if (line.trim() === '') return;
    const px = this.px;
    const at = `${this.file}:${i + 1}`;
    const cells = line.split(',');
    const labelled = this.shape.labelled !== false;
    const want = csvCells(this.shape);
    if (cells.length !== want)
      throw new DataError(
        `${at}: ${cells.length} columns, expected ${want} (${labelled ? 'a label and ' : ''}${px} pixels` +
          `${this.shape.what ? ` of ${this.shape.what}` : ''})`,
      );
    const skip = labelled ? 0 : 1; // cell j is pixel j + skip, the label cell 0
    const word = (cell: string | undefined): boolean => !NUMBER.test((cell ?? '').trim()) && (cell ?? '').trim() !== '';
    const first = this.first;
    this.first = false;
    if (first && isHeader(cells, skip, word)) return;
    const n = this.n;
    // Only a file that changed between the count and the parse gets here with no room left.
    if (n >= this.labels.length) throw new DataError(`${this.file}: changed while it was read`);
    const channels = this.shape.channels ?? 1;
    for (const [j, cell] of cells.entries()) {
      const c = cell.trim();
      if (j + skip === 0) {
        this.labels[n] = this.label(c, at);
        continue;
      }
      const name = `pixel${j + skip}`;
      if (!NUMBER.test(c)) throw new DataError(`${at}: column ${j + 1} (${name}) is not a number: "${short(c)}"`);
      const v = Number(c);
      if (!Number.isInteger(v)) throw new DataError(`${at}: ${name} is ${c}, not a whole number`);
      if (v < 0 || v > 255) throw new DataError(`${at}: ${name} is ${c}, outside 0–255`);
      // Pixel p of the line (H×W×C) goes to channel p % C's plane (C×H×W).
      const p = j + skip - 1;
      this.images[n * px + (p % channels) * (px / channels) + Math.floor(p / channels)] = v;
    }
    this.lines[n] = i + 1;
    this.n++;
  }

  /** A label cell: a number 0–255, or a name (LabelNames), as the file's first label was. */
  private label(c: string, at: string): number {
    const kind = NUMBER.test(c) ? 'number' : 'name';
    const names = this.shape.names;
    if (kind === 'name' && !names) throw new DataError(`${at}: column 1 (label) is not a number: "${short(c)}"`);
    this.labelKind ??= kind;
    if (kind !== this.labelKind)
      throw new DataError(`${at}: label "${short(c)}" is a ${kind}, but the labels above it are ${this.labelKind}s`);
    if (kind === 'number') {
      const v = Number(c);
      if (!Number.isInteger(v)) throw new DataError(`${at}: label is ${c}, not a whole number`);
      if (v < 0 || v >= MAX_CLASSES) throw new DataError(`${at}: label ${c} is outside 0–${MAX_CLASSES - 1}`);
      return v;
    }
    if (!names) throw new DataError(`${at}: column 1 (label) is not a number: "${short(c)}"`);
    const k = names.of(c);
    if (k !== null) return k;
    throw new DataError(
      names.fixed
        ? `${at}: label "${short(c)}" is not one of the ${names.list.length} classes of ${names.from}`
        : `${at}: more than ${MAX_CLASSES} label names`,
    );
  }

  /** The images read (the last line needs no newline). */
  end(): Dataset {
    if (this.pendingBytes) this.push(Uint8Array.of(NEWLINE));
    const { n, px, shape } = this;
    const what = `${shape.labelled === false ? '' : 'a label and '}${px} pixels`;
    if (n === 0) throw new DataError(`${this.file}: no images (expected lines of ${what})`);
    // Views: the buffers hold at most one row more than the images (a header line).
    return {
      images: this.images.subarray(0, n * px),
      labels: this.labels.subarray(0, n),
      lines: this.lines.subarray(0, n),
      n,
      rows: shape.rows,
      cols: shape.cols,
      ...((shape.channels ?? 1) > 1 ? { channels: shape.channels } : {}),
    };
  }
}

/** A whole CSV text (a leading byte-order mark is skipped). */
export function parseCsv(text: string, file: string, shape: CsvShape = { rows: 28, cols: 28 }): Dataset {
  const body = text.replace(/^\uFEFF/, '');
  const want = csvCells(shape) - 1;
  let rows = 0,
    commas = 0;
  for (let i = 0; i <= body.length; i++) {
    const c = i < body.length ? body.charCodeAt(i) : NEWLINE;
    if (c === COMMA) commas++;
    else if (c === NEWLINE) {
      if (commas === want) rows++;
      commas = 0;
    }
  }
  const parser = new CsvParser(file, rows, shape);
  for (let start = 0; start <= body.length; ) {
    const nl = body.indexOf('\n', start);
    const end = nl < 0 ? body.length : nl;
    parser.line(body.slice(start, end));
    start = end + 1;
  }
  return parser.end();
}
