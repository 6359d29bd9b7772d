// The page's static server (`fmgpu serve`): node:http, loopback by default. It serves five mounts
// and nothing else: the page (web/), the browser bundle (dist/web/, same URL space, so a copy of
// both folders into one directory is the same site), the dataset files under /data/, a run
// directory's files under /run/ (its list at /run/index.json, so the page can load CLI weights),
// and under /dataset/ the dataset `fmgpu serve` read at start, from memory (manifest.json and the
// sets' bytes); a copy of the site on a static host has no /dataset/, and the page then reads /data/.
// Every response forbids other origins (CSP default-src 'self'). Which file a path names, and
// whether it may be sent, is mounts.ts's; which Host headers are answered, hosts.ts's.
// Malformed or slow clients get a 4xx with the same headers and a closed socket, never a hung one.
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeSync, createReadStream, existsSync } from 'node:fs';
import { pipeline, type Duplex } from 'node:stream';
import { dirname, join, resolve } from 'node:path';
import { contentType, locate, runFiles, type Mounts } from './mounts.ts';
import { hostAllowed, hostNames } from './hosts.ts';

export interface ServerOptions extends Mounts {
  host?: string;
  /**
   * More names a request's Host header may give (this machine's DNS name), with the port. Always
   * accepted: the loopback names, `host` and, bound beyond loopback, this machine's addresses.
   */
  allowHosts?: readonly string[];
  /** 0 picks a free port. */
  port?: number;
  /** How long a client may take to send a request's head before a 408 (slowloris guard; default 10 s). */
  headersTimeoutMs?: number;
}

export interface RunningServer {
  server: Server;
  host: string;
  port: number;
  url: string;
  close(): Promise<void>;
}

// --data's default, here too for `fmgpu serve`'s help; defined in src/node/data.ts.

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

/**
 * A run's report (/run/report.html: self-contained, its styles inline, its images data: URLs, no script): styled,
 * sandboxed, nothing fetched.
 */
export const REPORT_CSP = [
  "default-src 'none'",
  "style-src 'unsafe-inline'",
  'img-src data:',
  'sandbox',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** On every answer, including the ones written straight to the socket (`rawAnswer`). */
const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-cache',
};

function headers(res: ServerResponse): void {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
}

function plain(res: ServerResponse, status: number, text: string, head: boolean): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(head ? undefined : text);
}

/**
 * An answer written straight to a socket that node:http no longer parses (a request it could not
 * read, CONNECT), then the socket closed. No body: the request's method may be unknown, and an
 * answer to HEAD must not have one.
 */
