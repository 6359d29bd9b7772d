// A scan of WGSL source at module scope, enough to follow names without a parser: tokens (comments and
// blanks kept, so text can be rebuilt), the module-scope declarations and directives, and the names an
// entry point reaches through the functions it calls. Scope is not followed: a local named like a
// module-scope name counts as a use of it (so a reader sees more, never less, than is used).
// Read by src/gpu/uniforms.ts (an entry's uniform) and src/gpu/wgsl-pair.ts (bindings, composing pairs),
// both through entryVars: the one reflection of an entry point, cached with its source's scan.

const TOKEN = /\/\/[^\n]*|\/\*[\s\S]*?\*\/|[A-Za-z_][A-Za-z0-9_]*|[0-9][A-Za-z0-9_.]*|\s+|[\s\S]/g;
const DECLARES = new Set(['fn', 'var', 'const', 'override', 'struct', 'alias']);
export const DIRECTIVES = new Set(['enable', 'requires', 'diagnostic']);
export type Token = string;
const isId = (t: Token | undefined): boolean => t !== undefined && /^[A-Za-z_]/.test(t);
const blank = (t: Token | undefined): boolean =>
  t !== undefined && (/^\s/.test(t) || t.startsWith('//') || t.startsWith('/*'));

/** A module-scope declaration: tokens [start, end), its keyword and name. */
export interface Item {
  keyword: string;
  name: string;
  start: number;
  end: number;
}

export function tokens(code: string): Token[] {
  return code.match(TOKEN) ?? [];
}

/** The next token at or after i that is not blank, and its index. */
export function next(ts: readonly Token[], i: number): number {
  let j = i;
  while (j < ts.length && blank(ts[j])) j++;
  return j;
}

/** The last token before i that is not blank. */
function before(ts: readonly Token[], i: number): Token | undefined {
  let j = i - 1;
  while (j >= 0 && blank(ts[j])) j--;
  return ts[j];
}

/** An item's text without its comments (those before it included). */
export const plain = (ts: readonly Token[], it: Item): string =>
  ts
    .slice(it.start, it.end)
    .filter((t) => !t.startsWith('//') && !t.startsWith('/*'))
    .join('');

/** The index just past the bracket that closes the one at i (`{`, `(` or `<`). */
export function closing(ts: readonly Token[], i: number): number {
  const open = ts[i];
  const close = open === '{' ? '}' : open === '(' ? ')' : '>';
  let depth = 0;
  for (let j = i; j < ts.length; j++) {
    if (ts[j] === open) depth++;
    else if (ts[j] === close && --depth === 0) return j + 1;
  }
  throw new Error(`unbalanced ${open} in WGSL`);
}

/** The module-scope declarations and directives, each with the attributes before it. */
function items(ts: readonly Token[]): Item[] {
  const out: Item[] = [];
  let start = 0;
  let i = 0;
  while (i < ts.length) {
    const t = ts[i] as Token;
    if (t === '(') {
      i = closing(ts, i);
      continue;
    }
    // A keyword of either kind, not an attribute's name (`@diagnostic(…)` before a function).
    if ((!DECLARES.has(t) && !DIRECTIVES.has(t)) || before(ts, i) === '@') {
      i++;
      continue;
    }
    let n = next(ts, i + 1);
    if (t === 'var' && ts[n] === '<') n = next(ts, closing(ts, n));
    const name = DIRECTIVES.has(t) ? '' : (ts[n] as Token);
    let end = n;
    while (end < ts.length && ts[end] !== ';' && ts[end] !== '{') end++;
    end = ts[end] === '{' ? closing(ts, end) : end + 1;
    out.push({ keyword: t, name, start, end });
    start = end;
    i = end;
  }
  return out;
}

/** The module-scope names an entry point reaches, through the functions it calls. */
function reached(ts: readonly Token[], all: readonly Item[], entry: string): Set<string> {
  const byName = new Map(all.filter((it) => it.name).map((it) => [it.name, it]));
  const seen = new Set<string>([entry]);
  const todo = [entry];
  while (todo.length > 0) {
    const it = byName.get(todo.pop() as string);
    if (!it) continue;
    for (let j = it.start; j < it.end; j++) {
      const t = ts[j] as Token;
      if (isId(t) && byName.has(t) && !seen.has(t) && ts[j - 1] !== '.') {
        seen.add(t);
        todo.push(t);
      }
    }
  }
  return seen;
}

/** A shader's tokens and declarations, scanned once per source text (shaders are few and fixed). */
interface Scan {
  readonly ts: readonly Token[];
  readonly items: readonly Item[];
  /** entryVars' answers, by entry point. */
  readonly vars: Map<string, readonly EntryVar[]>;
}

const scans = new Map<string, Scan>();

export function scan(code: string): Scan {
  let s = scans.get(code);
  if (!s) {
    const ts = tokens(code);
    s = { ts, items: items(ts), vars: new Map() };
    scans.set(code, s);
  }
  return s;
}

/** A module-scope `var` an entry point reaches: its name and its declaration without comments. */
export interface EntryVar {
  name: string;
  text: string;
}

/** The module-scope vars `entry` reaches, directly or through the functions it calls; throws when it does not exist. */
export function entryVars(code: string, entry: string): readonly EntryVar[] {
  const s = scan(code);
  let vars = s.vars.get(entry);
  if (!vars) {
    if (!s.items.some((it) => it.keyword === 'fn' && it.name === entry))
      throw new Error(`the shader has no entry point ${entry}`);
    const used = reached(s.ts, s.items, entry);
    vars = s.items
      .filter((it) => it.keyword === 'var' && used.has(it.name))
      .map((it) => ({ name: it.name, text: plain(s.ts, it) }));
    s.vars.set(entry, vars);
  }
  return vars;
}

/** Splits at commas outside <…> (a struct's fields, array<f32, 4>'s arguments). */
export function splitTopLevel(body: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    const ch = body[i];
    if (ch === '<') depth++;
    else if (ch === '>') depth--;
    else if (ch === ',' && depth === 0) {
      parts.push(body.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(body.slice(start));
  return parts.filter((p) => p.trim() !== '');
}
