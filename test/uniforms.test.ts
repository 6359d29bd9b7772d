// Uniforms by name: every `struct …Params` a kernel reads (shaders/ and shaders/lib/, as the loader
// composes them) against the record its launcher fills. Launchers run against a recording stand-in
// for the Gpu (no device needed: test/helpers/launchers.ts), once per kernel family, and every
// (shader, entry point) that reads a uniform must be reached by some launcher whose record has
// exactly the struct's fields and types.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { shaderNames, shaderSource, type ShaderName } from '../src/gpu/shaders.ts';
import {
  camelCase,
  entryUniform,
  packUniform,
  stripComments,
  structs,
  type UniformLayout,
} from '../src/gpu/uniforms.ts';
import { FAMILIES, launchAll } from './helpers/launchers.ts';

describe('parsing WGSL uniforms', () => {
  const src = `
    // struct Commented { a: u32 }
    struct Params { n: u32, pad_top: u32, /* gone */ scale: f32,
      shift: i32, }
    struct Other { m: u32 }
    @group(0) @binding(0) var<uniform> P: Params;
    @group(0) @binding(0) var<uniform> O: Other;
    fn helper() -> u32 { return P.n; }
    @compute @workgroup_size(64) fn a_entry() { let x = helper(); }
    @compute @workgroup_size(64) fn b_entry() { if (O.m > 0u) { return; } }
    @compute @workgroup_size(1) fn none() { }
    @compute @workgroup_size(1) fn both() { let x = O.m + helper(); }
  `;

  it('reads structs in order, comments stripped, snake_case keyed as camelCase', () => {
    expect(structs(src).get('Params')).toEqual([
      { name: 'n', key: 'n', type: 'u32' },
      { name: 'pad_top', key: 'padTop', type: 'u32' },
      { name: 'scale', key: 'scale', type: 'f32' },
      { name: 'shift', key: 'shift', type: 'i32' },
    ]);
    expect(structs(src).has('Commented')).toBe(false);
    expect(camelCase('ln_beta1')).toBe('lnBeta1');
    expect(stripComments('a // b\nc /* d */ e')).toBe('a \nc  e');
  });

  it('finds the uniform an entry point reads through the functions it calls', () => {
    expect(entryUniform(src, 'a_entry')?.struct).toBe('Params');
    expect(entryUniform(src, 'b_entry')?.struct).toBe('Other');
    expect(entryUniform(src, 'none')).toBeNull();
    expect(() => entryUniform(src, 'both')).toThrow('reads several uniforms: Other, Params');
    expect(() => entryUniform(src, 'missing')).toThrow('no entry point missing');
  });

  it('packs by name and refuses missing, extra and mistyped fields', () => {
    const layout = entryUniform(src, 'a_entry')!;
    const bytes = packUniform(layout, { shift: { i32: -2 }, scale: { f32: 0.5 }, n: 7, padTop: 1 }, 'k');
    const view = new DataView(bytes);
    expect(bytes.byteLength).toBe(16);
    expect([view.getUint32(0, true), view.getUint32(4, true)]).toEqual([7, 1]);
    expect([view.getFloat32(8, true), view.getInt32(12, true)]).toEqual([0.5, -2]);
    const ok = { n: 7, padTop: 1, scale: { f32: 0.5 }, shift: { i32: -2 } };
    expect(() => packUniform(layout, { ...ok, padTop: undefined as never }, 'k')).toThrow(
      'uniform Params of k is missing padTop',
    );
    expect(() => packUniform(layout, { ...ok, pad_top: 1 }, 'k')).toThrow('uniform Params of k has no field pad_top');
    expect(() => packUniform(layout, { ...ok, scale: 0 }, 'k')).toThrow('scale is f32 but was given as u32');
    expect(() => packUniform(layout, { ...ok, n: 1.5 }, 'k')).toThrow('n = 1.5 is not a u32');
  });

  it('packs a last table field (array<vec4<u32>, N>) at the next 16 bytes, zero-filled', () => {
    const tableSrc = `struct T { count: u32, scale: f32, rows: array<vec4<u32>, 3> }
      @group(0) @binding(0) var<uniform> P: T;
      @compute @workgroup_size(1) fn main() { let x = P.rows[0].x + P.count; }`;
    const layout = entryUniform(tableSrc, 'main')!;
    const bytes = packUniform(layout, { count: 2, scale: { f32: 0.5 }, rows: [9, 8, 7, 6, 5] }, 'k');
    expect(bytes.byteLength).toBe(16 + 3 * 16);
    const words = [...new Uint32Array(bytes)];
    expect(words.slice(0, 1)).toEqual([2]);
    expect(new Float32Array(bytes)[1]).toBe(0.5);
    expect(words.slice(2, 4)).toEqual([0, 0]);
    expect(words.slice(4)).toEqual([9, 8, 7, 6, 5, 0, 0, 0, 0, 0, 0, 0]);
    const ok = { count: 2, scale: { f32: 0.5 } };
    expect(() => packUniform(layout, { ...ok, rows: Array(13).fill(1) }, 'k')).toThrow('rows holds 12 u32s, given 13');
    expect(() => packUniform(layout, { ...ok, rows: [1, -1] }, 'k')).toThrow('rows[1] = -1 is not a u32');
    expect(() => packUniform(layout, { ...ok, count: [1], rows: [] }, 'k')).toThrow(
      'count is u32 but was given a table',
    );
    const early = entryUniform(
      tableSrc.replace('count: u32, scale: f32, rows: array<vec4<u32>, 3>', 'rows: array<vec4<u32>, 3>, count: u32'),
      'main',
    )!;
    expect(() => packUniform(early, { count: 1, rows: [] }, 'k')).toThrow("must be the struct's last field");
  });
});

