// `fmgpu summary model.net`: the Keras-style table, no GPU.
import { parseNet, summarize } from '../../dsl/index.ts';
import { UsageError } from './args.ts';
import { readSource } from './common.ts';
import type { Out } from './progress.ts';

export function summary(args: readonly string[], out: Out): number {
  const files = args.filter((a) => !a.startsWith('--'));
  const flags = args.filter((a) => a.startsWith('--'));
  if (flags.length) throw new UsageError(`unknown option ${flags[0]}`);
  if (files.length !== 1)
    throw new UsageError(
      files.length
        ? `summary takes one file, not ${files.length}`
        : 'summary needs a model file: fmgpu summary model.net',
    );
  const file = files[0]!;
  out.log(summarize(parseNet(readSource(file), file)));
  return 0;
}
