import { defineConfig } from 'vitest/config';
import { readFileSync } from 'node:fs';

// vitest 5 reports failures through Map.groupBy / Object.groupBy (Node 21+); Node 20 lacks them,
// which hides every failure message. The config runs in vitest's main process, so define them here.
function groupBy<T, K>(items: Iterable<T>, key: (item: T, i: number) => K): Map<K, T[]> {
  const out = new Map<K, T[]>();
  let i = 0;
  for (const item of items) {
    const k = key(item, i++);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}
const M = Map as unknown as { groupBy?: unknown };
if (!M.groupBy) Object.defineProperty(Map, 'groupBy', { value: groupBy, configurable: true, writable: true });
const O = Object as unknown as { groupBy?: unknown };
if (!O.groupBy) {
  Object.defineProperty(Object, 'groupBy', {
    value: <T>(items: Iterable<T>, key: (item: T, i: number) => PropertyKey) =>
      Object.assign(Object.create(null), Object.fromEntries(groupBy(items, key))),
    configurable: true,
    writable: true,
  });
}

export default defineConfig({
  plugins: [
    {
      // Same contract as esbuild's text loader in build.mjs: a .wgsl import is its source text.
      name: 'wgsl-text',
      enforce: 'pre',
      load(id) {
        if (id.endsWith('.wgsl')) return `export default ${JSON.stringify(readFileSync(id, 'utf8'))};`;
      },
    },
  ],
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/helpers/allclose.ts'],
    reporters: ['default', './test/helpers/totals-reporter.ts'],
    pool: 'forks',
    // One lavapipe device already uses every core; files in parallel only fight over them.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    env: { XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  },
});