function rawAnswer(socket: Duplex, status: number, extra: Record<string, string> = {}): void {
  const fields = { ...SECURITY_HEADERS, ...extra, 'Content-Length': '0', Connection: 'close' };
  const head = Object.entries(fields)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${head}\r\n`, () => socket.destroy());
}

/** Per socket: answers node:http has started and not yet sent, and what waits for them to be. */
interface Pending {
  open: number;
  waiting: (() => void)[];
}

const pending = new WeakMap<Duplex, Pending>();

/**
 * Counts `res` as open on its request's socket until it is sent ('finish') or abandoned ('close').
 * Keyed by `req.socket`: a pipelined answer has no `res.socket` until the ones before it are sent.
 */
function track(req: IncomingMessage, res: ServerResponse): void {
  const p = pending.get(req.socket) ?? { open: 0, waiting: [] };
  pending.set(req.socket, p);
  p.open++;
  let settled = false;
  const settle = (): void => {
    if (settled) return;
    settled = true;
    if (--p.open === 0) for (const then of p.waiting.splice(0)) then();
  };
  res.once('finish', settle);
  res.once('close', settle);
}

/**
 * Runs `then` once the answers to the requests pipelined before this point are all sent, so a
 * raw answer written to the socket lands after them, in request order.
 */
function afterPipelined(socket: Duplex, then: () => void): void {
  const p = pending.get(socket);
  if (p && p.open > 0) p.waiting.push(then);
  else then();
}

const answering = new WeakSet<Duplex>();

/** node:http's parse errors (and its timeouts) as answers; node's own default omits the CSP. */
function onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  // The parser stays in its error state: more bytes from the client bring the same error again.
  if (answering.has(socket)) return;
  answering.add(socket);
  socket.pause();
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  // The client may have gone while earlier answers were still being sent.
  afterPipelined(socket, () => {
    if (socket.writable) rawAnswer(socket, status);
  });
}

export function handler(o: ServerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const names = hostNames(o.host ?? '127.0.0.1', o.allowHosts);
  return (req, res) => {
    try {
      answer(o, names, req, res);
    } catch {
      // A file system surprise (a folder removed while serving) fails this request, not the server.
      if (res.headersSent) res.destroy();
      else plain(res, 500, 'internal error\n', false);
    }
  };
}

function answer(o: ServerOptions, names: ReadonlySet<string>, req: IncomingMessage, res: ServerResponse): void {
  headers(res);
  const head = req.method === 'HEAD';
  // HTTP/0.9 (no version in the request line) and 2.x in text are not what this server speaks.
  if (req.httpVersionMajor !== 1) {
    plain(res, 400, 'unsupported HTTP version\n', false);
    return;
  }
  // node:http's own check for this answers without the CSP, so it is off and done here.
  if (req.httpVersionMinor === 1 && req.headers.host === undefined) {
    plain(res, 400, 'missing Host header\n', head);
    return;
  }
  // Browsers always send Host, so an HTTP/1.0 request without one is no rebinding page.
  if (req.headers.host !== undefined && !hostAllowed(req.headers.host, names, req.socket)) {
    plain(res, 421, 'this server does not answer to that Host (fmgpu serve --allow-host NAME)\n', head);
    return;
  }
  if (req.method !== 'GET' && !head) {
    res.setHeader('Allow', 'GET, HEAD');
    plain(res, 405, 'method not allowed\n', false);
    return;
  }
  const path = req.url?.split(/[?#]/, 1)[0] ?? '';
  if (path === '/run/index.json') {
    const text = `${JSON.stringify({ files: runFiles(o.runDir) })}\n`;
    res.statusCode = 200;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(text));
    res.end(head ? undefined : text);
    return;
  }
  const located = locate(o, req.url ?? '/');
  if (!located) {
    plain(res, 404, 'not found\n', head);
    return;
  }
  res.statusCode = 200;
  if ('memory' in located) {
    const { memory } = located;
    res.setHeader('Content-Type', memory.type);
    res.setHeader('Content-Length', memory.bytes.length);
    res.end(head ? undefined : memory.bytes);
    return;
  }
  const found = located.opened;
  if (/^\/run\/[^/]+\.html$/.test(path)) res.setHeader('Content-Security-Policy', REPORT_CSP);
  res.setHeader('Content-Type', contentType(found.file));
  res.setHeader('Content-Length', found.stat.size);
  if (head || found.stat.size === 0) {
    closeSync(found.fd);
    res.end();
    return;
  }
  // pipeline, not pipe: a client that goes away mid-file must close the file too (pipe leaks the
  // descriptor), and so must one already gone. The read stops at the length sent in case the file
  // grows meanwhile.
  const file = createReadStream(found.file, { fd: found.fd, start: 0, end: found.stat.size - 1, autoClose: true });
  pipeline(file, res, () => undefined);
}

/** Listens and resolves once bound; rejects with a clear message when the port is taken. */
export function startServer(o: ServerOptions): Promise<RunningServer> {
  const host = o.host ?? '127.0.0.1';
  const headersTimeout = o.headersTimeoutMs ?? 10_000;
  const serve = handler(o);
  const server = createServer(
    {
      // Explicit, so a NODE_OPTIONS --max-http-header-size cannot loosen it; over it is a 431.
      maxHeaderSize: 16 * 1024,
      headersTimeout,
      // GET and HEAD carry no body worth waiting for.
      requestTimeout: 3 * headersTimeout,
      // How often node looks for connections past those limits (its default, 30 s, lets a
      // slowloris hold a socket up to 30 s longer than the limit says).
      connectionsCheckingInterval: Math.min(1000, Math.max(50, headersTimeout / 4)),
      requireHostHeader: false,
    },
    // Every answer node:http starts is counted before it can be sent (see afterPipelined).
    (req, res) => {
      track(req, res);
      serve(req, res);
    },
  );
  // A socket with nothing moving either way for as long (a client that stopped reading a file) is
  // dropped; node's default is never.
  server.setTimeout(3 * headersTimeout);
  server.on('clientError', onClientError);
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => rawAnswer(socket, 405, { Allow: 'GET, HEAD' }));
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    track(req, res);
    headers(res);
    plain(res, 417, 'expectation failed\n', req.method === 'HEAD');
  });
  return new Promise((done, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') fail(new Error(`port ${o.port} on ${host} is in use: pick another with --port`));
      else if (e.code === 'EADDRNOTAVAIL')
        fail(new Error(`cannot listen on ${host}: no such address on this machine (--host)`));
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
