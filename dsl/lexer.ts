// .net lexer: words, numbers, sizes (3x3, 28x28x1), punctuation and statement ends, each with its
// offset. Malformed text becomes an 'error' token so the parser reports errors in source order.
import { bomLength } from './errors.ts';

export type TokenKind = 'word' | 'number' | 'size' | '=' | '(' | ')' | '{' | '}' | ';' | 'newline' | 'eof' | 'error';

export interface Token {
  kind: TokenKind;
  offset: number;
  length: number;
  /** The source text of the token ('' at the end of file). */
  text: string;
  /** number: its value; size: its parts (all whole numbers). */
  value?: number;
  parts?: number[];
  /** error: what went wrong. */
  message?: string;
}

const NUMBER = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const SIZE = /^\d+(?:[xX×]\d+)+$/;
const PUNCT = new Set(['=', '(', ')', '{', '}', ';']);

const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isWordStart = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
const isWordChar = (c: string): boolean => isWordStart(c) || isDigit(c);

/** Source text as messages quote it: in quotes, cut after 30 characters. */
const quote = (text: string): string => JSON.stringify(text.length > 30 ? `${text.slice(0, 30)}…` : text);

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
  const push = (kind: TokenKind, start: number, extra: Partial<Token> = {}): void => {
    tokens.push({ kind, offset: start, length: i - start, text: source.slice(start, i), ...extra });
  };
  while (i < source.length) {
    const c = source[i]!;
    const start = i;
    if (c === '\n') {
      i++;
      push('newline', start);
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (c === '#') {
      while (i < source.length && source[i] !== '\n') i++;
    } else if (PUNCT.has(c)) {
      i++;
      push(c as TokenKind, start);
    } else if (isWordStart(c)) {
      while (i < source.length && isWordChar(source[i]!)) i++;
      push('word', start);
    } else if (isDigit(c) || c === '.' || (c === '-' && (isDigit(source[i + 1] ?? '') || source[i + 1] === '.'))) {
      // Take the whole run (digits, letters, dots, ×, an exponent's sign) and classify it, so that
      // `32relu` or `3x3.5` is one malformed token rather than two that parse by accident.
      i++;
      while (i < source.length) {
        const d = source[i]!;
        if (isWordChar(d) || d === '.' || d === '×') i++;
        else if ((d === '+' || d === '-') && /[eE]/.test(source[i - 1]!) && isDigit(source[i + 1] ?? '')) i++;
        else break;
      }
      const text = source.slice(start, i);
      if (NUMBER.test(text)) push('number', start, { value: Number(text) });
      else if (SIZE.test(text)) push('size', start, { parts: text.split(/[xX×]/).map(Number) });
      else push('error', start, { message: `expected a number or a size like 3x3 but found ${quote(text)}` });
    } else {
      const cp = source.codePointAt(i)!;
      i += cp > 0xffff ? 2 : 1;
      push('error', start, { message: `unexpected character ${JSON.stringify(String.fromCodePoint(cp))}` });
    }
  }
  tokens.push({ kind: 'eof', offset: source.length, length: 0, text: '' });
  return tokens;
}
