import { defineConfig } from 'vitest/config';
import { readFileSync } from 'node:fs';

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
