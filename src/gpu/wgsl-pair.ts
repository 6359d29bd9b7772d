// Two compute entry points as one (src/gpu/pair.ts): the text of both shaders in one module, the
// second's names and bindings moved out of the first's way, and an entry that runs a workgroup of
// either by its index. How:
//   - every module-scope name of the second shader gets the suffix `_pb` wherever it is used (not
//     after a `.`, and not a struct's member), its @binding numbers move past the first's highest, and
//     its override constants are set under their new names (pairConstants);
//   - a workgroup variable both declare with the same element type is one variable, sized for the
//     larger: a workgroup runs one half only, so the halves never hold it at once;
//   - the two entry points become plain functions whose builtins are arguments, and `pair` (the new
//     entry point) gives each workgroup the workgroup index, local ids and grid of its half. The first
//     half's workgroups come first in x; a (pair) dispatch is 1-D. The halves' grids come in a uniform
//     (PairGrid), not as override constants, so that GEMMs of other shapes share the pipeline.
// Both halves must have the same workgroup size (pair.ts checks it): `pair` has the first's.

import { stripComments } from './uniforms.ts';
import {
  closing,
  DIRECTIVES,
  entryVars,
  next,
  plain,
  scan,
  splitTopLevel,
  tokens,
  type Item,
  type Token,
} from './wgsl-scan.ts';

const SUFFIX = '_pb';
/** The names the paired entry point declares and uses (pairEntry): no shader of a pair may declare them. */
const RESERVED = new Set([
  'pair',
  'pair_at',
  'pair_grid',
  'PairGrid',
  'pair_wg',
  'pair_li',
  'pair_lane',
  'pair_lanes',
  'pair_f',
  'pair_count_a',
]);
const BUILTINS = new Set([
  'workgroup_id',
  'num_workgroups',
  'local_invocation_id',
  'local_invocation_index',
  'subgroup_invocation_id',
  'subgroup_size',
]);

export type Access = 'uniform' | 'read' | 'read_write';

/** The access of each binding an entry point uses: what its bind group holds (layout 'auto'). */
export function bindingAccess(code: string, entry: string): Map<number, Access> {
  const out = new Map<number, Access>();
  for (const { text } of entryVars(code, entry)) {
    const binding = /@binding\((\d+)\)/.exec(text);
    if (!binding) continue;
    const access: Access = /var<uniform>/.test(text) ? 'uniform' : /read_write/.test(text) ? 'read_write' : 'read';
    out.set(Number(binding[1]), access);
  }
  return out;
}

/** The highest @binding number a shader declares. */
function highestBinding(code: string): number {
  return Math.max(-1, ...[...stripComments(code).matchAll(/@binding\((\d+)\)/g)].map((m) => Number(m[1])));
}

/** A var<workgroup>'s type split as array<element, size>, or the whole type. */
function workgroupType(ts: Token[], it: Item): { element: string; size: string | null } | null {
  const text = plain(ts, it);
  const m = /var<workgroup>\s*\w+\s*:\s*([^;]*);/.exec(text);
  if (!m) return null;
  const type = (m[1] as string).trim();
  if (!type.startsWith('array<')) return { element: type, size: null };
  const [element, size] = splitTopLevel(type.slice('array<'.length, type.lastIndexOf('>')));
  return element && size ? { element: element.trim(), size: size.trim() } : { element: type, size: null };
}

/** What an entry point became: its function's name, its builtins by parameter, its workgroup size. */
interface Entry {
  name: string;
  builtins: string[];
  size: string[];
}

