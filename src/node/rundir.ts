// Run directories: what `fmgpu train` leaves behind, written so that a crash at any moment leaves
// the last complete checkpoint readable, and so that nothing fmgpu did not write is ever touched.
//   model.net  run.json  history.json  history.csv  metrics.json  weights.safetensors  report.html
//   checkpoint/   weights.safetensors  best.safetensors  optimizer.safetensors  state.json
//   fmgpu.lock    while a process writes the run (src/node/lock.ts)
// Every name fmgpu writes is in RUN_FILES: a new run goes only into a new or empty folder, cleanup
// removes only those names, and the layout holds no links, so a run survives cp -rL, zip and moves.
// A new checkpoint is written whole as checkpoint.next/, then switched in by two renames
// (checkpoint → checkpoint.prev, checkpoint.next → checkpoint); a crash between them leaves
// checkpoint.next complete, and readers and the next writer pick it up.
import { shellWord } from '../util/shell.ts';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { basename, dirname, join, relative, resolve, isAbsolute } from 'node:path';
import { DataError, FmgpuError, UsageError } from '../errors.ts';
import { decodeSafetensors, type NamedTensor } from '../model/safetensors.ts';
import type { EpochLog } from '../train/trainer.ts';
import { isLockFile, RunLock } from './lock.ts';
import { parseState, type CheckpointState } from './state.ts';
import { makeDir, syncDir, writeDurable, writeError, writeVia } from './write.ts';

export { makeDir, writeFileAtomic } from './write.ts';
import { MiB, readInput } from './files.ts';

export type { CheckpointState } from './state.ts';

/** 128 million parameters: far beyond the networks the language builds, well within memory. */
const WEIGHTS_MAX_BYTES = 512 * MiB;
const CHECKPOINT = 'checkpoint';
const NEXT = 'checkpoint.next';
const PREV = 'checkpoint.prev';
/** Files a run holds beside its checkpoint folders. */
export const RUN_FILES = [
  'model.net',
  'run.json',
  'history.json',
  'history.csv',
  'metrics.json',
  'weights.safetensors',
  'report.html',
  'model.onnx',
] as const;
export type RunFile = (typeof RUN_FILES)[number];
const tmpName = (name: string): string => `${name}.tmp`;
/** What a run killed before its first checkpoint holds: started over by a new run in the same folder. */
const RESTARTABLE = new Set<string>([
  'model.net',
  'run.json',
  'history.json', // a fork copies its run's history before its checkpoint
  'history.csv',
  ...RUN_FILES.map(tmpName),
  NEXT,
]);

/** run.json as fmgpu writes it (a JSON object with fmgpu's version), not a file of the same name. */
function ownRunJson(dir: string): boolean {
  try {
    const o = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as { version?: unknown };
    return typeof o.version === 'string';
  } catch {
    return false;
  }
}

export function defaultRunDir(modelFile: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return join('runs', `${basename(modelFile).replace(/\.net$/, '')}-${stamp}`);
}

const isDir = (p: string): boolean => existsSync(p) && statSync(p).isDirectory();

/**
 * The folder of the newest complete checkpoint, or null. `checkpoint/` itself; while a switch was
 * cut short, checkpoint.next/ (complete once its state.json exists: written last) or
 * checkpoint.prev/. Runs of fmgpu 0.1.0 made `checkpoint` a link to checkpoint-<epoch>-<time>/.
 */
export function checkpointFolder(dir: string): string | null {
  const link = join(dir, CHECKPOINT);
  if (existsSync(link) && lstatSync(link).isSymbolicLink()) {
    const target = resolve(dir, readlinkSync(link));
    return isDir(target) ? target : null;
  }
  if (isDir(link)) return link;
  if (existsSync(join(dir, NEXT, 'state.json'))) return join(dir, NEXT);
  if (isDir(join(dir, PREV))) return join(dir, PREV);
  return null;
}

/** The position in a run's checkpoint as state.json holds it now (null: none readable), read without checks. */
export function checkpointPosition(dir: string): { epoch: unknown; step: unknown } | null {
  const folder = checkpointFolder(dir);
  try {
    const s = folder ? JSON.parse(readFileSync(join(folder, 'state.json'), 'utf8')) : null;
    return s && typeof s === 'object' ? { epoch: s.epoch, step: s.step } : null;
  } catch {
    return null;
  }
}

export interface Checkpoint {
  /** The folder it was read from. */
  folder: string;
  weights: Map<string, NamedTensor>;
  best: Map<string, NamedTensor> | null;
  optimizer: Map<string, NamedTensor>;
  state: CheckpointState;
  /** The .net source its weights were trained from (their fmgpu.source), where they say; else null. */
  source: string | null;
}

