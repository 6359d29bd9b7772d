// What the page server may send (src/node/server.ts): a request path resolved into one of five
// mounts, the page (web/), the bundle (dist/web/), the dataset's files (/data/), a run directory
// (/run/) and the dataset as `fmgpu serve` read it, held in memory (/dataset/, looked up by name).
// A path is taken segment by segment after percent-decoding, so `..`, encoded slashes and hidden
// files never reach the disk; a file is opened first and then judged by its descriptor (a
// regular file whose real path is inside the mount), so swapping a path for a symbolic link after
// the check cannot serve what it points to.
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  type Stats,
} from 'node:fs';
import { extname, isAbsolute, join, relative } from 'node:path';
import { DEFAULT_DATA_DIR } from './data.ts';
import { isDatasetFile } from './cifar.ts';

/** The folders a server serves from. */
export interface Mounts {
  /** The repository (or install) root holding web/ and dist/web/. */
  root: string;
  /** Fashion-MNIST idx files, served flat under /data/ (default: the Debian package's folder). */
  dataDir?: string;
  /** A run directory (weights.safetensors, model.net, ...) served flat under /run/. */
  runDir?: string;
  /** Bytes held in memory, by name, served under /dataset/ (src/cli/serve-data.ts: the dataset read at start). */
  dataset?: ReadonlyMap<string, MemoryFile>;
}

/** A file served from memory: its bytes and Content-Type. */
export interface MemoryFile {
  bytes: Uint8Array;
  type: string;
}

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
  const [path = ''] = rawUrl.split(/[?#]/, 1);
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

/** `real` (a real path) is `root` (another) or inside it. */
function within(root: string, real: string): boolean {
  const rel = relative(root, real);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** A symbolic link as the last component fails the open (ELOOP); a FIFO does not block it. */
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

/** Where the kernel says an open descriptor's file is; null without /proc (macOS, BSD). */
function fdPath(fd: number, proc: string): string | null {
  try {
    return readlinkSync(join(proc, String(fd)));
  } catch {
    return null;
  }
}

/**
 * The stats of what `fd` (opened from the path `file`) is, when that is a regular file whose real
 * path lies inside `dir`'s; else null. The descriptor decides, not the path, which may have been
 * swapped since. Without /proc, the file now at `file`'s real path must be the one opened (same
 * device and inode): weaker, as a second swap timed between those two looks could pass it.
 */
export function checkOpened(fd: number, dir: string, file: string, proc = '/proc/self/fd'): Stats | null {
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return null;
    let real = fdPath(fd, proc);
    if (real === null) {
      real = realpathSync(file);
      const now = lstatSync(real);
      if (now.dev !== stat.dev || now.ino !== stat.ino) return null;
    }
    return within(realpathSync(dir), real) ? stat : null;
  } catch {
    return null;
  }
}

/** A file to send: the caller owns `fd` and must close it (or hand it to a stream that will). */
export interface Opened {
  file: string;
  fd: number;
  stat: Stats;
}

/** `dir`'s file at `segments`, opened and found to be a regular file inside `dir`, or null. */
export function openInside(dir: string, segments: string[]): Opened | null {
  const file = join(dir, ...segments);
  let fd: number;
  try {
    fd = openSync(file, OPEN_FLAGS);
  } catch {
    return null;
  }
  const stat = checkOpened(fd, dir, file);
  if (stat) return { file, fd, stat };
  closeSync(fd);
  return null;
}

/** The run directory's own files (not its subfolders or hidden files), for /run/index.json. */
export function runFiles(runDir: string | undefined): string[] {
  if (!runDir || !existsSync(runDir)) return [];
  // Listed only when served: the same open and check.
  const servable = (f: string): boolean => {
    const o = openInside(runDir, [f]);
    if (o) closeSync(o.fd);
    return o !== null;
  };
  return readdirSync(runDir)
    .filter((f) => !f.startsWith('.') && servable(f))
    .sort();
}

/** What a URL names: a file held in memory (/dataset/NAME), or one on disk, opened (the caller closes it). */
export type Located = { memory: MemoryFile } | { opened: Opened };

/** The file a URL names, or null (404). */
export function locate(o: Mounts, rawUrl: string): Located | null {
  const segs = safeSegments(rawUrl);
  if (!segs) return null;
  if (segs[0] === 'dataset') {
    // Memory only: the names in the map, nothing beneath them.
    const memory = segs.length === 2 ? o.dataset?.get(segs[1] as string) : undefined;
    return memory ? { memory } : null;
  }
  const opened = openMounted(o, segs);
  return opened ? { opened } : null;
}

/** The file on disk that a URL's segments name (not /dataset/), opened, or null. */
function openMounted(o: Mounts, segs: string[]): Opened | null {
  // Only these folders' own files, not their subfolders.
  // Only the data folder's dataset files (cifar.ts isDatasetFile: what the page reads when it has no
  // /dataset/, and an embedding page's loadFashionMnist): --data may name a folder of one's own photos,
  // whose other files are nobody else's business.
  if (segs[0] === 'data') {
    const name = segs[1] ?? '';
    return segs.length === 2 && isDatasetFile(name) ? openInside(o.dataDir ?? DEFAULT_DATA_DIR, [name]) : null;
  }
  if (segs[0] === 'run') return segs.length === 2 && o.runDir ? openInside(o.runDir, segs.slice(1)) : null;
  const path = segs.length === 0 ? ['index.html'] : segs;
  return openInside(join(o.root, 'web'), path) ?? openInside(join(o.root, 'dist', 'web'), path);
}
