// The page server under fuzzed paths: pieces that have broken static servers before, joined at
// random. Every answer is a 200 with the bytes of a file inside what it serves, or a 404/400; all
// carry the CSP and none holds a private file. The timing is printed for the closing note.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from 'node:http';
import { readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { CSP, startServer, type RunningServer } from '../src/node/server.ts';
import { Rng } from '../src/util/rng.ts';
import { leaks, makeHostileSite, RUN_LISTING, sendBytes, type HostileSite } from './helpers/site.ts';

let site: HostileSite;
/** Default timeouts (10 s head): a busy loop must not look like a slow client. */
let srv: RunningServer;

beforeAll(async () => {
  site = makeHostileSite('fmgpu-fuzz-');
  srv = await startServer({ root: site.root, dataDir: site.dataDir, runDir: site.runDir, port: 0 });
});

afterAll(async () => {
  await srv?.close();
  if (site) rmSync(site.dir, { recursive: true, force: true });
});

// Pieces that have broken static servers before.
const PIECES = [
  '..',
  '.',
  '%2e%2e',
  '%2E%2E',
  '%2e.',
  '.%2e',
  '%252e%252e',
  '%2f',
  '%2F',
  '%5c',
  '%5C',
  '\\',
  '/',
  '//',
  '/./',
  '/../',
  '%00',
  '%c0%ae%c0%ae',
  '%c0%af',
  '%e2%80%a8',
  '%ef%bc%8e%ef%bc%8e',
  '%ef%bc%8f',
  'ü',
  '%C3%BC',
  '%',
  '%zz',
  ';',
  ':',
  '~',
  '%7e',
  'etc/passwd',
  'etc',
  'passwd',
  'package.json',
  '../src/cli/main.ts',
  'src',
  'cli',
  'main.ts',
  'sentinel.txt',
  'secret.txt',
  'out.txt',
  'outdir',
  'link.txt',
  'alias.css',
  'leak.safetensors',
  'index.html',
  'style.css',
  'bundle.js',
  'sub',
  'model.net',
  'fmgpu.js',
  'data',
  'run',
  'index.json',
  'weights.safetensors',
  'train-labels-idx1-ubyte.gz',
  '.env',
  'web',
  'dist',
  'site',
  'outside',
  '%C3%BCn%C3%AF%20c%C3%B6d%C3%A9.txt',
  'C:',
  'con',
  '*',
];
// Real paths, so a good share of the fuzz lands on files and mutations of them.
const REAL = [
  '/',
  '/index.html',
  '/style.css',
  '/alias.css',
  '/bundle.js',
  '/sub/model.net',
  '/fmgpu.js',
  '/data/train-labels-idx1-ubyte.gz',
  '/run/weights.safetensors',
  '/run/index.json',
  '/%C3%BCn%C3%AF%20c%C3%B6d%C3%A9.txt',
];
const TAILS = ['', '', '', '?', '?v=2', '?a=/../sentinel.txt', '?%00', '#', '#/../../sentinel.txt', '?x#y'];

function fuzzPath(rng: Rng): string {
  const pick = <T>(a: readonly T[]): T => a[rng.int(a.length)]!;
  let path: string;
  if (rng.next() < 0.35) {
    // A real path with a piece spliced in at a segment boundary (or none, to keep some 200s).
    const real = pick(REAL);
    const cut = real.lastIndexOf('/') + (rng.next() < 0.5 ? 0 : 1);
    path =
      rng.next() < 0.3 ? real : real.slice(0, cut) + pick(PIECES) + (rng.next() < 0.5 ? '/' : '') + real.slice(cut);
  } else {
    const n = 1 + rng.int(6);
    path = rng.next() < 0.9 ? '/' : '';
    for (let i = 0; i < n; i++) path += pick(PIECES) + (i < n - 1 ? pick(['/', '/', '', '%2f', '\\']) : '');
  }
  return path + pick(TAILS);
}

/** `file` exists, is a regular file, and its real path is inside `dir`'s. */
function insideFile(dir: string, file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    const rel = relative(realpathSync(dir), realpathSync(file));
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
  } catch {
    return false;
  }
}