/** The .net source weights were trained from (fmgpu.source in their metadata), null where they do not say. */
export const trainedSource = (metadata: Record<string, string>): string | null => metadata['fmgpu.source'] ?? null;

export function readCheckpoint(dir: string): Checkpoint {
  if (!isDir(dir)) throw new DataError(`run directory ${dir} not found`);
  const folder = checkpointFolder(dir);
  if (!folder) throw new DataError(`${dir}: no checkpoint to resume from (${join(dir, CHECKPOINT)} is missing)`);
  const read = (f: string): ReturnType<typeof readWeights> => {
    if (!existsSync(join(folder, f)))
      throw new DataError(`${join(folder, f)} is missing: the checkpoint is incomplete`);
    return readWeights(join(folder, f));
  };
  const stateFile = join(folder, 'state.json');
  if (!existsSync(stateFile)) throw new DataError(`${stateFile} is missing: the checkpoint is incomplete`);
  const state = parseState(
    new TextDecoder().decode(readInput(stateFile, { what: "a checkpoint's state", maxBytes: 64 * MiB })),
    stateFile,
  );
  const weights = read('weights.safetensors');
  return {
    folder,
    weights: weights.tensors,
    best: existsSync(join(folder, 'best.safetensors')) ? read('best.safetensors').tensors : null,
    optimizer: read('optimizer.safetensors').tensors,
    state,
    source: trainedSource(weights.metadata),
  };
}

export interface CheckpointFiles {
  weights: Uint8Array;
  best: Uint8Array | null;
  optimizer: Uint8Array;
  state: CheckpointState;
}

/** A run directory being written by this process: it holds the run's lock until `release`. */
export class RunDir {
  private constructor(
    readonly path: string,
    private readonly lock: RunLock,
    /** The folders this process made for it, the run's first, then any above it (removed again if it is refused). */
    private readonly made: readonly string[],
  ) {}

