// Time to accuracy: trains a .net model with its own train settings on the whole training set (no
// validation split: the test set is evaluated after every epoch, outside the timed training) and
// reports training seconds until the test accuracy first reaches each target.
//   node dist/bench/accuracy.js [model.net] [--epochs N] [--seeds 1,2] [--targets 92.5,93] [--json] [--subset N]
//                               [--state DIR] [--budget SECONDS]
// With --state, every epoch ends with a checkpoint in DIR/<model>-s<seed>/ (weights, optimizer and
// averaging state, step, training seconds, the epochs' scores), and a second invocation continues
// from it; --budget stops after the epoch during which the budget ran out (exit 3, "run again"),
// so that runs longer than one time-limited command finish over several.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { openNodeGpu } from '../src/node/gpu.ts';
import { adapterName } from '../src/gpu/device.ts';
import { parseNet } from '../dsl/index.ts';
import { Trainer } from '../src/train/trainer.ts';
import { loadFashionMnist } from '../src/node/data.ts';
import { benchArgs } from './common.ts';
import { optimizerConfig } from '../src/train/optimizer.ts';
import { decodeSafetensors, encodeSafetensors } from '../src/model/safetensors.ts';
import { writeFileAtomic } from '../src/node/rundir.ts';

interface Row {
  bench: 'accuracy';
  model: string;
  seed: number;
  epoch: number;
  train_seconds: number;
  loss: number;
  test_accuracy: number;
}
interface Saved {
  step: number;
  seconds: number;
  rows: Row[];
}

const { opt, file, json } = benchArgs();
const gpu = await openNodeGpu();
const ir = parseNet(readFileSync(file, 'utf8'), file);
const c = ir.train;
const epochs = Number(opt('epochs', String(c.epochs)));
const targets = opt('targets', '92.5,93').split(',').map(Number);
// --subset N: the first N training images (smoke runs; the numbers are then not comparable).
const { train, test } = loadFashionMnist(opt('data', '/usr/share/datasets/fashion-mnist'), {
  subset: Number(opt('subset', '0')) || undefined,
});
const date = new Date().toISOString().slice(0, 10);
const stateDir = opt('state', '');
const deadline = Date.now() + Number(opt('budget', 'Infinity')) * 1000;
let outOfTime = false;
if (!json)
  console.log(
    `adapter: ${adapterName(gpu.adapter)}   model: ${file}   date: ${date}   ` +
      `${epochs} epochs, batch ${c.batch}, ${c.optimizer} lr ${c.lr}, ${c.schedule}`,
  );
for (const seed of opt('seeds', String(c.seed)).split(',').map(Number)) {
  if (outOfTime) break;
  const t = new Trainer(gpu, ir, seed);
  const dir = stateDir ? join(stateDir, `${basename(file, '.net')}-s${seed}`) : '';
  const saved: Saved =
    dir && existsSync(join(dir, 'state.json'))
      ? JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'))
      : { step: 0, seconds: 0, rows: [] };
  t.prepareOptimizer(optimizerConfig(c));
  if (saved.step > 0) {
    t.params.load(
      decodeSafetensors(readFileSync(join(dir, 'weights.safetensors')), join(dir, 'weights.safetensors')).tensors,
    );
    t.loadStateTensors(
      decodeSafetensors(readFileSync(join(dir, 'state.safetensors')), join(dir, 'state.safetensors')).tensors,
    );
  }
  let seconds = saved.seconds;
  const rows = [...saved.rows];
  const print = (row: Row): void =>
    console.log(
      json
        ? JSON.stringify(row)
        : `seed ${seed} epoch ${String(row.epoch).padStart(3)}  ${row.train_seconds.toFixed(1).padStart(7)} s  ` +
            `loss ${row.loss.toFixed(4)}  test ${row.test_accuracy.toFixed(2)}%`,
    );
  rows.forEach(print);
  if (rows.length < epochs) {
    await t.fit(train, null, {
      epochs,
      batch: c.batch,
      lr: c.lr,
      optimizer: optimizerConfig(c),
      schedule: c.schedule,
      labelSmoothing: c.labelSmoothing,
      seed,
      augment: ir.augment,
      ema: c.ema,
      progressEvery: 1e9,
      initialStep: saved.step,
      onEpoch: async (log) => {
        seconds += log.seconds;
        // Scored as the CLI scores the finished model: the averaged weights (EMA), test-time augmentation.
        const score = (): ReturnType<Trainer['evaluate']> => t.evaluate(test, undefined, { tta: c.tta });
        const r = c.ema ? await t.withEmaWeights(score) : await score();
        const row: Row = {
          bench: 'accuracy',
          model: file,
          seed,
          epoch: log.epoch,
          train_seconds: +seconds.toFixed(2),
          loss: +log.loss.toFixed(4),
          test_accuracy: +(r.accuracy * 100).toFixed(2),
        };
        rows.push(row);
        print(row);
        if (dir) {
          mkdirSync(dir, { recursive: true });
          writeFileAtomic(join(dir, 'weights.safetensors'), encodeSafetensors(await t.params.read()));
          writeFileAtomic(join(dir, 'state.safetensors'), encodeSafetensors(await t.stateTensors()));
          writeFileAtomic(
            join(dir, 'state.json'),
            JSON.stringify({ step: await t.step(), seconds, rows } satisfies Saved),
          );
        }
        if (Date.now() >= deadline && log.epoch < epochs) {
          outOfTime = true;
          return 'stop';
        }
        return undefined;
      },
    });
  }
  t.release();
  if (outOfTime) {
    console.error(
      `fmgpu bench: the budget ran out after epoch ${rows.length} of ${epochs} of seed ${seed}` +
        (dir ? `; run the same command again to continue from ${dir}` : ''),
    );
    break;
  }
  // With EMA the score already is the averaged weights', which fit leaves in place at the end.
  const reached = (x: number): Row | undefined => rows.find((r) => r.test_accuracy >= x);
  const final = rows.at(-1)?.test_accuracy ?? 0;
  const summary = {
    bench: 'accuracy-summary',
    model: file,
    seed,
    epochs,
    train_seconds: +seconds.toFixed(2),
    final_test_accuracy: final,
    ...Object.fromEntries(targets.map((x) => [`seconds_to_${x}`, reached(x)?.train_seconds ?? null])),
  };
  if (json) console.log(JSON.stringify(summary));
  else
    console.log(
      `seed ${seed}: final ${final.toFixed(2)}% after ${seconds.toFixed(1)} s; ` +
        targets
          .map((x) => {
            const r = reached(x);
            return `${x}%: ${r ? `${r.train_seconds.toFixed(1)} s (epoch ${r.epoch})` : 'not reached'}`;
          })
          .join(', '),
    );
}
gpu.destroy();
if (outOfTime) process.exit(3);