/** Turns the entry point `name` (tokens [it.start, it.end)) into a plain function, in place. */
function unEntry(ts: Token[], it: Item, name: string): Entry {
  const size: string[] = [];
  const builtins: string[] = [];
  for (let j = it.start; j < it.end; j++) {
    if (ts[j] !== '@') continue;
    const attr = ts[j + 1];
    let end = j;
    if (attr === 'compute') end = j + 2;
    if (attr === 'workgroup_size' || attr === 'builtin') {
      const open = next(ts, j + 2);
      end = closing(ts, open);
      const args = ts.slice(open + 1, end - 1).join('');
      if (attr === 'builtin') {
        if (!BUILTINS.has(args.trim())) throw new Error(`pairing: ${name} reads the builtin ${args}`);
        builtins.push(args.trim());
      } else size.push(...args.split(',').map((s) => s.trim()));
    }
    // The attribute and the blank after it.
    if (end > j) for (let k = j; k < next(ts, end); k++) ts[k] = '';
  }
  return { name, builtins, size };
}

/** The arguments a half's entry function gets in `pair`: `pair_f` its workgroup's index within the half. */
function argsOf(e: Entry, grid: string): string {
  const [x = '1u', y = '1u', z = '1u'] = e.size;
  const local = `pair_at(pair_li, vec3u(u32(${x}), u32(${y}), u32(${z})))`;
  const value: Record<string, string> = {
    workgroup_id: `pair_at(pair_f, ${grid})`,
    num_workgroups: grid,
    local_invocation_id: local,
    local_invocation_index: 'pair_li',
    subgroup_invocation_id: 'pair_lane',
    subgroup_size: 'pair_lanes',
  };
  return e.builtins.map((b) => value[b]).join(', ');
}

export interface PairedSource {
  code: string;
  /** What the second half's bindings are moved by. */
  offset: number;
  /** The binding of the grids' uniform (PairGrid: each half's x, y, z and workgroups), after the second half's. */
  grid: number;
}

/** The module that runs `a.entry` and `b.entry` in one dispatch (the header says how). */
export function pairSource(a: { code: string; entry: string }, b: { code: string; entry: string }): PairedSource {
  // Copies of the scanned tokens: composing edits them in place (the declarations' indices stay).
  const [sa, sb] = [scan(a.code), scan(b.code)];
  const [ta, tb] = [[...sa.ts], [...sb.ts]];
  const [ia, ib] = [sa.items, sb.items];
  const offset = highestBinding(a.code) + 1;
  const grid = offset + highestBinding(b.code) + 1;
  // Workgroup variables of the same name and element type: one, sized for the larger.
  const shared = new Set<string>();
  const sizes = new Map<string, { element: string; a: string; b: string }>(); // array vars: both sizes
  const ownNames = new Set(ib.map((it) => it.name));
  const ownType = (type: string) => tokens(type).some((t) => ownNames.has(t)); // a struct of its own: no match
  for (const it of ib) {
    const mine = ia.find((x) => x.keyword === 'var' && x.name === it.name);
    const [ka, kb] = [mine && workgroupType(ta, mine), it.keyword === 'var' ? workgroupType(tb, it) : null];
    if (!mine || !ka || !kb || ka.element !== kb.element || (ka.size === null) !== (kb.size === null)) continue;
    if (ownType(kb.element)) continue;
    shared.add(it.name);
    if (ka.size !== null && kb.size !== null) sizes.set(it.name, { element: ka.element, a: ka.size, b: kb.size });
  }
  for (const it of [...ia, ...ib])
    if (RESERVED.has(it.name)) throw new Error(`pairing: the name ${it.name} is the paired entry point's`);
  const renamed = new Set(ib.filter((it) => it.name && !shared.has(it.name)).map((it) => it.name));
  for (const n of renamed) {
    if (ia.some((it) => it.name === `${n}${SUFFIX}`)) throw new Error(`pairing: ${n}${SUFFIX} is taken`);
  }
  renameInto(tb, ib, renamed, offset);
  for (const [name, k] of sizes) {
    const it = ia.find((x) => x.name === name) as Item;
    const larger = `max(u32(${k.a}), u32(${renameText(k.b, renamed)}))`;
    const text = `var<workgroup> ${name}: array<${k.element}, ${larger}>;`;
    ta.splice(it.start, it.end - it.start, ...Array(it.end - it.start - 1).fill(''), `\n${text}`);
  }
  for (const it of ib) if (shared.has(it.name)) for (let j = it.start; j < it.end; j++) tb[j] = '';
  const entryA = ia.find((it) => it.keyword === 'fn' && it.name === a.entry);
  const entryB = ib.find((it) => it.keyword === 'fn' && it.name === b.entry);
  if (!entryA || !entryB) throw new Error(`pairing: no entry point ${entryA ? b.entry : a.entry}`);
  const ea = unEntry(ta, entryA, a.entry);
  const eb = unEntry(tb, entryB, `${b.entry}${SUFFIX}`);
  const directives = new Set<string>();
  for (const [ts, all] of [
    [ta, ia],
    [tb, ib],
  ] as const) {
    for (const it of all) {
      if (!DIRECTIVES.has(it.keyword)) continue;
      directives.add(plain(ts, it).trim());
      for (let j = it.start; j < it.end; j++) ts[j] = '';
    }
  }
  return { code: [...directives, ta.join(''), tb.join(''), pairEntry(ea, eb, grid)].join('\n'), offset, grid };
}

