// The shape of the house (STYLE.md, ARCHITECTURE.md), checked so that it stays: the language
// imports nothing from the engine, the engine nothing from Node or the DOM, files stay short and
// lines at most 120 characters. Function length is Biome's rule (biome.json).
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const files = (dir: string, ext = /\.ts$/): string[] =>
  (readdirSync(dir, { recursive: true }) as string[]).filter((f) => ext.test(f)).map((f) => join(dir, f));
const imports = (file: string): string[] =>
  [...readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/gm)].map((m) => m[1]!);

describe('layering', () => {
  it('dsl/ imports nothing from src/', () => {
    const bad = files('dsl').flatMap((f) =>
      imports(f)
        .filter((i) => i.includes('/src/'))
        .map((i) => `${f}: ${i}`),
    );
    expect(bad).toEqual([]);
  });

  it('the engine imports nothing from node:* (it runs unchanged in a browser)', () => {
    const engine = ['src/gpu', 'src/ops', 'src/graph', 'src/model', 'src/train', 'src/data', 'src/util', 'src/report'];
    const bad = engine
      .flatMap((d) => files(d))
      .flatMap((f) =>
        imports(f)
          .filter((i) => i.startsWith('node:'))
          .map((i) => `${f}: ${i}`),
      );
    expect(bad).toEqual([]);
  });

  it('the engine touches no DOM (document, window): the page does that in web/', () => {
    const engine = ['src/gpu', 'src/ops', 'src/graph', 'src/model', 'src/train', 'src/data', 'src/util', 'src/report'];
    const bad = [...engine.flatMap((d) => files(d)), 'src/web.ts'].filter((f) =>
      /\b(document|window)\./.test(readFileSync(f, 'utf8')),
    );
    expect(bad).toEqual([]);
  });
});

describe('size', () => {
  it('no file in src/, dsl/ or web/ is over 400 lines', () => {
    const long = ['src', 'dsl', 'web']
      .flatMap((d) => files(d))
      .map((f) => [f, readFileSync(f, 'utf8').split('\n').length] as const)
      .filter(([, n]) => n > 400);
    expect(long).toEqual([]);
  });

  it('no line of code is over 120 characters', () => {
    const code = ['src', 'dsl', 'web', 'test', 'bench']
      .flatMap((d) => files(d, /\.(ts|wgsl)$/))
      .concat(files('shaders', /\.wgsl$/));
    const long = code.flatMap((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .flatMap((l, i) => (l.length > 120 ? [`${f}:${i + 1} (${l.length})`] : [])),
    );
    expect(long).toEqual([]);
  });
});
