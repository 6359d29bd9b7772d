// Uniforms filled by name. A launcher gives a record ({ n, c, padTop, … }); the kernel's WGSL struct
// (the one behind the `var<uniform>` its entry point reads, directly or through the functions it
// calls) is parsed once, when the pipeline is made, and decides the order. The record must have
// exactly the struct's fields, by name (snake_case in WGSL, camelCase here: pad_top ↔ padTop), each
// of the struct's type: a plain number is a u32, { f32 } and { i32 } wrap the others.
// Fields are 4-byte scalars, so field i sits at byte 4·i (WGSL's layout for such structs), except a
// table: a last field `array<vec4<u32>, N>`, given as up to 4·N u32s (the rest zero), at the next
// multiple of 16 bytes.

import { entryVars, splitTopLevel } from './wgsl-scan.ts';

/** A uniform value: a plain number is a u32; wrap floats and signed values; a list of u32s fills a table. */
export type Param = number | { f32: number } | { i32: number } | readonly number[];
/** A kernel's uniform, by field name. */
export type Uniform = Readonly<Record<string, Param>>;

export interface UniformField {
  /** As the WGSL struct spells it: `pad_top`. */
  name: string;
  /** As a launcher's record spells it: `padTop`. */
  key: string;
  /** The WGSL type: `u32`, `f32`, `i32` (others are refused when packed). */
  type: string;
}

export interface UniformLayout {
  /** The struct's name, e.g. `Params`. */
  struct: string;
  fields: UniformField[];
}

export const camelCase = (name: string): string => name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

export const stripComments = (src: string): string => src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');

/** Every struct of the source (comments stripped), by name, with its fields in order. */
export function structs(src: string): Map<string, UniformField[]> {
  const out = new Map<string, UniformField[]>();
  for (const [, name, body] of stripComments(src).matchAll(/\bstruct\s+(\w+)\s*\{([^}]*)\}/g)) {
    if (name === undefined || body === undefined) continue;
    const fields = splitTopLevel(body).flatMap((f) => {
      const [, field, type] = /^(?:@\S+\s+)*(\w+)\s*:\s*(.+)$/.exec(f.trim()) ?? [];
      return field && type ? [{ name: field, key: camelCase(field), type: type.trim() }] : [];
    });
    out.set(name, fields);
  }
  return out;
}

/**
 * The uniform struct entry point `entry` reads, directly or through the functions it calls, or null
 * when it reads none. Throws when the entry does not exist or reads two uniforms.
 */
export function entryUniform(source: string, entry: string): UniformLayout | null {
  const types = new Set<string>();
  for (const v of entryVars(source, entry)) {
    const [, type] = /var\s*<\s*uniform\s*>\s*\w+\s*:\s*(\w+)/.exec(v.text) ?? [];
    if (type) types.add(type);
  }
  if (types.size > 1) throw new Error(`entry point ${entry} reads several uniforms: ${[...types].sort().join(', ')}`);
  const [struct] = types;
  if (struct === undefined) return null;
  const fields = structs(source).get(struct);
  if (!fields) throw new Error(`no struct ${struct} for the uniform of ${entry}`);
  return { struct, fields };
}

const typeOf = (v: Exclude<Param, readonly number[]>): string =>
  typeof v === 'number' ? 'u32' : 'f32' in v ? 'f32' : 'i32';

const isTable = (v: Param): v is readonly number[] => Array.isArray(v);

/** The vec4s of a table field's type `array<vec4<u32>, N>`, or null for any other type. */
const tableLength = (type: string): number | null => {
  const m = /^array<\s*vec4<\s*u32\s*>\s*,\s*(\d+)\s*>$/.exec(type);
  return m?.[1] ? Number(m[1]) : null;
};

const checkU32 = (v: number, what: string): void => {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${what} = ${v} is not a u32`);
};

/**
 * The bytes of a uniform: `values` by field name, checked against the layout's names and types.
 * `what` names the kernel in errors.
 */
export function packUniform(layout: UniformLayout, values: Uniform, what: string): ArrayBuffer {
  const { fields } = layout;
  const where = `uniform ${layout.struct} of ${what}`;
  const extra = Object.keys(values).filter((k) => !fields.some((f) => f.key === k));
  if (extra.length > 0) throw new RangeError(`${where} has no field ${extra.join(', ')}`);
  const ordered = fields.map((f) => {
    const v = values[f.key];
    if (v === undefined) throw new RangeError(`${where} is missing ${f.key}`);
    return { f, v };
  });
  const tables = fields.map((f) => tableLength(f.type));
  const last = fields.length - 1;
  if (tables.some((n, i) => n !== null && i !== last))
    throw new RangeError(`${where}: a table (array<vec4<u32>, N>) must be the struct's last field`);
  const vec4s = tables[last] ?? 0;
  // A table starts at the next 16 bytes after the scalars; scalars alone fill whole 16 bytes.
  const scalars = fields.length - (vec4s > 0 ? 1 : 0);
  const tableAt = Math.ceil((scalars * 4) / 16) * 16;
  const buf = new ArrayBuffer(Math.max(16, tableAt + 16 * vec4s));
  const view = new DataView(buf);
  ordered.forEach(({ f, v }, i) => {
    if (isTable(v)) {
      if (vec4s === 0 || i !== last) throw new RangeError(`${where}: ${f.key} is ${f.type} but was given a table`);
      if (v.length > 4 * vec4s) throw new RangeError(`${where}: ${f.key} holds ${4 * vec4s} u32s, given ${v.length}`);
      v.forEach((u, j) => {
        checkU32(u, `${where}: ${f.key}[${j}]`);
        view.setUint32(tableAt + 4 * j, u, true);
      });
      return;
    }
    if (typeOf(v) !== f.type) throw new RangeError(`${where}: ${f.key} is ${f.type} but was given as ${typeOf(v)}`);
    if (typeof v === 'number') {
      checkU32(v, `${where}: ${f.key}`);
      view.setUint32(i * 4, v, true);
    } else if ('f32' in v) view.setFloat32(i * 4, v.f32, true);
    else view.setInt32(i * 4, v.i32, true);
  });
  return buf;
}
