// A run directory's writer lock: one fmgpu process writes a run at a time. The lock is a file
// `fmgpu.lock` holding {pid, host, token}; it is made whole in a temporary file and linked into place
// (link fails when the name exists, and readers never see a half-written lock). A lock whose process
// is gone (same host, no such pid) is stale and taken over; one held by a live process refuses the
// second writer (UsageError: exit 2).
import { hostname } from 'node:os';
import { linkSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { UsageError } from '../errors.ts';
import { writeError } from './write.ts';

export const LOCK_FILE = 'fmgpu.lock';

/**
 * The lock, or a file the lock protocol writes for a moment beside it (fmgpu.lock.<token> while taking
 * it, fmgpu.lock.stale-<pid> while moving a stale one aside): never a folder's content.
 */
export const isLockFile = (name: string): boolean => name === LOCK_FILE || name.startsWith(`${LOCK_FILE}.`);

interface Owner {
  pid: number;
  host: string;
  token: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie (exited, not yet reaped by its parent) still answers kill(0) but writes nothing more.
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

function readOwner(file: string): Owner | null {
  try {
    const o = JSON.parse(readFileSync(file, 'utf8')) as Partial<Owner>;
    if (typeof o.pid === 'number' && typeof o.host === 'string' && typeof o.token === 'string') return o as Owner;
  } catch {
    // unreadable: not a lock of ours
  }
  return null;
}

const stale = (o: Owner): boolean => o.host === hostname() && !alive(o.pid);

/** A lock that could not be written: a full disk or quota is a runtime failure (exit 1) naming the file. */
function cannotWrite(dir: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  if (code === 'ENOSPC' || code === 'EDQUOT') return writeError(join(dir, LOCK_FILE), e);
  return new UsageError(`cannot write to the run directory ${dir} (${code})`);
}

export class RunLock {
  private constructor(
    private readonly file: string,
    private readonly token: string,
  ) {}

  /** Takes the lock of `dir`, or throws a UsageError naming the process that holds it. */
  static acquire(dir: string): RunLock {
    const file = join(dir, LOCK_FILE);
    const owner: Owner = { pid: process.pid, host: hostname(), token: randomBytes(8).toString('hex') };
    const tmp = join(dir, `${LOCK_FILE}.${owner.token}`);
    try {
      writeFileSync(tmp, `${JSON.stringify(owner)}\n`, { flag: 'wx' });
    } catch (e) {
      rmSync(tmp, { force: true }); // made but not filled (a full disk): not left behind
      throw cannotWrite(dir, e);
    }
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          linkSync(tmp, file);
          return new RunLock(file, owner.token);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw cannotWrite(dir, e);
        }
        const held = readOwner(file);
        if (!held || !stale(held)) {
          const who = held
            ? `fmgpu (pid ${held.pid}${held.host === hostname() ? '' : ` on ${held.host}`})`
            : 'another program';
          throw new UsageError(
            `${dir} is being written by ${who}: wait for it to finish, or remove ${file} if no fmgpu is running`,
          );
        }
        RunLock.takeStale(file, held);
      }
      throw new UsageError(`${dir}: could not take the run's lock ${file}`);
    } finally {
      unlinkSync(tmp);
    }
  }

  /** Moves a stale lock aside under a name of our own; puts it back if it turned out not to be that lock. */
  private static takeStale(file: string, held: Owner): void {
    const aside = `${file}.stale-${process.pid}`;
    try {
      renameSync(file, aside);
    } catch {
      return; // someone else moved it first: try again
    }
    const got = readOwner(aside);
    if (got && got.token !== held.token) {
      // A live lock taken meanwhile by another writer: give it back (link fails if yet another exists).
      try {
        linkSync(aside, file);
      } catch {
        // a third lock is in place: that one stands
      }
    }
    unlinkSync(aside);
  }

  /** Removes the lock if it is still ours. */
  release(): void {
    if (readOwner(this.file)?.token !== this.token) return;
    try {
      unlinkSync(this.file);
    } catch {
      // already gone
    }
  }
}
