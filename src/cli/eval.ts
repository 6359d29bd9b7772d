// `fmgpu eval RUN [RUN …]`: test loss and accuracy, confusion matrix, classification report; with
// several runs, the ensemble by averaged probabilities and by majority vote.
import { Trainer, type EvalResult } from '../train/trainer.ts';
import { loadFashionMnistTest, DEFAULT_DATA_DIR, loadCsv } from '../node/data.ts';
import { readRun } from '../node/rundir.ts';
import {
  argmaxRow,
  classificationReport,
  confusionTable,
  metricsFromProbabilities,
  perClass,
} from '../train/metrics.ts';
import type { Dataset } from '../data/dataset.ts';
import { NUM_CLASSES } from '../data/classes.ts';
import { UsageError, parseArgs, type FlagSpec } from './args.ts';
import { checkWeights, openCliGpu, runModel } from './common.ts';
import type { Out } from './progress.ts';

export const EVAL_FLAGS: Record<string, FlagSpec> = {
  data: { type: 'string', meta: 'DIR', help: `Fashion-MNIST idx files (default ${DEFAULT_DATA_DIR})` },
  'test-csv': { type: 'string', meta: 'FILE', help: "test data in Kaggle's CSV form instead" },
  tta: {
    type: 'bool',
    help: "average each image's prediction with its mirror image's (--no-tta: not; default: as the run was trained)",
  },
  adapter: { type: 'string', meta: 'NAME', help: 'pick the WebGPU adapter whose name contains NAME' },
  json: { type: 'bool', help: 'one JSON object per run (and per ensemble) on stdout' },
};

/** Every test image as the network's input: pixel/255, NCHW. */
export function normalised(ds: Dataset): Float32Array {
  return Float32Array.from(ds.images, (v) => v / 255);
}

function confusionOf(pred: ArrayLike<number>, labels: ArrayLike<number>): Uint32Array {
  const c = new Uint32Array(NUM_CLASSES * NUM_CLASSES);
  for (let i = 0; i < labels.length; i++) c[labels[i]! * NUM_CLASSES + pred[i]!]!++;
  return c;
}

export async function evaluate(args: readonly string[], out: Out): Promise<number> {
  const { flags, positional } = parseArgs(args, EVAL_FLAGS);
  if (positional.length === 0) throw new UsageError('eval needs a run directory: fmgpu eval RUN [RUN ...]');
  if (flags.data && flags['test-csv'])
    throw new UsageError('--data and --test-csv are two sources of test data: give one');
  const runs = positional.map((dir) => {
    const run = readRun(dir);
    const ir = runModel(dir);
    checkWeights(ir, run.weights, run.weightsFile);
    return { dir, run, ir };
  });
  const test = flags['test-csv']
    ? loadCsv(String(flags['test-csv']))
    : loadFashionMnistTest(String(flags.data ?? DEFAULT_DATA_DIR));
  if (test.n === 0)
    throw new UsageError(`the test set has no images (${flags['test-csv'] ?? flags.data ?? DEFAULT_DATA_DIR})`);
  for (const { dir, ir } of runs) {
    if (ir.input.h !== test.rows || ir.input.w !== test.cols || ir.input.c !== 1)
      throw new UsageError(
        `${dir}: the model's input is ${ir.input.h}x${ir.input.w}x${ir.input.c} but the test images are ${test.rows}x${test.cols}x1`,
      );
  }
  const gpu = await openCliGpu(flags.adapter ? String(flags.adapter) : undefined);
  const probs: Float32Array[] = [];
  try {
    for (const { dir, run, ir } of runs) {
      const t = new Trainer(gpu, ir, 0);
      try {
        t.params.load(run.weights, run.weightsFile);
        const tta = flags.tta === undefined ? ir.train.tta : !!flags.tta; // the run's own: its file and flags
        let ev: EvalResult;
        if (tta || runs.length > 1) {
          const p = await t.probabilities(test, { tta });
          probs.push(p);
          ev = { ...metricsFromProbabilities(p, test.labels), n: test.n };
        } else ev = await t.evaluate(test);
        if (flags.json)
          out.log(
            JSON.stringify({
              run: dir,
              tta,
              test_loss: ev.loss,
              test_accuracy: ev.accuracy,
              n: ev.n,
              per_class: perClass(ev.confusion),
              confusion: Array.from(ev.confusion),
            }),
          );
        else {
          out.log(
            `${dir}: test loss ${ev.loss.toFixed(4)}  accuracy ${(ev.accuracy * 100).toFixed(2)}% (${ev.n.toLocaleString('en-US')} images${tta ? ', each averaged with its mirror image' : ''})\n`,
          );
          out.log(confusionTable(ev.confusion));
          out.log('');
          out.log(classificationReport(ev.confusion));
          out.log('');
        }
      } finally {
        t.release();
      }
    }
    if (probs.length > 1) {
      const n = test.n;
      const mean = new Float32Array(n * NUM_CLASSES);
      for (const p of probs) for (let i = 0; i < p.length; i++) mean[i] = mean[i]! + p[i]! / probs.length;
      const byVote = Array.from({ length: n }, (_, i) => {
        const votes = new Array<number>(NUM_CLASSES).fill(0);
        for (const p of probs) votes[argmaxRow(p, i)]!++;
        // Ties go to the class with the higher mean probability.
        let best = 0;
        for (let c = 1; c < NUM_CLASSES; c++)
          if (
            votes[c]! > votes[best]! ||
            (votes[c] === votes[best] && mean[i * NUM_CLASSES + c]! > mean[i * NUM_CLASSES + best]!)
          )
            best = c;
        return best;
      });
      const averaged = metricsFromProbabilities(mean, test.labels);
      const voted = {
        loss: undefined,
        confusion: confusionOf(byVote, test.labels),
        accuracy: byVote.filter((p, i) => p === test.labels[i]).length / n,
      };
      for (const [name, { loss, confusion: conf, accuracy: acc }] of [
        ['averaged probabilities', averaged],
        ['majority vote', voted],
      ] as const) {
        if (flags.json)
          out.log(
            JSON.stringify({
              ensemble: name,
              runs: runs.length,
              test_loss: loss,
              test_accuracy: acc,
              n,
              confusion: Array.from(conf),
            }),
          );
        else {
          out.log(
            `ensemble of ${runs.length} runs, ${name}: ${loss === undefined ? '' : `test loss ${loss.toFixed(4)}  `}accuracy ${(acc * 100).toFixed(2)}%\n`,
          );
          out.log(classificationReport(conf));
          out.log('');
        }
      }
    }
    return 0;
  } finally {
    gpu.destroy();
  }
}
