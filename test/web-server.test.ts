// The page's static server: only its own files, CSP on every answer, HEAD like GET, traversal → 404.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { CSP, REPORT_CSP, startServer, type RunningServer } from '../src/node/server.ts';
import { safeSegments } from '../src/node/mounts.ts';
import { parseServeArgs, serve } from '../src/cli/serve.ts';
import { makeSite, send, sendBytes } from './helpers/site.ts';
import { idxDir } from './helpers/datasets.ts';

let dir: string;
let srv: RunningServer;
let withRun: RunningServer;

beforeAll(async () => {
  const site = makeSite();
  dir = site.dir;
  srv = await startServer({ root: site.root, dataDir: site.dataDir, port: 0 });
  withRun = await startServer({ root: site.root, dataDir: site.dataDir, runDir: site.runDir, port: 0 });
});

afterAll(async () => {
  await srv?.close();
  await withRun?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('serves its own files', () => {
  it.each([
    ['/', 'text/html; charset=utf-8', '<!doctype html>'],
    ['/index.html', 'text/html; charset=utf-8', '<!doctype html>'],
    ['/index.html?v=2#top', 'text/html; charset=utf-8', '<!doctype html>'],
    ['/style.css', 'text/css; charset=utf-8', 'body{}'],
    ['/sub/model.net', 'text/plain; charset=utf-8', 'dense 10'],
    ['/fmgpu.js', 'text/javascript; charset=utf-8', 'export const'],
    ['/fmgpu.js.map', 'application/json; charset=utf-8', '{}'],
    ['/data/train-labels-idx1-ubyte.gz', 'application/gzip', '\x1f'],
  ])('GET %s → 200 %s', async (path, type, start) => {
    const r = await send(srv.port, path);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe(type);
    expect(r.headers['content-encoding']).toBeUndefined();
    expect(r.body.startsWith(start)).toBe(true);
  });

  it('sends a Content-Security-Policy that forbids other origins, and nosniff', async () => {
    const r = await send(srv.port, '/');
    const csp = String(r.headers['content-security-policy']);
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/https?:|\*|unsafe-/);
    expect(r.headers['x-content-type-options']).toBe('nosniff');
  });

  it('answers HEAD with the GET headers and no body', async () => {
    const g = await send(srv.port, '/fmgpu.js');
    const h = await send(srv.port, '/fmgpu.js', 'HEAD');
    expect(h.status).toBe(200);
    expect(h.body).toBe('');
    expect(h.headers['content-length']).toBe(String(Buffer.byteLength(g.body)));
    expect(h.headers['content-type']).toBe(g.headers['content-type']);
    expect(h.headers['content-security-policy']).toBe(g.headers['content-security-policy']);
    const missing = await send(srv.port, '/nope', 'HEAD');
    expect(missing.status).toBe(404);
    expect(missing.body).toBe('');
  });

  it('refuses other methods with 405 and Allow', async () => {
    const r = await send(srv.port, '/', 'POST');
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('GET, HEAD');
  });
});

describe('only its own files: 404 with CSP', () => {
  it.each([
    '/../../etc/passwd',
    '/../secret.txt',
    '/..%2f..%2fetc%2fpasswd',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd',
    '/%252e%252e/secret.txt',
    '/..%5c..%5cetc%5cpasswd',
    '/..\\..\\etc\\passwd',
    '/data/../secret.txt',
    '/data/%2e%2e/secret.txt',
    '/data/..%2fsecret.txt',
    '/data/nested/x.gz',
    '/data/',
    '/data',
    '//etc/passwd',
    '/./index.html',
    '/%00',
    '/index.html%00.js',
    '/%',
    '/.env',
    '/%2eenv',
    '/link.txt',
    '/web/index.html',
    '/dist/web/fmgpu.js',
    '/sub',
    '/nope.html',
    '/C:%5cWindows',
  ])('GET %s → 404', async (path) => {
    const r = await send(srv.port, path);
    expect(r.status).toBe(404);
    expect(r.body).not.toContain('secret');
    expect(r.body).not.toContain('root:');
    expect(String(r.headers['content-security-policy'])).toContain("default-src 'self'");
  });

  it.each([
    ['/a/b.js', ['a', 'b.js']],
    ['/', []],
    ['/a%20b', ['a b']],
    ['/a/../b', null],
    ['/a%2fb', null],
    ['relative', null],
  ] as const)('safeSegments(%s)', (url, want) => {
    expect(safeSegments(url)).toEqual(want);
  });
});

describe('a run directory under /run/', () => {
  it('lists nothing without --run, and serves none of its files', async () => {
    const r = await send(srv.port, '/run/index.json');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(JSON.parse(r.body)).toEqual({ files: [] });
    expect((await send(srv.port, '/run/weights.safetensors')).status).toBe(404);
  });

  it("lists the run's own files (no folders, no hidden files)", async () => {
    expect(JSON.parse((await send(withRun.port, '/run/index.json')).body)).toEqual({
      files: ['model.net', 'weights.safetensors'],
    });
    const h = await send(withRun.port, '/run/index.json', 'HEAD');
    expect(h.body).toBe('');
    expect(Number(h.headers['content-length'])).toBeGreaterThan(0);
  });

  it.each([
    ['/run/weights.safetensors', 200, 'application/octet-stream'],
    ['/run/model.net', 200, 'text/plain; charset=utf-8'],
    ['/run/checkpoint/weights.safetensors', 404, 'text/plain; charset=utf-8'],
    ['/run/.lock', 404, 'text/plain; charset=utf-8'],
    ['/run/..%2fsecret.txt', 404, 'text/plain; charset=utf-8'],
    ['/run/../secret.txt', 404, 'text/plain; charset=utf-8'],
  ])('GET %s → %i', async (path, status, type) => {
    const r = await send(withRun.port, path);
    expect(r.status).toBe(status);
    expect(r.headers['content-type']).toBe(type);
  });

  it("a run's report is served with a policy of its own: inline styles apply, sandboxed, nothing fetched", async () => {
    const report = join(dir, 'run', 'report.html');
    writeFileSync(report, '<!doctype html><style>body{color:red}</style><p style="margin:0">report</p>');
    try {
      const r = await send(withRun.port, '/run/report.html');
      expect(r.status).toBe(200);
      expect(r.headers['content-security-policy']).toBe(REPORT_CSP);
      expect(REPORT_CSP).toContain("style-src 'unsafe-inline'");
      expect(REPORT_CSP).toContain('sandbox');
      expect(REPORT_CSP).not.toContain('script');
      for (const path of ['/run/model.net', '/', '/run/index.json'])
        expect((await send(withRun.port, path)).headers['content-security-policy'], path).toBe(CSP);
    } finally {
      rmSync(report);
    }
  });
});

describe('fmgpu serve', () => {
  it.each([
    [['--port', '9000', '--host', '0.0.0.0'], { port: 9000, host: '0.0.0.0' }],
    [['--port=0', '--data', '/tmp/d'], { port: 0, dataDir: '/tmp/d' }],
    [[], { port: 8080, host: '127.0.0.1', allowHosts: [], runDir: null }],
    [['--run', 'runs/a'], { runDir: 'runs/a' }],
    [
      [
        '--allow-host',
        'box.lan',
        '--allow-host=Box-2.example.org',
        '--allow-host',
        '::1',
        '--allow-host',
        '[fd00::2]',
        '--allow-host',
        '192.0.2.2',
      ],
      { allowHosts: ['box.lan', 'Box-2.example.org', '::1', '[fd00::2]', '192.0.2.2'] },
    ],
  ])('parses %j', (args, want) => {
    expect(parseServeArgs(args)).toMatchObject(want);
  });

  it.each([
    [['--port', 'x'], '--port must be a whole number from 0 to 65535, not "x"'],
    [['--port', '70000'], '--port must be a whole number from 0 to 65535, not "70000"'],
    [['--port'], '--port needs a value'],
    [['--bogus'], 'unknown option --bogus (see fmgpu serve --help)'],
    [['--prot', '80'], 'unknown option --prot (did you mean --port?)'],
    [['--allow-host', 'box.lan:8080'], '--allow-host takes a host name or address without a port, not "box.lan:8080"'],
    [['--allow-host', '[::1]:8080'], '--allow-host takes a host name or address without a port, not "[::1]:8080"'],
    [['--allow-host', '*.example'], '--allow-host takes a host name or address without a port, not "*.example"'],
    [['--allow-host', ''], '--allow-host needs a value'],
    [['--allow-host'], '--allow-host needs a value'],
    [['extra'], 'unexpected argument "extra"'],
    [
      ['--run', '/nonexistent/run'],
      '/nonexistent/run/weights.safetensors does not exist: --run takes a run directory written by fmgpu train',
    ],
  ])('%j is a usage error (exit 2)', async (args, message) => {
    const err: string[] = [];
    const code = await serve(args, { out: () => undefined, err: (l) => err.push(l) });
    expect(code).toBe(2);
    expect(err).toEqual([`fmgpu: error: ${message}`]);
  });

  it('on a wildcard address, says which address a browser on this machine opens (WebGPU needs localhost)', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const stop = new AbortController();
    const data = idxDir(join(dir, 'idx-any'), { side: 8, names: ['a', 'b'], train: 6, test: 2 });
    const done = serve(['--port', '0', '--host', '0.0.0.0', '--data', data], {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      root: join(dir, 'site'),
      stop: stop.signal,
    });
    for (let i = 0; i < 100 && err.length < 1; i++) await new Promise((r) => setTimeout(r, 20));
    const port = /http:\/\/0\.0\.0\.0:(\d+)\//.exec(out[1] ?? '')?.[1];
    expect(port, out.join('\n')).toBeDefined();
    expect(err).toEqual([
      'fmgpu: warning: listening on 0.0.0.0: other machines can reach this page; browsers give WebGPU only to ' +
        `https pages or localhost; on this machine open http://127.0.0.1:${port}/`,
    ]);
    stop.abort();
    expect(await done).toBe(0);
  });

  it('listens on 127.0.0.1, answers to --allow-host names, prints the address, stops on abort', async () => {
    const out: string[] = [];
    const stop = new AbortController();
    const data = idxDir(join(dir, 'idx'), { side: 8, names: ['a', 'b'], train: 6, test: 2 });
    const done = serve(['--port', '0', '--data', data, '--allow-host', 'box.example'], {
      out: (l) => out.push(l),
      err: () => undefined,
      root: join(dir, 'site'),
      stop: stop.signal,
    });
    for (let i = 0; i < 100 && out.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    const m = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(out[1] ?? '');
    expect(m, out.join('\n')).not.toBeNull();
    const r = await send(Number(m![1]), '/dataset/train-images.bin', 'HEAD');
    expect(r.status).toBe(200);
    expect((await send(Number(m![1]), '/data/train-images-idx3-ubyte.gz', 'HEAD')).status).toBe(200);
    const status = (host: string): Promise<number> =>
      new Promise((ok, fail) =>
        request(
          { host: '127.0.0.1', port: Number(m![1]), path: '/', headers: { Host: `${host}:${m![1]}` }, agent: false },
          (res) => (res.resume(), ok(res.statusCode ?? 0)),
        )
          .on('error', fail)
          .end(),
      );
    expect(await status('box.example')).toBe(200);
    expect(await status('other.example')).toBe(421);
    stop.abort();
    expect(await done).toBe(0);
  });

  it('--data DIR of a CIFAR-10 folder: read as fmgpu train reads it (/dataset/), its files (/data/)', async () => {
    const data = join(dir, 'cifar');
    mkdirSync(data, { recursive: true });
    const batch = Uint8Array.from({ length: 2 * 3073 }, (_, i) => (i * 7) % 256);
    [batch[0], batch[3073]] = [0, 1]; // labels among batches.meta.txt's two
    writeFileSync(join(data, 'data_batch_1.bin'), batch);
    writeFileSync(join(data, 'test_batch.bin'), batch.subarray(0, 3073));
    writeFileSync(join(data, 'batches.meta.txt'), 'red\ngreen\n');
    const out: string[] = [];
    const stop = new AbortController();
    const done = serve(['--port', '0', '--data', data], {
      out: (l) => out.push(l),
      err: () => undefined,
      root: join(dir, 'site'),
      stop: stop.signal,
    });
    for (let i = 0; i < 100 && out.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(out[0]).toBe(
      `fmgpu: the page trains on CIFAR-10 (cifar10, ${data}): 2 training and 1 test images of 32x32x3, 2 classes`,
    );
    const port = Number(/:(\d+)\//.exec(out[1] ?? '')?.[1]);
    expect(JSON.parse((await send(port, '/dataset/manifest.json')).body)).toMatchObject({ classes: ['red', 'green'] });
    const images = (await sendBytes(port, '/dataset/train-images.bin')).body;
    expect(new Uint8Array(images)).toEqual(Uint8Array.from([...batch.subarray(1, 3073), ...batch.subarray(3074)]));
    expect((await send(port, '/data/batches.meta.txt')).body).toBe('red\ngreen\n');
    stop.abort();
    expect(await done).toBe(0);
    // A server with no dataset in memory serves the same files under /data/ (the page's fallback).
    const bare = await startServer({ root: join(dir, 'site'), dataDir: data, port: 0 });
    try {
      const b = await sendBytes(bare.port, '/data/data_batch_1.bin');
      expect(b.status).toBe(200);
      expect(new Uint8Array(b.body)).toEqual(batch);
      expect((await sendBytes(bare.port, '/data/test_batch.bin')).body.length).toBe(3073);
      expect((await send(bare.port, '/data/batches.meta.txt')).body).toBe('red\ngreen\n');
      expect((await send(bare.port, '/data/train-labels-idx1-ubyte.gz')).status).toBe(404); // that folder's files only
    } finally {
      await bare.close();
    }
  });
});
