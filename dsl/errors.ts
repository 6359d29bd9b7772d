// The language's one error type and its renderer (esbuild-style: location, message, source line,
// marker). Positions travel as offsets; line and column are computed once, when the error is made.
import { FmgpuError } from '../src/errors.ts';

export interface Span {
  /** UTF-16 offset into the source. */
  offset: number;
  /** UTF-16 length; 0 marks a point (end of file, a missing token). */
  length: number;
}

export class DslError extends FmgpuError {
  override name = 'DslError';
  readonly offset: number;
  readonly length: number;
  /** 1-based. */
  readonly line: number;
  /** 1-based, in characters (code points) from the start of the line. */
  readonly column: number;

  constructor(
    readonly file: string,
    source: string,
    span: Span,
    message: string,
    readonly suggestion?: string,
  ) {
    super(message);
    this.offset = Math.max(0, Math.min(span.offset, source.length));
    this.length = Math.max(0, Math.min(span.length, source.length - this.offset));
    const before = source.slice(0, this.offset);
    const lineStart = before.lastIndexOf('\n') + 1;
    this.line = countLines(before);
    this.column = Array.from(before.slice(lineStart)).length + 1;
  }
}

function countLines(s: string): number {
  let n = 1;
  for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) n++;
  return n;
}

/** `FILE:LINE:COL: error: MESSAGE (did you mean "X"?)`, the source line, and a marker under the span. */
export function formatError(err: DslError, source: string): string {
  const hint = err.suggestion === undefined ? '' : ` (did you mean "${err.suggestion}"?)`;
  const head = `${err.file}:${err.line}:${err.column}: error: ${err.message}${hint}`;
  const start = err.offset === 0 ? 0 : source.lastIndexOf('\n', err.offset - 1) + 1;
  let end = source.indexOf('\n', err.offset);
  if (end < 0) end = source.length;
  const text = source.slice(start, end).replace(/\r$/, '');
  const prefix = text.slice(0, err.offset - start);
  // Keep tabs so the marker lines up however the terminal renders them; a span past the line is clipped.
  const pad = Array.from(prefix, (ch) => (ch === '\t' ? '\t' : ' ')).join('');
  const width = Array.from(text.slice(err.offset - start, err.offset - start + err.length)).length;
  const marker = width === 0 ? '^' : '~'.repeat(width);
  const num = String(err.line);
  return `${head}\n  ${num} │ ${text}\n  ${' '.repeat(num.length)} ╵ ${pad}${marker}`;
}

/** Optimal-string-alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The candidate nearest to a misspelt word, if it is near enough to be what was meant. */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  if (word.length > 40) return undefined;
  const w = word.toLowerCase();
  const limit = w.length <= 3 ? 1 : w.length <= 6 ? 2 : 3;
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c);
    if (d < bestD && d <= limit && c !== word) {
      best = c;
      bestD = d;
    }
  }
  return best;
}
