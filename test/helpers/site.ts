// A served site on disk for the page server's tests, and a client that sends paths verbatim.
import { request, type Agent } from 'node:http';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
export function sendBytes(port: number, path: string, method = 'GET', agent?: Agent | false): Promise<Omit<Answer, 'body'> & { body: Buffer }> {
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