  /**
   * A new run in `path`: a new folder, an empty one, or one holding only the files of an fmgpu run
   * that never reached a checkpoint (started over). Anything else is refused, before the GPU is opened.
   */
  static create(path: string): RunDir {
    if (existsSync(path) && !statSync(path).isDirectory())
      throw new UsageError(`--out ${path}: a file is in the way of the run directory`);
    // The folders missing on the way (runs/ for the first run): made, and unmade with the run if it is refused.
    const made: string[] = [];
    for (let p = resolve(path); !existsSync(p) && dirname(p) !== p; p = dirname(p)) made.push(p);
    try {
      makeDir(path);
    } catch (e) {
      throw new UsageError(
        `cannot create the run directory ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
    const run = new RunDir(path, RunDir.lockOrUnmake(path, made), made);
    try {
      // The lock and the files another fmgpu racing for it writes beside it are not the folder's content.
      const others = readdirSync(path).filter((f) => !isLockFile(f));
      if (checkpointFolder(path))
        throw new UsageError(
          `${path} already holds a run: use --resume ${shellWord(path)} to continue it, or another --out`,
        );
      // fmgpu's own when its run.json says so, or when it was killed before writing one (run.json.tmp, or no
      // model.net: only fmgpu's temporary names); a model.net beside no run.json may be the user's.
      const owned = ownRunJson(path) || others.includes(tmpName('run.json')) || !others.includes('model.net');
      const foreign = others.filter((f) => !RESTARTABLE.has(f) || !owned);
      if (foreign.length > 0) {
        const shown =
          foreign.sort().slice(0, 3).join(', ') + (foreign.length > 3 ? `, … (${foreign.length} in all)` : '');
        throw new UsageError(
          `--out ${path} is not empty (${shown}): fmgpu writes a new run only into a new or empty folder`,
        );
      }
      // An fmgpu run that never reached a checkpoint: its files go, nothing else is there.
      for (const f of others) rmSync(join(path, f), { recursive: true, force: true });
    } catch (e) {
      run.abandon();
      throw e;
    }
    return run;
  }

  /** An existing run, to continue or to add files to: takes its lock, finishes a cut-short checkpoint switch. */
  static open(path: string): RunDir {
    if (!isDir(path)) throw new DataError(`run directory ${path} not found`);
    const run = new RunDir(path, RunDir.lockOrUnmake(path, []), []);
    try {
      run.recover();
    } catch (e) {
      run.release();
      throw e;
    }
    return run;
  }

  private static lockOrUnmake(path: string, made: readonly string[]): RunLock {
    try {
      return RunLock.acquire(path);
    } catch (e) {
      unmake(made);
      throw e;
    }
  }

  /** Writes one of the run's files whole or not at all. */
  write(name: RunFile, data: string | Uint8Array): void {
    writeVia(join(this.path, tmpName(name)), join(this.path, name), data);
  }

  /** Removes one of the run's files, if it is there. */
  remove(name: RunFile): void {
    rmSync(join(this.path, name), { force: true });
  }

  writeCheckpoint(files: CheckpointFiles): void {
    const next = join(this.path, NEXT);
    let at = next; // the file being written, named if it fails
    const put = (f: string, data: Uint8Array): void => {
      at = join(next, f);
      writeDurable(at, data);
    };
    try {
      rmSync(next, { recursive: true, force: true });
      mkdirSync(next);
      put('weights.safetensors', files.weights);
      if (files.best) put('best.safetensors', files.best);
      put('optimizer.safetensors', files.optimizer);
      // Last: its presence marks checkpoint.next complete.
      at = join(next, 'state.json');
      writeVia(join(next, 'state.json.tmp'), at, JSON.stringify(files.state, null, 2));
    } catch (e) {
      rmSync(next, { recursive: true, force: true });
      throw e instanceof FmgpuError ? e : writeError(at, e);
    }
    this.switchIn();
  }

  /** checkpoint.next → checkpoint, the old one aside first; a crash anywhere here is undone by recover(). */
  private switchIn(): void {
    const cur = join(this.path, CHECKPOINT),
      prev = join(this.path, PREV);
    rmSync(prev, { recursive: true, force: true });
    const legacy = this.legacyTarget();
    if (legacy) unlinkSync(cur);
    else if (existsSync(cur)) renameSync(cur, prev);
    renameSync(join(this.path, NEXT), cur);
    rmSync(prev, { recursive: true, force: true });
    if (legacy) rmSync(legacy, { recursive: true, force: true });
    syncDir(this.path);
  }

  /** fmgpu 0.1.0's `checkpoint` link: its target folder inside the run (to remove once replaced), or null. */
  private legacyTarget(): string | null {
    const link = join(this.path, CHECKPOINT);
    if (!isLink(link)) return null;
    const target = resolve(this.path, readlinkSync(link));
    const rel = relative(resolve(this.path), target);
    return rel && !rel.startsWith('..') && !isAbsolute(rel) && !rel.includes('/') && /^checkpoint-\d+-\d+$/.test(rel)
      ? target
      : null;
  }

  /** Completes a checkpoint switch cut short by a crash; removes the temporary names of files cut short. */
  private recover(): void {
    const cur = join(this.path, CHECKPOINT),
      next = join(this.path, NEXT),
      prev = join(this.path, PREV);
    if (!existsSync(cur) && !isLink(cur)) {
      if (existsSync(join(next, 'state.json'))) renameSync(next, cur);
      else if (isDir(prev)) renameSync(prev, cur);
    }
    if (existsSync(cur) || isLink(cur)) {
      rmSync(next, { recursive: true, force: true });
      rmSync(prev, { recursive: true, force: true });
    }
    for (const f of RUN_FILES) rmSync(join(this.path, tmpName(f)), { force: true });
  }

  release(): void {
    this.lock.release();
  }

  /**
   * Lets go of a new run refused after this process wrote into it (a fork's copies): the run's files and
   * checkpoint folders, the lock, and the folder if this process made it. `create` took the folder new, empty or
   * holding only a restartable run's files, so nothing else is there.
   */
  discard(): void {
    for (const f of [...RUN_FILES, ...RUN_FILES.map(tmpName), CHECKPOINT, NEXT, PREV])
      rmSync(join(this.path, f), { recursive: true, force: true });
    this.abandon();
  }

  /** Lets go of a run refused before it started: the lock, and the folders this process made for it, where empty. */
  abandon(): void {
    this.release();
    unmake(this.made);
  }
}

/** Removes folders made for a run, deepest first, each only while empty. */
function unmake(made: readonly string[]): void {
  for (const dir of made) {
    try {
      rmdirSync(dir);
    } catch {
      return; // not empty after all (another run, a file): it and the folders above it stay
    }
  }
}

const isLink = (p: string): boolean => {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
};

/** A safetensors file of weights or optimizer state, read with a bound and checked value by value. */
export function readWeights(file: string): ReturnType<typeof decodeSafetensors> {
  return decodeSafetensors(readInput(file, { what: 'a safetensors file', maxBytes: WEIGHTS_MAX_BYTES }), file);
}

export function historyCsv(history: readonly EpochLog[]): string {
  const cols = ['epoch', 'seconds', 'loss', 'accuracy', 'val_loss', 'val_accuracy', 'lr'] as const;
  return `${[
    cols.join(','),
    ...history.map((h) => cols.map((c) => (h[c] === undefined ? '' : String(h[c]))).join(',')),
  ].join('\n')}\n`;
}
