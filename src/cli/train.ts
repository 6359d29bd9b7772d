// `fmgpu train model.net`: check everything (train-job.ts), claim the run directory, open the GPU,
// then run the session (train-session.ts): train with progress, checkpoint every epoch, evaluate
// on the test set, leave a run directory behind. Every refusal (flags, model, data, a resume that
// could not continue exactly, a run directory in use or not ours) happens before the GPU is
// opened and exits 2.
import { Trainer } from '../train/trainer.ts';
import type { Gpu } from '../gpu/runtime.ts';
import type { RunDir } from '../node/rundir.ts';
import type { Out } from './progress.ts';
import { checkDatasetFits } from '../data/batch.ts';
import { checkBatchFits, openCliGpu } from './common.ts';
import { claim, prepare, type Job } from './train-job.ts';
import { runSession, type TrainHooks } from './train-session.ts';
export { TRAIN_KEY, applyTrainFlags } from './common.ts';
export { TRAIN_FLAGS } from './train-job.ts';
export type { TrainHooks } from './train-session.ts';

export async function train(args: readonly string[], out: Out, hooks: TrainHooks = {}): Promise<number> {
  const job = prepare(args);
  const { run, forked } = claim(job);
  const { gpu, trainer } = await open(run, forked ? 'forked' : job.resume ? 'resumed' : 'new', job);
  try {
    return await runSession({ job, run, gpu, trainer, out }, hooks, forked);
  } finally {
    trainer.release();
    gpu.destroy();
    run.release();
  }
}

/**
 * The GPU and a trainer on it. Buffers over the adapter's limits are refused before anything is
 * printed or allocated: the datasets' images and the training batch's (evaluation shrinks its chunks
 * until they fit). On a
 * failure the run directory is given back: a new one removed (a fork's copies with it), a resumed one left as it was.
 */
async function open(
  run: RunDir,
  kind: 'new' | 'forked' | 'resumed',
  job: Job,
): Promise<{ gpu: Gpu; trainer: Trainer }> {
  const giveBack = (): void => (kind === 'resumed' ? run.release() : kind === 'forked' ? run.discard() : run.abandon());
  let gpu: Gpu;
  try {
    gpu = await openCliGpu(job.flags.adapter ? String(job.flags.adapter) : undefined);
  } catch (e) {
    giveBack();
    throw e;
  }
  try {
    checkDatasetFits(job.data.train, gpu.limits, `the training set (${job.data.from})`);
    if (job.data.val) checkDatasetFits(job.data.val, gpu.limits, 'the validation set');
    checkDatasetFits(job.data.test, gpu.limits, `the test set (${job.data.from})`);
    checkBatchFits(job.ir, Math.min(job.ir.train.batch, job.data.train.n), gpu.limits);
    return { gpu, trainer: new Trainer(gpu, job.ir, job.ir.train.seed) };
  } catch (e) {
    gpu.destroy();
    giveBack();
    throw e;
  }
}
