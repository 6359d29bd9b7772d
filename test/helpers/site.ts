// A served site on disk for the page server's tests (a plain one, and one full of ways out for the
// load, malformed-request and fuzz tests), and a client that sends paths verbatim.
import { request, type Agent } from 'node:http';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../src/util/rng.ts';

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Sends the path exactly as written (no client-side normalisation). */
export function send(port: number, path: string, method = 'GET'): Promise<Answer> {
  return sendBytes(port, path, method).then((r) => ({ ...r, body: r.body.toString('utf8') }));
}

/** As `send`, with the body as bytes; `agent` picks keep-alive or not (default: node's global agent). */
export function sendBytes(
  port: number,
  path: string,
  method = 'GET',
  agent?: Agent | false,
): Promise<Omit<Answer, 'body'> & { body: Buffer }> {
  return new Promise((done, fail) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end();
  });
}

export interface Site {
  /** The temp folder holding everything below; remove it when done. */
  dir: string;
  /** What the server is started with: web/ and dist/web/ inside. */
  root: string;
  dataDir: string;
  runDir: string;
}

/**
 * dir/site/{web,dist/web} with a page, a bundle and a hidden file; dir/data with one idx file and a
 * subfolder; dir/run with weights, a checkpoint folder and a lock file; dir/secret.txt outside it
 * all, reachable from inside only through web/link.txt, a symbolic link.
 */
export function makeSite(prefix = 'fmgpu-serve-'): Site {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const root = join(dir, 'site');
  mkdirSync(join(root, 'web', 'sub'), { recursive: true });
  mkdirSync(join(root, 'dist', 'web'), { recursive: true });
  mkdirSync(join(dir, 'data', 'nested'), { recursive: true });
  writeFileSync(join(root, 'web', 'index.html'), '<!doctype html><title>page</title>');
  writeFileSync(join(root, 'web', 'style.css'), 'body{}');
  writeFileSync(join(root, 'web', 'sub', 'model.net'), 'dense 10 softmax\n');
  writeFileSync(join(root, 'web', '.env'), 'SECRET=1');
  writeFileSync(join(root, 'dist', 'web', 'fmgpu.js'), 'export const x = 1;');
  writeFileSync(join(root, 'dist', 'web', 'fmgpu.js.map'), '{}');
  writeFileSync(join(root, 'dist', 'web', 'app.js'), 'import "./fmgpu.js";');
  writeFileSync(join(dir, 'data', 'train-labels-idx1-ubyte.gz'), Buffer.from([0x1f, 0x8b, 0, 0]));
  writeFileSync(join(dir, 'data', 'nested', 'x.gz'), 'x');
  writeFileSync(join(dir, 'secret.txt'), 'top secret');
  symlinkSync(join(dir, 'secret.txt'), join(root, 'web', 'link.txt'));
  mkdirSync(join(dir, 'run', 'checkpoint'), { recursive: true });
  writeFileSync(join(dir, 'run', 'weights.safetensors'), 'w');
  writeFileSync(join(dir, 'run', 'model.net'), 'dense 10 softmax\n');
  writeFileSync(join(dir, 'run', '.lock'), '');
  writeFileSync(join(dir, 'run', 'checkpoint', 'weights.safetensors'), 'w');
  return { dir, root, dataDir: join(dir, 'data'), runDir: join(dir, 'run') };
}

/** In every file a hostile site's server must never serve; no response may contain it. */
export const SENTINEL = 'SENTINEL-7c1e-never-served';

/** /run/index.json of every site here: leak.safetensors (a link out) and checkpoint/ are not listed. */
export const RUN_LISTING = `${JSON.stringify({ files: ['model.net', 'weights.safetensors'] })}\n`;

/** `n` seeded random bytes. */
export function bytes(n: number, seed: number): Buffer {
  const rng = new Rng(seed);
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = rng.int(256);
  return out;
}

export interface HostileSite extends Site {
  /** dist/web/bundle.js, 256 KB of random bytes. */
  bundle: Buffer;
  /** web/huge.bin, 4 MB of random bytes. */
  huge: Buffer;
}

/**
 * makeSite, plus large files, a non-ASCII name, the SENTINEL in files beside and above the served
 * folders (the repository's own package.json and src/ inside the root), and links: out of the root
 * (a file, a folder, /etc, a run file) must 404, one within it (alias.css) may be served.
 */
export function makeHostileSite(prefix: string): HostileSite {
  const site = makeSite(prefix);
  const { dir, root } = site;
  const web = join(root, 'web');
  const bundle = bytes(256 * 1024, 1);
  const huge = bytes(4 * 1024 * 1024, 2);
  writeFileSync(join(root, 'dist', 'web', 'bundle.js'), bundle);
  writeFileSync(join(web, 'huge.bin'), huge);
  writeFileSync(join(web, 'ünï cödé.txt'), 'unicode name\n');
  writeFileSync(join(dir, 'sentinel.txt'), SENTINEL);
  writeFileSync(join(root, 'package.json'), `{"name":"${SENTINEL}"}`);
  mkdirSync(join(root, 'src', 'cli'), { recursive: true });
  writeFileSync(join(root, 'src', 'cli', 'main.ts'), `// ${SENTINEL}`);
  mkdirSync(join(dir, 'outside'));
  writeFileSync(join(dir, 'outside', 'passwd'), `root:${SENTINEL}`);
  symlinkSync(join(dir, 'sentinel.txt'), join(web, 'out.txt'));
  symlinkSync(join(dir, 'outside'), join(web, 'outdir'));
  symlinkSync('/etc', join(root, 'dist', 'web', 'etc'));
  symlinkSync(join(web, 'style.css'), join(web, 'alias.css'));
  symlinkSync(join(dir, 'sentinel.txt'), join(site.runDir, 'leak.safetensors'));
  return { ...site, bundle, huge };
}

/** Nothing private in a response: the SENTINEL, makeSite's secret or a passwd line. */
export function leaks(body: Buffer): boolean {
  const s = body.toString('latin1');
  return s.includes(SENTINEL) || s.includes('top secret') || s.includes('root:');
}
