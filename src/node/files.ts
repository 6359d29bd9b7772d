// Reading what the user hands the CLI (a .net source, images, idx and CSV data, weights) with
// bounds, so that no file, however crafted, makes fmgpu hold more than the file says it needs:
//   - openInput/readInput: one way to open an input. A missing path, a directory, anything but a
//     regular file (a FIFO, /dev/zero) and a file over the caller's cap are refused with one line
//     naming the file. The size comes from fstat on the opened descriptor, so what is checked is
//     what is read, and nothing past that size is ever read.
//   - gunzipAtMost/inflateAtMost: decompression with an output cap; more than the cap is reported,
//     never materialised.
//   - gunzipPrefix: only the first N bytes a gzip stream holds (a header, a subset), however much
//     more the stream would inflate to.
import { closeSync, existsSync, constants as fs, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { constants as Z, gunzipSync, inflateSync, type ZlibOptions } from 'node:zlib';
import { DataError } from '../errors.ts';
import { parseClassList } from '../data/classes.ts';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
/** .net sources: the language's parser holds about 350 bytes per source byte, so 1.5 MiB stays near 500 MB. */
export const NET_MAX_BYTES = 1.5 * MiB;

/** 1536 → "1.5 KiB", 16·2^20 → "16 MiB": caps in messages. */
export function formatBytes(n: number): string {
  const [v, unit] =
    n >= GiB ? [n / GiB, 'GiB'] : n >= MiB ? [n / MiB, 'MiB'] : n >= KiB ? [n / KiB, 'KiB'] : [n, 'bytes'];
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${unit}`;
}

export interface InputOptions {
  /** What the file should be, for messages: "a .net file", "a PNG or JPEG image". */
  what: string;
  /** Larger files are refused from their size, before anything is read. */
  maxBytes: number;
  /** The error the refusals throw (default DataError; both exit 2 in the CLI). */
  error?: new (
    message: string,
  ) => Error;
}

function kind(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'a special file';
}

/** An opened input: its size as fstat gave it, and reads that never go past that size. */
export class InputFile {
  private open = true;
  constructor(
    readonly path: string,
    private readonly fd: number,
    /** Bytes, from fstat on the descriptor when it was opened. */
    readonly size: number,
  ) {}

  /**
   * Bytes [offset, offset + length) clipped to the size, read into `into` when given (its start).
   * A file that shrank since it was opened gives fewer bytes: the decoders report it as truncated.
   */
  read(offset: number, length: number, into?: Uint8Array): Uint8Array {
    const n = Math.max(0, Math.min(length, this.size - offset));
    const out = into ? into.subarray(0, n) : new Uint8Array(n);
    let got = 0;
    while (got < n) {
      let r: number;
      try {
        r = readSync(this.fd, out, got, n - got, offset + got);
      } catch (e) {
        throw new DataError(`${this.path}: unreadable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
      if (r === 0) break;
      got += r;
    }
    return got === n ? out : out.subarray(0, got);
  }

  /** The whole file. */
  readAll(): Uint8Array {
    return this.read(0, this.size);
  }

  close(): void {
    if (this.open) closeSync(this.fd);
    this.open = false;
  }
}

/**
 * Opens an input file, refusing with one line that names it: a missing path ("no such file"), a
 * directory, anything that is not a regular file (a FIFO is opened without blocking, then
 * refused), and a file larger than `maxBytes`. The caller closes it.
 */
