// `fmgpu predict RUN image.png …`: the top 3 classes (--top N) with probabilities for each image. A 28×28×1
// run gets Fashion-MNIST's photo path (src/data/photo.ts); any other shape (colour, other sizes) the
// whole picture resized to its H×W×C and normalised as its test set is (src/data/resize.ts).
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Trainer } from '../train/trainer.ts';
import { topClasses } from '../train/metrics.ts';
import type { Dataset } from '../data/dataset.ts';
import {
  photoLines,
  preparePhotoFile,
  resizePhotoFile,
  runForm,
  saveInputs,
  type PreparedPhoto,
  type ResizedPhotoFile,
} from './photo.ts';
import { UsageError, parseArgs, type FlagSpec } from './args.ts';
import { openCliGpu, openRun, runClasses, runNormalized, type OpenRun } from './common.ts';
import type { Out } from './progress.ts';
import { PREDICT_SET_FLAGS, predictSets, topCount, wantsSets } from './predict-sets.ts';

export const PREDICT_FLAGS: Record<string, FlagSpec> = {
  invert: {
    type: 'bool',
    help: 'dark items on light backgrounds only; --no-invert light items only; default: decide per image',
  },
  'save-input': {
    type: 'string',
    meta: 'DIR',
    help:
      "write the image the network sees (28x28 grey, or the run's own size and colour) as DIR/<image>.png; with " +
      '--test, each test image as the data holds it, DIR/test-N.png',
  },
  adapter: { type: 'string', meta: 'NAME', help: 'pick the WebGPU adapter whose name contains NAME' },
  json: { type: 'bool', help: 'one JSON object per image on stdout' },
  top: {
    type: 'int',
    min: 1,
    max: 256,
    meta: 'N',
    help: "the N likeliest classes of each image (default 3; as many as the run's classes: every probability)",
  },
  ...PREDICT_SET_FLAGS,
};

const IMAGE = /\.(png|jpe?g)$/i;

/** Whether a path is a folder (a broken link is not: reading it says what is wrong). */
function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export async function predict(args: readonly string[], out: Out): Promise<number> {
  const { flags, positional } = parseArgs(args, PREDICT_FLAGS);
  if (wantsSets(flags)) return await predictSets(positional, flags, out);
  const [dir, ...inputs] = positional;
  if (!dir || inputs.length === 0)
    throw new UsageError('predict needs a run and images: fmgpu predict RUN image.png [...] (or --test N, --csv FILE)');
  const run = openRun(dir);
  const { ir } = run;
  const { h, w, c } = ir.input;
  if (c !== 1 && c !== 3)
    throw new UsageError(`${dir}: predict turns photos into grey or RGB, this model takes ${h}x${w}x${c}`);
  const files: string[] = [];
  for (const p of inputs) {
    if (!existsSync(p)) throw new UsageError(`${p}: no such file`);
    // One push per file, not push(...list): a folder of 200,000 images would overflow the stack.
    // Folders inside it are skipped, even one named like an image (x.png/).
    if (!statSync(p).isDirectory()) files.push(p);
    // Hidden files (macOS's ._ files beside each image) are not images.
    else
      for (const f of readdirSync(p)
        .filter((f) => IMAGE.test(f) && !f.startsWith('.'))
        .sort())
        if (!isDirectory(join(p, f))) files.push(join(p, f));
  }
  if (files.length === 0) throw new UsageError(`no PNG or JPEG images in ${inputs.join(', ')}`);
  if (c === 3 && flags.invert !== undefined)
    throw new UsageError(
      `--${flags.invert ? '' : 'no-'}invert is for grey models: ${dir} takes colour photos as they are`,
    );
  const invert = flags.invert === undefined ? 'auto' : (flags.invert as boolean);
  // Every image is decoded (and every bad one refused) before the GPU is touched.
  const fashion = h === 28 && w === 28 && c === 1;
  const form = fashion ? runForm(run) : null;
  const prepared = files.map((f) => (form ? preparePhotoFile(f, form, invert) : resizePhotoFile(f, ir.input, invert)));
  if (flags['save-input'] !== undefined) saveInputs(String(flags['save-input']), prepared);
  const gpu = await openCliGpu(flags.adapter ? String(flags.adapter) : undefined);
  const t = new Trainer(gpu, ir, 0);
  try {
    t.params.load(run.weights, run.weightsFile);
    const probs = await photoProbabilities(t, run, prepared);
    const names = runClasses(run, t.classes);
    prepared.forEach((p, i) => {
      const top = topClasses(probs, i, t.classes, names, topCount(flags));
      for (const line of photoLines(p, top, flags.json === true)) out.log(line);
    });
    return 0;
  } finally {
    t.release();
    gpu.destroy();
  }
}

/**
 * The class probabilities [n, classes] of prepared photos: 28×28 grey ones as they are; resized ones
 * as bytes through the run's test-set path (its per-channel normalisation and tta, as eval and
 * predict --test apply them).
 */
async function photoProbabilities(
  t: Trainer,
  run: OpenRun,
  photos: readonly (PreparedPhoto | ResizedPhotoFile)[],
): Promise<Float32Array> {
  const px = t.ir.input.h * t.ir.input.w * t.ir.input.c;
  if (!photos.every((p) => 'bytes' in p)) {
    const x = new Float32Array(photos.length * px);
    for (const [i, p] of photos.entries()) x.set((p as PreparedPhoto).pixels, i * px);
    return t.predict(x, photos.length, undefined, t.ir.train.tta);
  }
  const images = new Uint8Array(photos.length * px);
  for (const [i, p] of photos.entries()) images.set(p.bytes, i * px);
  const { h, w, c } = t.ir.input;
  const ds: Dataset = {
    images,
    labels: new Uint8Array(photos.length),
    n: photos.length,
    rows: h,
    cols: w,
    channels: c,
  };
  return t.probabilities(runNormalized(run, ds), { tta: t.ir.train.tta });
}
