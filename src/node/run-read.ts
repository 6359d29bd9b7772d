// Reading a run directory for eval, predict, report, export and --init: its model.net and the weights they
// score (weights.safetensors, or for a run stopped before its end the last checkpoint's, with its moving
// averages), and what a path that is not a run is instead. Writing runs is rundir.ts's.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../errors.ts';
import type { NamedTensor } from '../model/safetensors.ts';
import { averageName, hasAverages } from '../train/optimizer.ts';
import { shellWord } from '../util/shell.ts';
import { NET_MAX_BYTES, readInput } from './files.ts';
import { checkpointFolder, readWeights } from './rundir.ts';

export interface RunInfo {
  dir: string;
  source: string;
  modelFile: string;
  /** The file the weights came from: weights.safetensors, or the last checkpoint's. */
  weightsFile: string;
  /** The checkpoint folder the weights came from, for a run stopped before its end; null for an ended run. */
  checkpoint: string | null;
  /** The checkpoint's weights were replaced by its moving averages (a run with ema=). */
  averaged: boolean;
  weights: Map<string, NamedTensor>;
  metadata: Record<string, string>;
}

/** A finished (or interrupted) run: its model and the weights eval and predict use. */
export function readRun(dir: string): RunInfo {
  const stat = statSync(dir, { throwIfNoEntry: false });
  if (!stat) throw new DataError(`run directory ${dir} not found`);
  if (!stat.isDirectory())
    throw new DataError(
      `${dir} is a file, not a run directory (the folder fmgpu train writes, under runs/ by default)`,
    );
  const modelFile = join(dir, 'model.net');
  if (!existsSync(modelFile)) throw new DataError(`${dir}: not a run directory (no model.net)${runsIn(dir)}`);
  let weightsFile = join(dir, 'weights.safetensors');
  let folder: string | null = null;
  if (!existsSync(weightsFile)) {
    folder = checkpointFolder(dir);
    if (!folder)
      throw new DataError(
        `${dir}: no weights.safetensors and no checkpoint: the run stopped before its first epoch ended ` +
          `(train it again with --out ${shellWord(dir)})`,
      );
    weightsFile = join(folder, 'weights.safetensors');
  }
  const read = readWeights(weightsFile);
  const { metadata } = read;
  // A run stopped before its end keeps its moving averages (ema=) beside the live weights: as its end would,
  // eval, predict, report and export take the averages.
  const tensors = folder ? withAverages(read.tensors, join(folder, 'optimizer.safetensors')) : read.tensors;
  const averaged = tensors !== read.tensors;
  return {
    dir,
    source: new TextDecoder('utf-8', { ignoreBOM: true }).decode(
      readInput(modelFile, { what: 'a .net file', maxBytes: NET_MAX_BYTES }),
    ),
    modelFile,
    weightsFile,
    checkpoint: folder,
    averaged,
    weights: tensors,
    metadata,
  };
}

/** The runs a folder holds (its folders with a model.net), for a message: '' when none. */
function runsIn(dir: string): string {
  const runs = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(dir, e.name, 'model.net')))
    .map((e) => join(dir, e.name))
    .sort();
  if (runs.length === 0) return '';
  const shown = runs.length > 3 ? `${runs.slice(0, 3).join(', ')}, … (${runs.length})` : runs.join(', ');
  return `; the runs in it: ${shown}`;
}

/** `weights` with each tensor that has a moving average (`NAME.ema` in `optimizerFile`) replaced by it. */
function withAverages(weights: Map<string, NamedTensor>, optimizerFile: string): Map<string, NamedTensor> {
  if (!existsSync(optimizerFile)) return weights;
  const state = readWeights(optimizerFile).tensors;
  if (!hasAverages(state)) return weights;
  const out = new Map(weights);
  for (const [name, t] of weights) {
    const avg = state.get(averageName(name));
    if (avg && avg.data.length === t.data.length) out.set(name, { shape: t.shape, data: avg.data });
  }
  return out;
}
