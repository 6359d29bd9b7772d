// The page server against two attacks. A served file swapped for a symbolic link to a secret
// between the server's check and its read (the file is judged by its open descriptor now), and DNS
// rebinding: a page whose name resolves to this machine reading it (only its own Host names are
// answered). Timings are printed for the closing note.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { CSP, startServer, type RunningServer } from '../src/node/server.ts';
import { checkOpened, openInside } from '../src/node/mounts.ts';
import { hostAllowed, hostNames } from '../src/node/hosts.ts';
import { makeSite, sendBytes, type Site } from './helpers/site.ts';

let site: Site;
let web: string;
let srv: RunningServer;
/** Outside the root, as long as race.txt, so a swapped-in read shows it whole. */
const SECRET = 'SECRET-9d2f-'.padEnd(64, 's');
const PUBLIC = 'public-'.padEnd(64, 'p');

beforeAll(async () => {
  site = makeSite('fmgpu-security-');
  web = join(site.root, 'web');
  writeFileSync(join(site.dir, 'race-secret.txt'), SECRET);
  writeFileSync(join(web, 'race.txt'), PUBLIC);
  writeFileSync(join(web, 'empty.txt'), '');
  writeFileSync(join(web, 'huge.bin'), Buffer.alloc(4 * 1024 * 1024, 7));
  mkdirSync(join(site.dir, 'outside'));
  writeFileSync(join(site.dir, 'outside', 'passwd'), SECRET);
  symlinkSync(join(site.dir, 'outside'), join(web, 'outdir'));
  // A folder link that stays inside the root keeps working.
  symlinkSync(join(web, 'sub'), join(web, 'insub'));
  execFileSync('mkfifo', [join(web, 'pipe')]);
  srv = await startServer({ root: site.root, dataDir: site.dataDir, runDir: site.runDir, port: 0 });
});

afterAll(async () => {
  await srv?.close();
  if (site) rmSync(site.dir, { recursive: true, force: true });
});

/**
 * For `ms`, in a thread of its own: `file` renamed over by a link to `secret`, then by a real file
 * again, both made first under `tmp` (beside the root, on the same file system, never served).
 */
const SWAPPER = `
const { workerData: { file, tmp, secret, text, ms }, parentPort } = require('node:worker_threads');
const fs = require('node:fs');
let swaps = 0;
for (const end = Date.now() + ms; Date.now() < end; swaps++) {
  fs.symlinkSync(secret, tmp + '.link');
  fs.renameSync(tmp + '.link', file);
  fs.writeFileSync(tmp + '.real', text);
  fs.renameSync(tmp + '.real', file);
}
parentPort.postMessage(swaps);
`;

