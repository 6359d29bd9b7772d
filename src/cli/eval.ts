// `fmgpu eval RUN [RUN …]`: test loss and accuracy, confusion matrix, classification report; with
// several runs, the ensemble by averaged probabilities and by majority vote. The test set is the
// runs' own (test-set.ts) unless --data or --test-csv give one, and its first line names it.
import { checkpointPosition } from '../node/rundir.ts';
import { Trainer, type EvalResult } from '../train/trainer.ts';
import { DEFAULT_DATA_DIR } from '../node/data.ts';
import {
  argmaxRow,
  classificationReport,
  confusionMatrix,
  confusionTable,
  metricsFromProbabilities,
  classesOf,
  perClass,
} from '../train/metrics.ts';
import { channelsOf, type Dataset } from '../data/dataset.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { UsageError, parseArgs, type FlagSpec, type Flags } from './args.ts';
import { openCliGpu, openRun, runClasses, runNormalized, type OpenRun } from './common.ts';
import type { Out } from './progress.ts';
import { testSetFor, testSetLine, type TestSet } from './test-set.ts';

export const EVAL_FLAGS: Record<string, FlagSpec> = {
  data: {
    type: 'string',
    meta: 'DIR',
    help:
      'idx files, CIFAR batches or class folders of images ' +
      `(default: the run's own test set; without one, ${DEFAULT_DATA_DIR})`,
  },
  'test-csv': { type: 'string', meta: 'FILE', help: "test data in Kaggle's CSV form (default: the run's own)" },
  tta: {
    type: 'bool',
    help: "average each image's prediction with its mirror image's (--no-tta: not; default: as the run was trained)",
  },
  adapter: { type: 'string', meta: 'NAME', help: 'pick the WebGPU adapter whose name contains NAME' },
  json: { type: 'bool', help: 'one JSON object per run (and per ensemble) on stdout' },
};

export async function evaluate(args: readonly string[], out: Out): Promise<number> {
  const { flags, positional } = parseArgs(args, EVAL_FLAGS);
  const { runs, set } = prepare(flags, positional);
  const test = set.ds;
  const gpu = await openCliGpu(flags.adapter ? String(flags.adapter) : undefined);
  try {
    if (!flags.json) out.log(testSetLine(set));
    // Several runs are scored by their probabilities, which the ensembles then combine.
    const probs: Float32Array[] = [];
    for (const r of runs) {
      const tta = flags.tta === undefined ? r.ir.train.tta : !!flags.tta; // the run's own: its file and flags
      const ev = await score(gpu, r, test, tta, runs.length > 1 ? probs : null);
      report(out, flags, r, { run: r.dir, test_set: set.from, tta }, ev);
    }
    if (probs.length > 1 && runs[0]) ensembles(out, flags, probs, test.labels, runs[0]);
    return 0;
  } finally {
    gpu.destroy();
  }
}

/** The runs and the test set, checked against each other before the GPU is opened. */
function prepare(flags: Flags, positional: readonly string[]): { runs: OpenRun[]; set: TestSet } {
  if (positional.length === 0) throw new UsageError('eval needs a run directory: fmgpu eval RUN [RUN ...]');
  if (flags.data && flags['test-csv'])
    throw new UsageError('--data and --test-csv are two sources of test data: give one');
  const runs = positional.map((dir) => openRun(dir));
  const set = testSetFor(runs, flags);
  const test = set.ds;
  for (const { dir, ir } of runs) {
    const { h, w, c } = ir.input;
    if (h !== test.rows || w !== test.cols || c !== channelsOf(test))
      throw new UsageError(
        `${dir}: the model's input is ${h}x${w}x${c} ` +
          `but the test images are ${test.rows}x${test.cols}x${channelsOf(test)}`,
      );
  }
  return { runs, set };
}

/** One run's metrics; its probabilities go to `probs` when there is an ensemble to make (or tta to average). */
async function score(
  gpu: Gpu,
  r: OpenRun,
  given: Dataset,
  tta: boolean,
  probs: Float32Array[] | null,
): Promise<EvalResult> {
  const test = runNormalized(r, given);
  const t = new Trainer(gpu, r.ir, 0);
  try {
    t.params.load(r.weights, r.weightsFile);
    if (!tta && !probs) return await t.evaluate(test);
    const p = await t.probabilities(test, { tta });
    probs?.push(p);
    return { ...metricsFromProbabilities(p, test.labels, t.classes), n: test.n };
  } finally {
    t.release();
  }
}

