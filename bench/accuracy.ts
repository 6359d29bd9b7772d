// Time to accuracy: trains a .net model with its own train settings on the whole training set (no
// validation split: the test set is evaluated after every epoch, outside the timed training) and
// reports training seconds until the test accuracy first reaches each target.
//   node dist/bench/accuracy.js [model.net] [--epochs N] [--seeds 1,2] [--targets 92.5,93] [--json] [--subset N]
import { readFileSync } from 'node:fs';
import { openNodeGpu } from '../src/node/gpu.ts';
import { adapterName } from '../src/gpu/device.ts';
import { parseNet } from '../dsl/index.ts';
import { Trainer } from '../src/train/trainer.ts';
import { loadFashionMnist } from '../src/node/data.ts';
import { benchArgs } from './common.ts';
import { optimizerConfig } from '../src/train/optimizer.ts';

const { opt, file, json } = benchArgs();
const gpu = await openNodeGpu();
const ir = parseNet(readFileSync(file, 'utf8'), file);
const c = ir.train;
const epochs = Number(opt('epochs', String(c.epochs)));
const targets = opt('targets', '92.5,93').split(',').map(Number);
// --subset N: the first N training images (smoke runs; the numbers are then not comparable).
const { train, test } = loadFashionMnist(opt('data', '/usr/share/datasets/fashion-mnist'), { subset: Number(opt('subset', '0')) || undefined });
const date = new Date().toISOString().slice(0, 10);
if (!json) console.log(`adapter: ${adapterName(gpu.adapter)}   model: ${file}   date: ${date}   ${epochs} epochs, batch ${c.batch}, ${c.optimizer} lr ${c.lr}, ${c.schedule}`);
for (const seed of opt('seeds', String(c.seed)).split(',').map(Number)) {
  const t = new Trainer(gpu, ir, seed);
  let seconds = 0;
  const reached = new Map<number, { seconds: number; epoch: number }>();
  let last = 0;
  await t.fit(train, null, {
    epochs, batch: c.batch, lr: c.lr, optimizer: optimizerConfig(c),
    schedule: c.schedule, labelSmoothing: c.labelSmoothing, seed, augment: ir.augment, ema: c.ema, progressEvery: 1e9,
    onEpoch: async (log) => {
      seconds += log.seconds;
      // Scored as the CLI scores the finished model: the averaged weights (EMA), test-time augmentation.
      const score = (): ReturnType<Trainer['evaluate']> => t.evaluate(test, undefined, { tta: c.tta });
      const r = c.ema ? await t.withEmaWeights(score) : await score();
      last = r.accuracy;
      for (const x of targets) if (!reached.has(x) && r.accuracy * 100 >= x) reached.set(x, { seconds, epoch: log.epoch });
      const row = { bench: 'accuracy', model: file, seed, epoch: log.epoch, train_seconds: +seconds.toFixed(2), loss: +log.loss.toFixed(4), test_accuracy: +(r.accuracy * 100).toFixed(2) };
      if (json) console.log(JSON.stringify(row));
      else console.log(`seed ${seed} epoch ${String(log.epoch).padStart(3)}  ${seconds.toFixed(1).padStart(7)} s  loss ${log.loss.toFixed(4)}  test ${(r.accuracy * 100).toFixed(2)}%`);
    },
  });
  // With EMA the averaged weights replace the live ones when fit ends: that is the model's result.
  const final = c.ema ? (await t.evaluate(test, undefined, { tta: c.tta })).accuracy : last;
  const summary = { bench: 'accuracy-summary', model: file, seed, epochs, train_seconds: +seconds.toFixed(2), final_test_accuracy: +(final * 100).toFixed(2), ...Object.fromEntries(targets.map((x) => [`seconds_to_${x}`, reached.get(x)?.seconds ?? null])) };
  if (json) console.log(JSON.stringify(summary));
  else console.log(`seed ${seed}: final ${(final * 100).toFixed(2)}% after ${seconds.toFixed(1)} s; ${targets.map((x) => `${x}%: ${reached.has(x) ? `${reached.get(x)!.seconds.toFixed(1)} s (epoch ${reached.get(x)!.epoch})` : 'not reached'}`).join(', ')}`);
  t.release();
}
gpu.destroy();
