// Run directories: what `fmgpu train` leaves behind, written so that a crash at any moment leaves
// the last complete checkpoint readable.
//   model.net  run.json  history.json  history.csv  metrics.json  weights.safetensors
//   checkpoint -> checkpoint-<epoch>/   (a symlink, switched atomically by one rename)
//      weights.safetensors  best.safetensors  optimizer.safetensors  state.json
import { closeSync, existsSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DataError } from '../errors.ts';
import { decodeSafetensors, type NamedTensor } from '../model/safetensors.ts';
import type { EpochLog, MonitorState } from '../train/trainer.ts';

export interface CheckpointState {
  /** Epochs completed. */
  epoch: number;
  /** Training steps completed (the GPU step counter). */
  step: number;
  seed: number;
  optimizer: string;
  best: { value: number; epoch: number } | null;
  /** Early stopping's and the plateau schedule's state (absent in checkpoints of fmgpu 0.1.0 before it was kept). */
  monitor?: MonitorState;
  history: EpochLog[];
}

/** Writes and flushes to the disk, so that a rename after it never exposes a half-written file. */
function writeDurable(path: string, data: string | Uint8Array): void {
  const fd = openSync(path, 'w');
  try {
    writeFileSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes a file whole or not at all: a temporary name, then one rename. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeDurable(tmp, data);
  renameSync(tmp, path);
}

/**
 * mkdir -p, one level at a time: Node 20's recursive mkdirSync spins forever under a pseudo file
 * system such as /proc, where a plain mkdir fails with a clear error.
 */
export function makeDir(dir: string): void {
  const parent = dirname(dir);
  if (existsSync(dir)) return;
  if (parent !== dir) makeDir(parent);
  mkdirSync(dir);
}

export function defaultRunDir(modelFile: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return join('runs', `${basename(modelFile).replace(/\.net$/, '')}-${stamp}`);
}

export function writeCheckpoint(dir: string, files: { weights: Uint8Array; best: Uint8Array | null; optimizer: Uint8Array; state: CheckpointState }): void {
  const name = `checkpoint-${files.state.epoch}-${Date.now()}`;
  const folder = join(dir, name);
  rmSync(folder, { recursive: true, force: true });
  mkdirSync(folder);
  writeDurable(join(folder, 'weights.safetensors'), files.weights);
  if (files.best) writeDurable(join(folder, 'best.safetensors'), files.best);
  writeDurable(join(folder, 'optimizer.safetensors'), files.optimizer);
  writeDurable(join(folder, 'state.json'), JSON.stringify(files.state, null, 2));
  // The switch: a new symlink renamed over the old one is atomic on POSIX file systems.
  const link = join(dir, 'checkpoint');
  const tmp = join(dir, `checkpoint.tmp-${process.pid}`);
  rmSync(tmp, { force: true });
  symlinkSync(name, tmp);
  renameSync(tmp, link);
  // Older checkpoints, and leftovers of a run killed mid-write.
  for (const f of readdirSync(dir)) if ((f.startsWith('checkpoint-') && f !== name) || f.startsWith('checkpoint.tmp-')) rmSync(join(dir, f), { recursive: true, force: true });
}

export interface Checkpoint {
  weights: Map<string, NamedTensor>;
  best: Map<string, NamedTensor> | null;
  optimizer: Map<string, NamedTensor>;
  state: CheckpointState;
}

export function readCheckpoint(dir: string): Checkpoint {
  const link = join(dir, 'checkpoint');
  if (!existsSync(link)) throw new DataError(`${dir}: no checkpoint to resume from (${link} is missing)`);
  const folder = join(dir, lstatSync(link).isSymbolicLink() ? readlinkSync(link) : 'checkpoint');
  const read = (f: string): Map<string, NamedTensor> => {
    if (!existsSync(join(folder, f))) throw new DataError(`${join(folder, f)} is missing: the checkpoint is incomplete`);
    return decodeSafetensors(new Uint8Array(readFileSync(join(folder, f))), join(folder, f)).tensors;
  };
  let state: CheckpointState;
  try {
    state = JSON.parse(readFileSync(join(folder, 'state.json'), 'utf8'));
  } catch (e) {
    throw new DataError(`${join(folder, 'state.json')}: unreadable (${(e as Error).message})`);
  }
  return { weights: read('weights.safetensors'), best: existsSync(join(folder, 'best.safetensors')) ? read('best.safetensors') : null, optimizer: read('optimizer.safetensors'), state };
}

export interface RunInfo {
  dir: string;
  source: string;
  modelFile: string;
  /** The file the weights came from: weights.safetensors, or the last checkpoint's. */
  weightsFile: string;
  weights: Map<string, NamedTensor>;
  metadata: Record<string, string>;
}

/** A finished (or interrupted) run: its model and the weights eval and predict use. */
export function readRun(dir: string): RunInfo {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new DataError(`run directory ${dir} not found`);
  const modelFile = join(dir, 'model.net');
  if (!existsSync(modelFile)) throw new DataError(`${dir}: not a run directory (no model.net)`);
  let weightsFile = join(dir, 'weights.safetensors');
  if (!existsSync(weightsFile)) {
    const link = join(dir, 'checkpoint');
    if (!existsSync(link)) throw new DataError(`${dir}: no weights.safetensors and no checkpoint`);
    weightsFile = join(link, 'weights.safetensors');
  }
  const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(weightsFile)), weightsFile);
  return { dir, source: readFileSync(modelFile, 'utf8'), modelFile, weightsFile, weights: tensors, metadata };
}

export function historyCsv(history: readonly EpochLog[]): string {
  const cols = ['epoch', 'seconds', 'loss', 'accuracy', 'val_loss', 'val_accuracy', 'lr'] as const;
  return [cols.join(','), ...history.map((h) => cols.map((c) => (h[c] === undefined ? '' : String(h[c]))).join(','))].join('\n') + '\n';
}