function report(
  out: Out,
  flags: Flags,
  r: OpenRun,
  what: { run: string; test_set: string; tta: boolean },
  ev: EvalResult,
): void {
  const names = runClasses(r, classesOf(ev.confusion));
  if (flags.json) {
    const per_class = perClass(ev.confusion, undefined, names);
    const fields = { test_loss: ev.loss, test_accuracy: ev.accuracy, n: ev.n, per_class };
    out.log(JSON.stringify({ ...what, ...fields, confusion: Array.from(ev.confusion) }));
    return;
  }
  const images = `${ev.n.toLocaleString('en-US')} images${what.tta ? ', each averaged with its mirror image' : ''}`;
  const stopped = stoppedNote(r);
  if (stopped) out.log(`${what.run}: ${stopped}`);
  out.log(`${what.run}: test loss ${ev.loss.toFixed(4)}  accuracy ${(ev.accuracy * 100).toFixed(2)}% (${images})\n`);
  out.log(confusionTable(ev.confusion, undefined, names));
  out.log('');
  out.log(classificationReport(ev.confusion, undefined, names));
  out.log('');
}

/** The ensembles of several runs: their averaged probabilities, and their majority vote. */
function ensembles(out: Out, flags: Flags, probs: Float32Array[], labels: Uint8Array, run: OpenRun): void {
  const [first] = probs;
  if (!first) return;
  const n = labels.length;
  const classes = first.length / n;
  const mean = new Float32Array(n * classes);
  for (const p of probs) for (let i = 0; i < p.length; i++) mean[i] = mean[i]! + p[i]! / probs.length;
  const averaged = metricsFromProbabilities(mean, labels, classes);
  const voted = { loss: undefined, ...confusionMatrix(majority(probs, mean, n, classes), labels, classes) };
  for (const [name, { loss, confusion, accuracy }] of [
    ['averaged probabilities', averaged],
    ['majority vote', voted],
  ] as const) {
    if (flags.json) {
      const fields = { runs: probs.length, test_loss: loss, test_accuracy: accuracy, n };
      out.log(JSON.stringify({ ensemble: name, ...fields, confusion: Array.from(confusion) }));
      continue;
    }
    const lossText = loss === undefined ? '' : `test loss ${loss.toFixed(4)}  `;
    out.log(`ensemble of ${probs.length} runs, ${name}: ${lossText}accuracy ${(accuracy * 100).toFixed(2)}%\n`);
    out.log(classificationReport(confusion, classes, runClasses(run, classes)));
    out.log('');
  }
}

/** Each image's class by the runs' votes; ties go to the class with the higher mean probability. */
function majority(probs: Float32Array[], mean: Float32Array, n: number, classes: number): number[] {
  return Array.from({ length: n }, (_, i) => {
    const votes = new Array<number>(classes).fill(0);
    for (const p of probs) votes[argmaxRow(p, i, classes)]!++;
    let best = 0;
    for (let c = 1; c < classes; c++) {
      const more = votes[c]! > votes[best]!;
      if (more || (votes[c] === votes[best] && mean[i * classes + c]! > mean[i * classes + best]!)) best = c;
    }
    return best;
  });
}

/** For a run stopped before its end: which weights of its checkpoint are scored, and where it stopped. */
function stoppedNote(r: OpenRun): string | null {
  if (!r.checkpoint) return null;
  const at = checkpointPosition(r.dir);
  const where = typeof at?.epoch === 'number' ? ` after epoch ${at.epoch} (step ${String(at.step)})` : '';
  const which = r.weightsFile.endsWith('best.safetensors')
    ? 'the best epoch’s weights, as its end would restore'
    : r.averaged
      ? 'its moving averages, as its end would'
      : 'its last weights';
  return `stopped before its end${where}: scored with its checkpoint, ${which}`;
}