/**
 * What a 200 for `path` may hold: the bytes of a file inside the folder that the path's first
 * segment mounts, read from disk; null when no such file exists (then the server must not 200).
 */
function expected(path: string): Buffer | null {
  let segs: string[];
  try {
    segs = path.split(/[?#]/, 1)[0]!.split('/').slice(1).map(decodeURIComponent);
  } catch {
    return null;
  }
  if (segs.join('/') === 'run/index.json') return Buffer.from(RUN_LISTING);
  const mounts =
    segs[0] === 'data'
      ? [[site.dataDir, segs.slice(1)]]
      : segs[0] === 'run'
        ? [[site.runDir, segs.slice(1)]]
        : [
            [join(site.root, 'web'), segs],
            [join(site.root, 'dist', 'web'), segs],
          ];
  for (const [dir, rest] of mounts as [string, string[]][]) {
    const file = join(dir, ...(rest.length === 0 || (rest.length === 1 && rest[0] === '') ? ['index.html'] : rest));
    if (insideFile(dir, file)) return readFileSync(file);
  }
  return null;
}

describe('fuzzed paths', () => {
  it('3000 seeded paths: 200 with a file inside the root, or 404/400; CSP on every answer', async () => {
    const rng = new Rng(8);
    const paths = Array.from({ length: 3000 }, () => fuzzPath(rng));
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const counts: Record<string, number> = {};
    const problems: string[] = [];
    const t0 = performance.now();
    // In batches, so a failure names its path without 3000 requests in flight on 8 sockets.
    for (let i = 0; i < paths.length; i += 100) {
      await Promise.all(
        paths.slice(i, i + 100).map(async (path, j) => {
          const method = (i + j) % 5 === 4 ? 'HEAD' : 'GET';
          let r: Awaited<ReturnType<typeof sendBytes>>;
          try {
            r = await sendBytes(srv.port, path, method, agent);
          } catch (e) {
            problems.push(`${method} ${JSON.stringify(path)}: ${(e as Error).message}`);
            return;
          }
          counts[r.status] = (counts[r.status] ?? 0) + 1;
          const what = `${method} ${JSON.stringify(path)} → ${r.status}`;
          if (r.headers['content-security-policy'] !== CSP) problems.push(`${what}: no CSP`);
          if (leaks(r.body)) problems.push(`${what}: body holds a private file`);
          if (r.status === 200) {
            const want = expected(path);
            if (!want) problems.push(`${what}: no file inside the root matches this path`);
            else if (r.headers['content-length'] !== String(want.length))
              problems.push(
                `${what}: Content-Length ${r.headers['content-length']} but the file has ${want.length} bytes`,
              );
            else if (method === 'GET' && !r.body.equals(want))
              problems.push(`${what}: body differs from the file inside the root`);
          } else if (r.status !== 404 && r.status !== 400) problems.push(`${what}: status not 200/404/400`);
        }),
      );
    }
    const ms = performance.now() - t0;
    agent.destroy();
    console.log(
      `fuzz: ${paths.length} paths (seed 8) in ${ms.toFixed(0)} ms: ` +
        `${JSON.stringify(counts)}; ${problems.length} problems`,
    );
    expect(problems.slice(0, 20)).toEqual([]);
    // The fuzz must reach both sides of the guarantee, or it shows nothing.
    expect(counts[200] ?? 0).toBeGreaterThan(100);
    expect(counts[404] ?? 0).toBeGreaterThan(1000);
    expect(counts[400] ?? 0).toBeGreaterThan(10);
    expect((await sendBytes(srv.port, '/style.css')).body.toString()).toBe('body{}');
  });
});