describe('a served file swapped for a link to a secret', () => {
  it('never sends the secret, however the requests and the swaps interleave', async () => {
    const worker = new Worker(SWAPPER, {
      eval: true,
      workerData: {
        file: join(web, 'race.txt'),
        tmp: join(site.dir, 'race'),
        secret: join(site.dir, 'race-secret.txt'),
        text: PUBLIC,
        ms: 3000,
      },
    });
    const swapped = new Promise<number>((done, fail) => (worker.once('message', done), worker.once('error', fail)));
    let running = true;
    void swapped.finally(() => (running = false));
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    const counts: Record<string, number> = {};
    let leaked = 0;
    let requests = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (running && requests < 20_000) {
          requests++;
          const r = await sendBytes(srv.port, '/race.txt', 'GET', agent);
          counts[r.status] = (counts[r.status] ?? 0) + 1;
          if (r.body.toString('latin1').includes('SECRET')) leaked++;
          else if (r.status === 200) expect(r.body.toString()).toBe(PUBLIC);
        }
      }),
    );
    const swaps = await swapped;
    agent.destroy();
    console.log(
      `race: ${requests} requests in ${(performance.now() - t0).toFixed(0)} ms against ${swaps} swaps: ` +
        `${JSON.stringify(counts)}; ${leaked} sent the secret`,
    );
    expect(leaked).toBe(0);
    // Both sides of the race were reached: the real file served, the link refused.
    expect(counts[200] ?? 0).toBeGreaterThan(100);
    expect(counts[404] ?? 0).toBeGreaterThan(10);
    expect(requests).toBeGreaterThan(1000);
  });

  it('judges the descriptor, not the path: a secret opened under an inside name is refused', () => {
    const inside = join(web, 'style.css');
    const secret = openSync(join(site.dir, 'race-secret.txt'), 'r');
    const own = openSync(inside, 'r');
    try {
      // As if the path had been swapped between its check and the open: the path is inside, the file is not.
      expect(checkOpened(secret, web, inside)).toBeNull();
      expect(checkOpened(own, web, inside)?.size).toBe(6);
      // Without /proc: device and inode of the file now at the path's real path.
      expect(checkOpened(secret, web, inside, '/nonexistent')).toBeNull();
      expect(checkOpened(own, web, inside, '/nonexistent')?.size).toBe(6);
      expect(checkOpened(own, join(site.root, 'dist', 'web'), inside)).toBeNull();
    } finally {
      closeSync(secret);
      closeSync(own);
    }
  });

  it('refuses a link as the last name, a folder link out of the root, a folder and a FIFO', () => {
    expect(openInside(web, ['link.txt'])).toBeNull();
    expect(openInside(web, ['outdir', 'passwd'])).toBeNull();
    expect(openInside(web, ['sub'])).toBeNull();
    // Opened without blocking (no writer), then refused as no regular file.
    expect(openInside(web, ['pipe'])).toBeNull();
    const ok = openInside(web, ['insub', 'model.net']);
    expect(ok?.stat.size).toBe(17);
    closeSync(ok!.fd);
  });

  it('closes every descriptor it opens: 404 after the open, HEAD, an empty file, a client gone mid-file', async () => {
    const fds = (): number => readdirSync('/proc/self/fd').length;
    // Warm up node's own descriptors before counting, and let that file's close land.
    await sendBytes(srv.port, '/style.css', 'GET', false);
    await new Promise((r) => setTimeout(r, 100));
    const before = fds();
    const want: [string, string, number][] = [
      ['GET', '/sub', 404],
      ['GET', '/pipe', 404],
      ['GET', '/outdir/passwd', 404],
      ['GET', '/link.txt', 404],
      ['HEAD', '/style.css', 200],
      ['GET', '/empty.txt', 200],
      ['GET', '/insub/model.net', 200],
      ['GET', '/run/index.json', 200],
    ];
    for (let i = 0; i < 5; i++) {
      for (const [method, path, status] of want)
        expect(`${method} ${path} ${(await sendBytes(srv.port, path, method, false)).status}`).toBe(
          `${method} ${path} ${status}`,
        );
      await new Promise<void>((done) => {
        const s = connect(srv.port, '127.0.0.1', () =>
          s.write(`GET /huge.bin HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\n\r\n`),
        );
        s.once('data', () => s.destroy());
        s.on('error', () => undefined);
        s.on('close', () => done());
      });
    }
    expect(JSON.parse((await sendBytes(srv.port, '/run/index.json', 'GET', false)).body.toString())).toEqual({
      files: ['model.net', 'weights.safetensors'],
    });
    let left = fds() - before;
    for (let i = 0; i < 120 && left > 0; i++, await new Promise((r) => setTimeout(r, 25))) left = fds() - before;
    expect(left, `${left} descriptors more than before`).toBeLessThanOrEqual(0);
  });
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** GET (or `method`) `path` with the Host header `host`, or none at all for null. */
function withHost(
  port: number,
  host: string | null,
  path = '/',
  method = 'GET',
  address = '127.0.0.1',
): Promise<Reply> {
  return new Promise((done, fail) => {
    const headers = host === null ? {} : { Host: host };
    const req = request({ host: address, port, path, method, headers, setHost: false, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
      );
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end();
  });
}

/** One HTTP/1.0 request over a raw socket; the server closes it after the answer. */
function http10(port: number, head: string): Promise<string> {
  return new Promise((done) => {
    const s = connect(port, '127.0.0.1', () => s.write(`GET /index.html HTTP/1.0\r\n${head}\r\n`));
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => undefined);
    s.on('close', () => done(Buffer.concat(chunks).toString('latin1')));
  });
}

