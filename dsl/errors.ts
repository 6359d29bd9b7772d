// The language's one error type and its renderer (esbuild-style: location, message, source line,
// marker). Positions travel as offsets; line, column and the line's text are taken once, when the
// error is made, so rendering it needs nothing else (no cache of sources).

/**
 * The base of every fmgpu error (the engine's UsageError, GpuError, ... in src/errors.ts extend it
 * too). It lives here, below the engine, because the language imports nothing from src/.
 */
export class FmgpuError extends Error {
  override name = 'FmgpuError';
}

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
  /** The line the error is on, as quoted under the message: no newline, trailing \r or byte-order mark. */
  readonly lineText: string;
  /** The UTF-16 offset in the source where `lineText` starts. */
  readonly lineStart: number;

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
    // A byte-order mark is not a column: line 1 starts after it, as the lexer skips it.
    this.lineStart = before.lastIndexOf('\n') + 1 || bomLength(source);
    this.line = countLines(before);
    this.column = Array.from(before.slice(this.lineStart)).length + 1;
    const end = source.indexOf('\n', Math.max(this.offset, this.lineStart));
    this.lineText = source.slice(this.lineStart, end < 0 ? source.length : end).replace(/\r$/, '');
  }
}

/** 1 when the source opens with a UTF-8 byte-order mark (U+FEFF, as decoded), else 0. */
export const bomLength = (source: string): number => (source.charCodeAt(0) === 0xfeff ? 1 : 0);

// C0 controls but tab, DEL and C1 controls: what a terminal would act on rather than print.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/;
const CONTROLS = new RegExp(CONTROL.source, 'g');
const hex2 = (c: number): string => c.toString(16).padStart(2, '0');
const escapeChar = (ch: string): string => {
  const c = ch.charCodeAt(0);
  return c < 0x80 ? `\\x${hex2(c)}` : `\\u00${hex2(c)}`;
};

/**
 * Text for a terminal: C0 controls other than tab, DEL and C1 controls become visible escapes
 * (`\x1b`, `\x7f`, `\u009b`), so a quoted file name, source line or data cell cannot move the
 * cursor, set the window title or clear the screen. Newlines are escaped too: apply it per line.
 */
export function escapeControl(text: string): string {
  return text.replace(CONTROLS, escapeChar);
}

/** The columns a character takes once escaped (a control's escape is 4 or 6 wide). */
const escapedWidth = (ch: string): number => (CONTROL.test(ch) ? escapeChar(ch).length : 1);

function countLines(s: string): number {
  let n = 1;
  for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) n++;
  return n;
}

/** `FILE:LINE:COL: error: MESSAGE (did you mean "X"?)`, the source line, and a marker under the span. */
export function formatError(err: DslError): string {
  const hint = err.suggestion === undefined ? '' : ` (did you mean "${err.suggestion}"?)`;
  const head = escapeControl(`${err.file}:${err.line}:${err.column}: error: ${err.message}${hint}`);
  const text = err.lineText;
  // Where the span starts in the line (a span on line 1's byte-order mark starts after it).
  const at = Math.max(0, err.offset - err.lineStart);
  const prefix = text.slice(0, at);
  // Keep tabs so the marker lines up however the terminal renders them; an escaped control counts
  // as the width of its escape; a span past the line is clipped.
  const pad = Array.from(prefix, (ch) => (ch === '\t' ? '\t' : ' '.repeat(escapedWidth(ch)))).join('');
  const width = Array.from(text.slice(at, err.offset - err.lineStart + err.length)).reduce(
    (w, ch) => w + escapedWidth(ch),
    0,
  );
  const marker = width === 0 ? '^' : '~'.repeat(width);
  const num = String(err.line);
  return `${head}\n  ${num} │ ${escapeControl(text)}\n  ${' '.repeat(num.length)} ╵ ${pad}${marker}`;
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
