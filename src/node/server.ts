// The page's static server (`fmgpu serve`): node:http, loopback by default. It serves four mounts
// and nothing else: the page (web/), the browser bundle (dist/web/, same URL space, so a copy of
// both folders into one directory is the same site), the dataset files under /data/, and a run
// directory's files under /run/ (its list at /run/index.json, so the page can load CLI weights).
// Every response forbids other origins (CSP default-src 'self'); a path is resolved segment by
// segment after percent-decoding, so `..`, encoded slashes and hidden files never reach the disk.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createReadStream, existsSync, readdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, extname, isAbsolute, join, relative, resolve } from 'node:path';

export interface ServerOptions {
  /** The repository (or install) root holding web/ and dist/web/. */
  root: string;
  /** Fashion-MNIST idx files, served flat under /data/ (default: the Debian package's folder). */
  dataDir?: string;
  /** A run directory (weights.safetensors, model.net, ...) served flat under /run/. */
  runDir?: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
}

export interface RunningServer {
  server: Server;
  host: string;
  port: number;
  url: string;
  close(): Promise<void>;
}

export const DEFAULT_DATA_DIR = '/usr/share/datasets/fashion-mnist';

/** `blob:`/`data:` images are the page's own (an uploaded photo, a canvas): no network involved. */
export const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.net': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  // Sent as bytes, not Content-Encoding: the page gunzips idx files itself.
  '.gz': 'application/gzip',
  '.safetensors': 'application/octet-stream',
};

export function contentType(file: string): string {
  return TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * The decoded segments of a request path, or null when any segment could escape or hide:
 * empty (`//`), `.`, `..`, a leading dot, or a decoded `/`, `\` or NUL. `/` alone is [].
 */
export function safeSegments(rawUrl: string): string[] | null {
  const path = rawUrl.split(/[?#]/, 1)[0]!;
  if (!path.startsWith('/')) return null;
  if (path === '/') return [];
  const out: string[] = [];
  for (const raw of path.slice(1).split('/')) {
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return null;
    }
    if (seg === '' || seg.startsWith('.') || /[/\\\0]/.test(seg) || seg.includes(':')) return null;
    out.push(seg);
  }
  return out;
}

/** `file` is `dir` or inside it, after resolving symbolic links. */
function inside(dir: string, file: string): boolean {
  let real: string;
  try {
    real = realpathSync(file);
  } catch {
    return false;
  }
  const rel = relative(realpathSync(dir), real);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

function regularFile(dir: string, segments: string[]): { file: string; stat: Stats } | null {
  if (!existsSync(dir)) return null;
  const file = join(dir, ...segments);
  if (!inside(dir, file)) return null;
  try {
    const stat = statSync(file);
    return stat.isFile() ? { file, stat } : null;
  } catch {
    return null;
  }
}

/** The run directory's own files (not its subfolders or hidden files), for /run/index.json. */
export function runFiles(runDir: string | undefined): string[] {
  if (!runDir || !existsSync(runDir)) return [];
  return readdirSync(runDir)
    .filter((f) => !f.startsWith('.') && regularFile(runDir, [f]) !== null)
    .sort();
}

/** Which file a URL names, or null (404). */
export function locate(o: ServerOptions, rawUrl: string): { file: string; stat: Stats } | null {
  const segs = safeSegments(rawUrl);
  if (!segs) return null;
  // Only these folders' own files, not their subfolders.
  if (segs[0] === 'data') return segs.length === 2 ? regularFile(o.dataDir ?? DEFAULT_DATA_DIR, segs.slice(1)) : null;
  if (segs[0] === 'run') return segs.length === 2 && o.runDir ? regularFile(o.runDir, segs.slice(1)) : null;
  const path = segs.length === 0 ? ['index.html'] : segs;
  return regularFile(join(o.root, 'web'), path) ?? regularFile(join(o.root, 'dist', 'web'), path);
}

function headers(res: ServerResponse): void {
  res.setHeader('Content-Security-Policy', CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.setHeader('Cache-Control', 'no-cache');
}

function plain(res: ServerResponse, status: number, text: string, head: boolean): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(head ? undefined : text);
}

export function handler(o: ServerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    headers(res);
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.setHeader('Allow', 'GET, HEAD');
      plain(res, 405, 'method not allowed\n', false);
      return;
    }
    if (req.url?.split(/[?#]/, 1)[0] === '/run/index.json') {
      const text = `${JSON.stringify({ files: runFiles(o.runDir) })}\n`;
      res.statusCode = 200;
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.setHeader('Content-Length', Buffer.byteLength(text));
      res.end(head ? undefined : text);
      return;
    }
    const found = locate(o, req.url ?? '/');
    if (!found) {
      plain(res, 404, 'not found\n', head);
      return;
    }
    res.statusCode = 200;
    res.setHeader('Content-Type', contentType(found.file));
    res.setHeader('Content-Length', found.stat.size);
    if (head) {
      res.end();
      return;
    }
    const stream = createReadStream(found.file);
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  };
}

/** Listens and resolves once bound; rejects with a clear message when the port is taken. */
export function startServer(o: ServerOptions): Promise<RunningServer> {
  const host = o.host ?? '127.0.0.1';
  const server = createServer(handler(o));
  return new Promise((done, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') fail(new Error(`port ${o.port} on ${host} is in use: pick another with --port`));
      else if (e.code === 'EADDRNOTAVAIL') fail(new Error(`cannot listen on ${host}: no such address on this machine (--host)`));
      else fail(e);
    });
    server.listen(o.port ?? 8080, host, () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : (o.port ?? 8080);
      const shown = host.includes(':') ? `[${host}]` : host;
      done({
        server,
        host,
        port,
        url: `http://${shown}:${port}/`,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}

/** The nearest folder above `from` holding web/index.html (source tree or installed package). */
export function findRoot(from: string): string | null {
  let dir = resolve(from);
  for (;;) {
    if (existsSync(join(dir, 'web', 'index.html'))) return dir;
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}
