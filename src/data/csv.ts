// Kaggle's Fashion-MNIST CSV form, decoded from text or from bytes as they are read (reading the
// file: src/node/data.ts loadCsv):
//   label,pixel1,pixel2,…,pixel784      ← optional header: line 1 when its first cell is not a number
//   9,0,0,0,…                           ← one image per line, a class 0–255 then rows·cols pixels 0–255
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
const COMMA = 44;

export interface CsvShape {
  rows: number;
  cols: number;
  /** false: lines of pixels only, no label (a file to predict); the labels read as 0. */
  labelled?: boolean;
}

/** Cells a line of this shape holds: the label (unless unlabelled) and the pixels. */
export const csvCells = (shape: CsvShape): number => shape.rows * shape.cols + (shape.labelled === false ? 0 : 1);

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
  const px = shape.rows * shape.cols;
  return commas === px ? true : commas === px - 1 ? false : null;
}

/** The longest line the parser holds: 64 characters a cell, at least 1 MiB. */
export const maxLineBytes = (shape: CsvShape): number => Math.max(1 << 20, 64 * (shape.rows * shape.cols + 1));

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
  private n = 0;
  private lineIndex = 0;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private readonly decoder = new TextDecoder();
  private readonly maxLine: number;

  constructor(
    private readonly file: string,
    capacity: number,
    private readonly shape: CsvShape = { rows: 28, cols: 28 },
    private readonly limit = Infinity,
  ) {
    this.px = shape.rows * shape.cols;
    const rows = Math.min(capacity, limit);
    this.images = new Uint8Array(rows * this.px);
    this.labels = new Uint8Array(rows);
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
        `${at}: ${cells.length} columns, expected ${want} (${labelled ? 'a label and ' : ''}${px} pixels)`,
      );
    const [first = ''] = cells;
    if (this.n === 0 && i === 0 && !NUMBER.test(first.trim())) return; // the header
    const n = this.n;
    // Only a file that changed between the count and the parse gets here with no room left.
    if (n >= this.labels.length) throw new DataError(`${this.file}: changed while it was read`);
    const skip = labelled ? 0 : 1; // cell j is pixel j + skip, the label cell 0
    for (const [j, cell] of cells.entries()) {
      const c = cell.trim();
      const name = j + skip === 0 ? 'label' : `pixel${j + skip}`;
      if (!NUMBER.test(c))
        throw new DataError(
          `${at}: column ${j + 1} (${name}) is not a number: "${c.length > 20 ? `${c.slice(0, 20)}…` : c}"`,
        );
      const v = Number(c);
      if (!Number.isInteger(v)) throw new DataError(`${at}: ${name} is ${c}, not a whole number`);
      if (j + skip === 0) {
        if (v < 0 || v >= MAX_CLASSES) throw new DataError(`${at}: label ${c} is outside 0–${MAX_CLASSES - 1}`);
        this.labels[n] = v;
      } else {
        if (v < 0 || v > 255) throw new DataError(`${at}: ${name} is ${c}, outside 0–255`);
        this.images[n * px + j + skip - 1] = v;
      }
    }
    this.n++;
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
      n,
      rows: shape.rows,
      cols: shape.cols,
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
