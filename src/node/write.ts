// Writing files so that a crash or a full disk never leaves a half-written one: flushed to the disk,
// written under a temporary name and renamed, the temporary file removed again when a write fails,
// and the failure named by file (Node's ENOSPC on a descriptor names none).
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { WriteError } from '../errors.ts';

/** Writes and flushes to the disk, so that a rename after it never exposes a half-written file. */
export function writeDurable(path: string, data: string | Uint8Array): void {
  const fd = openSync(path, 'w');
  try {
    writeFileSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A write that failed, naming the file (Node's ENOSPC on a descriptor names none). */
export function writeError(path: string, e: unknown): WriteError {
  const err = e as NodeJS.ErrnoException;
  const why =
    err.code === 'ENOSPC'
      ? 'no space left on device'
      : err.code === 'EDQUOT'
        ? 'disk quota exceeded'
        : (err.message ?? String(e)).replace(/^[A-Z]+: /, '').split(',')[0];
  return new WriteError(`cannot write ${path}: ${why}`, { cause: e });
}

/** Writes `data` through the temporary name `tmp`, removed again if anything fails, then one rename. */
export function writeVia(tmp: string, path: string, data: string | Uint8Array): void {
  try {
    writeDurable(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw writeError(path, e);
  }
}

/** Writes a file whole or not at all, leaving nothing behind when it fails. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  writeVia(`${path}.tmp-${process.pid}`, path, data);
}

/**
 * mkdir -p, one level at a time: Node 20's recursive mkdirSync spins forever under a pseudo file
 * system such as /proc, where a plain mkdir fails with a clear error. True when this call made
 * `dir` itself; a folder made meanwhile by another process is no error (the run's lock decides).
 */
export function makeDir(dir: string): boolean {
  const parent = dirname(dir);
  if (existsSync(dir)) return false;
  if (parent !== dir) makeDir(parent);
  try {
    mkdirSync(dir);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST' && statSync(dir).isDirectory()) return false;
    throw e;
  }
}

/** Flushes a folder's entries (the renames in it) to the disk. */
export function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // not every file system lets a folder be synced; the renames stand regardless
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