/** The second half's names and bindings moved, in place. */
function renameInto(ts: Token[], all: readonly Item[], renamed: Set<string>, offset: number): void {
  for (const it of all) {
    for (let j = it.start; j < it.end; j++) {
      const t = ts[j] as Token;
      if (t === 'binding' && ts[j - 1] === '@') {
        const n = next(ts, j + 2);
        ts[n] = String(Number(ts[n]) + offset);
      }
      if (!renamed.has(t) || ts[j - 1] === '.') continue;
      if (it.keyword === 'struct' && j > it.start && ts[next(ts, j + 1)] === ':' && isMember(ts, it, j)) continue;
      ts[j] = `${t}${SUFFIX}`;
    }
  }
}

/** Whether token j of a struct item is a member's name (inside the braces). */
function isMember(ts: Token[], it: Item, j: number): boolean {
  return ts.slice(it.start, j).includes('{');
}

function renameText(text: string, renamed: Set<string>): string {
  return tokens(text)
    .map((t, j, ts) => (renamed.has(t) && ts[j - 1] !== '.' ? `${t}${SUFFIX}` : t))
    .join('');
}

function pairEntry(a: Entry, b: Entry, binding: number): string {
  const lanes = [...a.builtins, ...b.builtins];
  const extra = [
    lanes.includes('subgroup_invocation_id') ? ', @builtin(subgroup_invocation_id) pair_lane: u32' : '',
    lanes.includes('subgroup_size') ? ', @builtin(subgroup_size) pair_lanes: u32' : '',
  ].join('');
  const [x = '1u', y = '1u', z = '1u'] = a.size;
  const [gridA, gridB] = ['pair_grid.a.xyz', 'pair_grid.b.xyz'];
  return `
// The halves' grids (x, y, z, workgroups), a uniform so that shapes make no pipelines of their own.
struct PairGrid { a: vec4u, b: vec4u }
@group(0) @binding(${binding}) var<uniform> pair_grid: PairGrid;

/** Index f of a grid g as (x, y, z), x fastest. */
fn pair_at(f: u32, g: vec3u) -> vec3u {
  return vec3u(f % g.x, (f / g.x) % g.y, f / (g.x * g.y));
}

@compute @workgroup_size(u32(${x}) * u32(${y}) * u32(${z}))
fn pair(@builtin(workgroup_id) pair_wg: vec3u, @builtin(local_invocation_index) pair_li: u32${extra}) {
  let pair_count_a = pair_grid.a.w;
  if (pair_wg.x < pair_count_a) {
    let pair_f = pair_wg.x;
    ${a.name}(${argsOf(a, gridA)});
  } else {
    let pair_f = pair_wg.x - pair_count_a;
    ${b.name}(${argsOf(b, gridB)});
  }
}
`;
}

/** The second half's override constants under their names in the paired module. */
export function pairConstants(b: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(b).map(([k, v]) => [`${k}${SUFFIX}`, v]));
}