/** Every (shader, entry point) as the loader composes it, with the uniform it reads (or null). */
function kernels(): Map<string, UniformLayout | null> {
  const out = new Map<string, UniformLayout | null>();
  for (const shader of shaderNames) {
    const src = shaderSource(shader);
    for (const m of stripComments(src).matchAll(/@compute\b[\s\S]*?\bfn\s+(\w+)/g))
      out.set(`${shader}.${m[1]}`, entryUniform(src, m[1]!));
  }
  return out;
}

describe('every kernel uniform matches the record its launcher fills, by name', () => {
  const layouts = kernels();
  const seen = new Set<string>();
  it.each(FAMILIES)('%s', (_name, tuning) => {
    for (const spec of launchAll(tuning).flatMap((l) => l.specs)) {
      const kernel = `${spec.shader}.${spec.entry ?? 'main'}`;
      seen.add(kernel);
      const layout = layouts.get(kernel);
      expect(layout, `${kernel} is an entry point of the loaded shaders`).not.toBeUndefined();
      if (!layout) {
        expect(spec.params, `${kernel} reads no uniform`).toBeUndefined();
        continue;
      }
      expect(spec.params, `${kernel} reads ${layout.struct}`).toBeDefined();
      const params = spec.params!;
      // Positional records (deprecated; src/data/batch.ts) are checked for count and types only.
      if (!Array.isArray(params))
        expect(Object.keys(params).sort(), kernel).toEqual(layout.fields.map((f) => f.key).sort());
      expect(() => packUniform(layout, params, kernel)).not.toThrow();
    }
  });

  it('every entry point of every shader is reached by some launcher', () => {
    // The pooled conv forward runs in one pass (forwardPools): its module holds the GEMM's split-K
    // entries, which no launcher asks of it; so does the logits' GEMM with the loss (main_xent), and
    // matmul's plain main besides; and a first conv gathering its batch (forwardGathers: unsplit only).
    const unsplit = new Set([
      'conv2d_forward_pool.main_split',
      'conv2d_forward_pool.reduce_splits',
      ...['conv2d_forward_gather', 'conv2d_forward_pool_gather'].flatMap((m) => [
        `${m}.main_split`,
        `${m}.reduce_splits`,
      ]),
      'matmul_xent.main',
      'matmul_xent.main_split',
      'matmul_xent.reduce_splits',
    ]);
    expect([...layouts.keys()].filter((k) => !seen.has(k) && !unsplit.has(k))).toEqual([]);
  });

  it('the shaders checked are all of shaders/ and shaders/lib/', () => {
    const loaded = shaderNames.map((s) => shaderSource(s));
    const files = (readdirSync('shaders', { recursive: true }) as string[]).filter((f) => f.endsWith('.wgsl'));
    expect(files.filter((f) => !loaded.some((src) => src.includes(readFileSync(`shaders/${f}`, 'utf8'))))).toEqual([]);
  });

  it('every uniform struct in shaders/ is read by some entry point', () => {
    const used = new Set([...layouts.values()].flatMap((l) => (l ? [l.struct] : [])));
    const declared = new Set(
      shaderNames.flatMap((s: ShaderName) =>
        [...shaderSource(s).matchAll(/var\s*<\s*uniform\s*>\s*\w+\s*:\s*(\w+)/g)].map((m) => m[1]!),
      ),
    );
    expect([...declared].filter((s) => !used.has(s))).toEqual([]);
  });
});
