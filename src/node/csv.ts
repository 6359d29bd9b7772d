// Kaggle's Fashion-MNIST CSV form: `label,pixel1,…,pixel784`, one image per line, header optional.
import { existsSync, readFileSync } from 'node:fs';
import { DataError } from '../errors.ts';
import { NUM_CLASSES } from '../data/classes.ts';
import type { Dataset } from '../data/dataset.ts';

export function parseCsv(text: string, file: string, side = 28): Dataset {
  const lines = text.split(/\r?\n/);
  const px = side * side;
  const images: number[] = [];
  const labels: number[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const cells = line.split(',');
    if (i === 0 && /[a-z]/i.test(cells[0]!)) return; // header
    const where = `${file}:${i + 1}`;
    if (cells.length !== px + 1) throw new DataError(`${where}: ${cells.length} columns, expected ${px + 1} (label and ${px} pixels)`);
    cells.forEach((c, j) => {
      const v = Number(c);
      if (c.trim() === '' || !Number.isFinite(v)) throw new DataError(`${where}: column ${j + 1} is not a number: "${c.slice(0, 20)}"`);
      if (j === 0) {
        if (!Number.isInteger(v) || v < 0 || v >= NUM_CLASSES) throw new DataError(`${where}: label ${c} is outside 0–${NUM_CLASSES - 1}`);
        labels.push(v);
      } else {
        if (!Number.isInteger(v) || v < 0 || v > 255) throw new DataError(`${where}: pixel ${j} is ${c}, outside the integers 0–255`);
        images.push(v);
      }
    });
  });
  if (labels.length === 0) throw new DataError(`${file}: no images`);
  return { images: Uint8Array.from(images), labels: Uint8Array.from(labels), n: labels.length, rows: side, cols: side };
}

export function loadCsv(file: string): Dataset {
  if (!existsSync(file)) throw new DataError(`${file}: no such file`);
  return parseCsv(readFileSync(file, 'utf8'), file);
}