describe('DNS rebinding: only the names this server listens as', () => {
  it.each(['127.0.0.1:PORT', 'localhost:PORT', 'LOCALHOST:PORT', 'LocalHost:PORT', '[::1]:PORT'])(
    'Host %s → 200',
    async (host) => {
      const r = await withHost(srv.port, host.replace('PORT', String(srv.port)));
      expect(r.status).toBe(200);
      expect(r.body).toContain('<!doctype html>');
    },
  );

  it.each([
    'evil.example',
    'evil.example:PORT',
    '127.0.0.1:OTHER',
    'localhost:OTHER',
    '127.0.0.1',
    'localhost',
    '127.0.0.1:0PORT',
    'localhost.:PORT',
    '127.0.0.1.evil.example:PORT',
    'localhost:PORT@evil.example',
    '::1:PORT',
    '[::1]:PORT:PORT',
    '192.0.2.2:PORT',
    '0.0.0.0:PORT',
    '',
  ])('Host "%s" → 421 with the CSP', async (host) => {
    const value = host
      .replace('OTHER', String(srv.port === 65535 ? 1 : srv.port + 1))
      .replaceAll('PORT', String(srv.port));
    for (const path of ['/', '/run/index.json', '/run/weights.safetensors']) {
      const r = await withHost(srv.port, value, path);
      expect(r.status, `${JSON.stringify(value)} ${path}`).toBe(421);
      expect(r.headers['content-security-policy']).toBe(CSP);
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(r.body).toBe('this server does not answer to that Host (fmgpu serve --allow-host NAME)\n');
    }
    const h = await withHost(srv.port, value, '/', 'HEAD');
    expect(h.status).toBe(421);
    expect(h.body).toBe('');
  });

  it('HTTP/1.0: no Host is answered (browsers send one), a foreign one is not; HTTP/1.1 without one: 400', async () => {
    expect(await http10(srv.port, '')).toMatch(/^HTTP\/1\.1 200 [\s\S]*<!doctype html>/);
    expect(await http10(srv.port, `Host: 127.0.0.1:${srv.port}\r\n`)).toMatch(/^HTTP\/1\.1 200 /);
    expect(await http10(srv.port, 'Host: evil.example\r\n')).toMatch(
      /^HTTP\/1\.1 421 [\s\S]*Content-Security-Policy: default-src 'self'/,
    );
    const r = await withHost(srv.port, null);
    expect(r.status).toBe(400);
    expect(r.body).toBe('missing Host header\n');
  });

  it("bound to all addresses: also this machine's addresses and --allow-host names, still not others", async () => {
    const all = await startServer({ root: site.root, host: '::', allowHosts: ['box.example'], port: 0 });
    try {
      const at = (host: string, address = '127.0.0.1'): Promise<number> =>
        withHost(all.port, host.replace('PORT', String(all.port)), '/', 'GET', address).then((r) => r.status);
      for (const host of [
        '127.0.0.1:PORT',
        'localhost:PORT',
        '[::1]:PORT',
        '[::]:PORT',
        'box.example:PORT',
        'BOX.example:PORT',
      ])
        expect(`${host} ${await at(host)}`).toBe(`${host} 200`);
      expect(await at('[::1]:PORT', '::1')).toBe(200);
      for (const host of ['evil.example:PORT', 'box.example', 'box.example:1', 'sub.box.example:PORT'])
        expect(`${host} ${await at(host)}`).toBe(`${host} 421`);
      // A non-loopback address of this machine, where there is one, reached by that address.
      const names = hostNames('::');
      const lan = [...names].find((n) => /^\d+\.\d+\.\d+\.\d+$/.test(n) && !n.startsWith('127.'));
      if (lan) expect(await at(`${lan}:PORT`, lan)).toBe(200);
    } finally {
      await all.close();
    }
  });

  it('hostAllowed: the name, then the port the connection came in on (none only for 80)', () => {
    const names = hostNames('127.0.0.1', ['box.example']);
    const on = (localPort: number, localAddress = '127.0.0.1') => ({ localPort, localAddress });
    expect(hostAllowed('localhost:8080', names, on(8080))).toBe(true);
    expect(hostAllowed('box.example:8080', names, on(8080))).toBe(true);
    expect(hostAllowed('localhost', names, on(80))).toBe(true);
    expect(hostAllowed('localhost:80', names, on(80))).toBe(true);
    expect(hostAllowed('localhost', names, on(8080))).toBe(false);
    expect(hostAllowed('localhost:8081', names, on(8080))).toBe(false);
    // The address the connection came in on, also as an IPv4 client of a dual-stack socket sees it.
    expect(hostAllowed('10.1.2.3:8080', names, on(8080, '::ffff:10.1.2.3'))).toBe(true);
    expect(hostAllowed('10.1.2.4:8080', names, on(8080, '::ffff:10.1.2.3'))).toBe(false);
    expect(hostAllowed('[fd00::5]:8080', names, on(8080, 'fd00::5'))).toBe(true);
    // Loopback binds do not add this machine's other addresses.
    expect([...names].sort()).toEqual(['127.0.0.1', '[::1]', 'box.example', 'localhost']);
  });
});
