// Kaggle's Fashion-MNIST CSV form, decoded from text (reading the file: src/node/data.ts loadCsv):
//   label,pixel1,pixel2,…,pixel784      ← optional header: line 1 when its first cell is not a number
//   9,0,0,0,…                           ← one image per line, a class 0–9 then rows·cols pixels 0–255
// Blank lines are skipped; errors name the file and the 1-based line.
import { DataError } from '../errors.ts';
import { NUM_CLASSES } from './classes.ts';
import type { Dataset } from './dataset.ts';

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function parseCsv(text: string, file: string, shape: { rows: number; cols: number } = { rows: 28, cols: 28 }): Dataset {
  const px = shape.rows * shape.cols;
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  const images = new Uint8Array(lines.length * px);
  const labels = new Uint8Array(lines.length);
  let n = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.endsWith('\r') ? lines[i]!.slice(0, -1) : lines[i]!;
    if (line.trim() === '') continue;
    const at = `${file}:${i + 1}`;
    const cells = line.split(',');
    if (cells.length !== px + 1) throw new DataError(`${at}: ${cells.length} columns, expected ${px + 1} (a label and ${px} pixels)`);
    if (n === 0 && i === 0 && !NUMBER.test(cells[0]!.trim())) continue; // the header
    for (let j = 0; j <= px; j++) {
      const c = cells[j]!.trim();
      const name = j === 0 ? 'label' : `pixel${j}`;
      if (!NUMBER.test(c)) throw new DataError(`${at}: column ${j + 1} (${name}) is not a number: "${c.length > 20 ? `${c.slice(0, 20)}…` : c}"`);
      const v = Number(c);
      if (!Number.isInteger(v)) throw new DataError(`${at}: ${name} is ${c}, not a whole number`);
      if (j === 0) {
        if (v < 0 || v >= NUM_CLASSES) throw new DataError(`${at}: label ${c} is outside 0–${NUM_CLASSES - 1}`);
        labels[n] = v;
      } else {
        if (v < 0 || v > 255) throw new DataError(`${at}: ${name} is ${c}, outside 0–255`);
        images[n * px + j - 1] = v;
      }
    }
    n++;
  }
  if (n === 0) throw new DataError(`${file}: no images (expected lines of a label and ${px} pixels)`);
  return { images: images.slice(0, n * px), labels: labels.slice(0, n), n, rows: shape.rows, cols: shape.cols };
}
