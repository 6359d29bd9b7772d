// Builds what Node runs (dist/cli.js, dist/bench/*.js) and the browser bundle (dist/web/fmgpu.js).
// WGSL files are bundled as text, the same way vitest loads them (vitest.config.ts).
import * as esbuild from 'esbuild';
import { readdirSync, existsSync } from 'node:fs';

const common = {
  bundle: true,
  format: 'esm',
  loader: { '.wgsl': 'text' },
  sourcemap: true,
  logLevel: 'warning',
};
const benches = existsSync('bench')
  ? readdirSync('bench')
      .filter((f) => f.endsWith('.ts'))
      .map((f) => `bench/${f}`)
  : [];

await esbuild.build({
  ...common,
  platform: 'node',
  target: 'node20',
  entryPoints: { cli: 'src/cli/main.ts', ...Object.fromEntries(benches.map((b) => [b.replace(/\.ts$/, ''), b])) },
  outdir: 'dist',
  external: ['webgpu', '@tensorflow/*'],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
if (existsSync('src/web.ts')) {
  await esbuild.build({
    ...common,
    platform: 'browser',
    target: 'es2022',
    entryPoints: { fmgpu: 'src/web.ts', app: 'web/app.ts' },
    outdir: 'dist/web',
  });
}
