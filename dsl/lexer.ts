// .net lexer: words, numbers, sizes (3x3, 28x28x1), punctuation and statement ends, each with its
// offset. Malformed text becomes an 'error' token so the parser reports errors in source order.
import { bomLength, type Span } from './errors.ts';

type Punct = '=' | '(' | ')' | '{' | '}' | ';';
export type TokenKind = 'word' | 'number' | 'size' | Punct | 'newline' | 'eof' | 'error';

/** What a token is: a number its value, a size its parts (whole numbers), an error what went wrong. */
type TokenValue =
  | { kind: Exclude<TokenKind, 'number' | 'size' | 'error'> }
  | { kind: 'number'; value: number }
  | { kind: 'size'; parts: number[] }
  | { kind: 'error'; message: string };

export type Token = TokenValue & {
  offset: number;
  length: number;
  /** The source text of the token ('' at the end of file). */
  text: string;
};

const NUMBER = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const SIZE = /^\d+(?:[xX×]\d+)+$/;
const PUNCT = new Set(['=', '(', ')', '{', '}', ';']);
const isPunct = (c: string): c is Punct => PUNCT.has(c);

const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isWordStart = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
const isWordChar = (c: string): boolean => isWordStart(c) || isDigit(c);

/** Source text as messages quote it: in quotes, cut after 30 characters. */
const quote = (text: string): string => JSON.stringify(text.length > 30 ? `${text.slice(0, 30)}…` : text);

export const spanOf = (t: Token): Span => ({ offset: t.offset, length: t.length });

/** A token's text as messages quote it; newlines and the end of file are named. */
export function describe(t: Token): string {
  if (t.kind === 'eof') return 'end of file';
  if (t.kind === 'newline') return 'end of line';
  return quote(t.text);
}

export function lex(source: string): Token[] {
  const tokens: Token[] = [];
  // A UTF-8 byte-order mark (as some editors save) is skipped; offsets stay those of the source.
  let i = bomLength(source);
  const push = (what: TokenValue, start: number): void => {
    tokens.push({ ...what, offset: start, length: i - start, text: source.slice(start, i) });
  };
  // A line end's length at `at`: 1 for \n, 2 for \r\n (one token from its \r, so that a CRLF file's
  // "found end of line" has the column an LF file's has), else 0.
  const eol = (at: number): number => (source[at] === '\n' ? 1 : source.startsWith('\r\n', at) ? 2 : 0);
  while (i < source.length) {
    const c = source.charAt(i);
    const start = i;
    const end = eol(i);
    if (end > 0) {
      i += end;
      push({ kind: 'newline' }, start);
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (c === '#') {
      while (i < source.length && eol(i) === 0) i++;
    } else if (isPunct(c)) {
      i++;
      push({ kind: c }, start);
    } else if (isWordStart(c)) {
      while (i < source.length && isWordChar(source.charAt(i))) i++;
      push({ kind: 'word' }, start);
    } else if (isDigit(c) || c === '.' || (c === '-' && (isDigit(source[i + 1] ?? '') || source[i + 1] === '.'))) {
      // Take the whole run (digits, letters, dots, ×, an exponent's sign) and classify it, so that
      // `32relu` or `3x3.5` is one malformed token rather than two that parse by accident.
      i++;
      while (i < source.length) {
        const d = source.charAt(i);
        if (isWordChar(d) || d === '.' || d === '×') i++;
        else if ((d === '+' || d === '-') && /[eE]/.test(source.charAt(i - 1)) && isDigit(source.charAt(i + 1))) i++;
        else break;
      }
      const text = source.slice(start, i);
      if (NUMBER.test(text)) push({ kind: 'number', value: Number(text) }, start);
      else if (SIZE.test(text)) push({ kind: 'size', parts: text.split(/[xX×]/).map(Number) }, start);
      else push({ kind: 'error', message: `expected a number or a size like 3x3 but found ${quote(text)}` }, start);
    } else {
      const cp = source.codePointAt(i)!;
      i += cp > 0xffff ? 2 : 1;
      push({ kind: 'error', message: `unexpected character ${JSON.stringify(String.fromCodePoint(cp))}` }, start);
    }
  }
  tokens.push({ kind: 'eof', offset: source.length, length: 0, text: '' });
  return tokens;
}