export function openInput(path: string, o: InputOptions): InputFile {
  const Err = o.error ?? DataError;
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer. Regular files ignore it.
    fd = openSync(path, fs.O_RDONLY | (fs.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new Err(`${path}: no such file`);
    if (code === 'EISDIR') throw new Err(`${path} is a directory, not ${o.what}`);
    if (code === 'EACCES' || code === 'EPERM') throw new Err(`${path}: permission denied`);
    throw new Err(`${path}: unreadable (${code ?? (e as Error).message})`);
  }
  let st: Stats;
  try {
    st = fstatSync(fd);
  } catch (e) {
    closeSync(fd);
    throw new Err(`${path}: unreadable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let refusal: string | null = null;
  if (st.isDirectory()) refusal = `${path} is a directory, not ${o.what}`;
  else if (!st.isFile()) refusal = `${path} is not a regular file (${kind(st)})`;
  else if (st.size > o.maxBytes)
    refusal =
      `${path}: ${st.size.toLocaleString('en-US')} bytes, ` +
      `more than the ${formatBytes(o.maxBytes)} fmgpu reads as ${o.what}`;
  if (refusal) {
    closeSync(fd);
    throw new Err(refusal);
  }
  return new InputFile(path, fd, st.size);
}

/** A whole input file's bytes (see openInput for what is refused). */
export function readInput(path: string, o: InputOptions): Uint8Array {
  const f = openInput(path, o);
  try {
    return f.readAll();
  } finally {
    f.close();
  }
}

/**
 * A file of class names, one a line in label order (a classes.txt, CIFAR's batches.meta.txt), read
 * with a bound and checked; null when there is no such file.
 */
export function readClassNames(file: string, maxBytes: number): string[] | null {
  if (!existsSync(file)) return null;
  return parseClassList(new TextDecoder().decode(readInput(file, { what: 'a list of class names', maxBytes })), file);
}

/** Whether bytes start with gzip's magic (1f 8b), whatever the file's name. */
export function isGzip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

/** Whether an error is zlib's "output past maxOutputLength". */
const tooLarge = (e: unknown): boolean => (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';

/**
 * Options that cap the output at `max` bytes with one output buffer of max + 1 bytes: zlib then
 * never concatenates chunks (no second copy), and the buffer's untouched pages cost no memory.
 */
function capped(max: number, extra: ZlibOptions = {}): ZlibOptions {
  return { ...extra, maxOutputLength: Math.max(1, max), chunkSize: Math.max(Z.Z_MIN_CHUNK, max + 1) };
}

function atMost(fn: typeof gunzipSync, input: Uint8Array, max: number): Uint8Array | null {
  try {
    const out = fn(input, capped(max));
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (e) {
    if (tooLarge(e)) return null;
    throw e;
  }
}

/**
 * The gunzipped bytes when there are at most `max` of them, else null (having inflated no more
 * than `max` + one chunk). zlib's own errors (a truncated or corrupt stream) are thrown.
 */
export function gunzipAtMost(input: Uint8Array, max: number): Uint8Array | null {
  return atMost(gunzipSync, input, max);
}

/** The same for a zlib stream (PNG's IDAT data). */
export function inflateAtMost(input: Uint8Array, max: number): Uint8Array | null {
  return atMost(inflateSync, input, max);
}

/**
 * The first `want` bytes a gzip stream holds, without inflating much more than that: a header, or
 * the images a subset keeps. `input(k)` gives the first k bytes of the compressed file (of
 * `total`). Fewer than `want` bytes come back when the stream holds fewer (or is cut short): the
 * caller then inflates it whole, bounded, to say why. Checksums and anything after the `want`
 * bytes are not looked at.
 *
 * Node has no synchronous streaming inflate, so this inflates growing prefixes of the input with
 * Z_SYNC_FLUSH (all the output the prefix determines), each capped at `want` plus a margin: input
 * prefixes double until the output reaches `want`, and a prefix whose output passes the cap (a
 * bomb) is bisected. Deflate inflates one input byte to at most ~1 KiB, far under the margin, so
 * the search always ends.
 */
export function gunzipPrefix(input: (k: number) => Uint8Array, total: number, want: number): Uint8Array {
  const cap = want + Math.max(want, MiB);
  let lo = 0; // a prefix known to give fewer than `want` bytes
  let hi = Infinity; // a prefix known to give more than `cap`
  let k = Math.min(total, 4 * KiB);
  for (;;) {
    let out: Uint8Array | null;
    try {
      const b = gunzipSync(input(k), capped(cap, { finishFlush: Z.Z_SYNC_FLUSH }));
      out = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (e) {
      if (!tooLarge(e)) throw e;
      out = null;
    }
    if (out && out.length >= want) return out.slice(0, want);
    if (out) {
      if (k >= total) return out.slice();
      lo = k;
    } else hi = k;
    const next = hi === Infinity ? Math.min(total, 2 * k) : Math.floor((lo + hi) / 2);
    if (next <= lo || next >= hi)
      throw new Error(`gunzipPrefix: no input prefix gives between ${want} and ${cap} bytes`);
    k = next;
  }
}

/** An InputFile's first k bytes for gunzipPrefix, read as needed and kept (the prefixes grow). */
export function prefixReader(f: InputFile, limit = f.size): (k: number) => Uint8Array {
  let have = new Uint8Array(0);
  return (k) => {
    const want = Math.min(k, limit);
    if (want > have.length) {
      const grown = new Uint8Array(Math.min(limit, Math.max(want, 2 * have.length)));
      grown.set(have);
      const more = f.read(have.length, grown.length - have.length, grown.subarray(have.length));
      have = grown.subarray(0, have.length + more.length);
    }
    return have.subarray(0, want);
  };
}
