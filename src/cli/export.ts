// `fmgpu export RUN [-o FILE.onnx]`: the trained network as an ONNX model (src/model/onnx.ts), with
// the weights `fmgpu eval` scores, for ONNX Runtime and the servers built on it. No GPU is used.
import { dirname, join, resolve } from 'node:path';
import { shapeSize } from '../../dsl/index.ts';
import { INPUT_NAME, OPSET, OUTPUT_NAME, onnxModel } from '../model/onnx.ts';
import { encodeOnnx } from '../node/onnx.ts';
import { RunDir, writeFileAtomic } from '../node/rundir.ts';
import { UsageError, parseArgs, type FlagSpec } from './args.ts';
import { VERSION, checkOutFile, ONNX_FILE, openRun, runClasses, runDirFiles } from './common.ts';
import type { Out } from './progress.ts';

export const EXPORT_FLAGS: Record<string, FlagSpec> = {
  out: { type: 'string', meta: 'FILE', help: 'where to write the model (default RUN/model.onnx); -o FILE is the same' },
  tta: {
    type: 'bool',
    help: "average each image's probabilities with its mirror image's inside the model (default: as eval does)",
  },
  json: { type: 'bool', help: 'one JSON object on stdout: the file, its size, input and output' },
};

export const EXPORT_HELP = `usage: fmgpu export RUN [-o FILE.onnx] [options]

Writes the network of a run as an ONNX model (opset ${OPSET}) with the weights \`fmgpu eval\` scores:
input "${INPUT_NAME}" float32 [N, C, H, W] of pixel / 255, output "${OUTPUT_NAME}" [N, classes]
(the softmax included), any batch size N. A colour run's per-channel normalisation is applied
inside the model. The metadata holds the class names, the .net source and the fmgpu version.
Run it with ONNX Runtime: see README.md. No GPU is used.`;

/** `-o FILE` as `--out FILE` (the flag parser takes long options only). */
const longOptions = (args: readonly string[]): string[] => {
  const end = args.indexOf('--');
  return args.map((a, i) => (a === '-o' && (end < 0 || i < end) ? '--out' : a));
};

export function exportCommand(args: readonly string[], out: Out): number {
  const { flags, positional } = parseArgs(longOptions(args), EXPORT_FLAGS);
  const [dir, ...more] = positional;
  if (dir === undefined || more.length > 0)
    throw new UsageError('export takes one run directory: fmgpu export RUN [-o FILE.onnx]');
  const run = openRun(dir);
  const { ir } = run;
  const classes = shapeSize(ir.output);
  const classNames = runClasses(run, classes);
  const tta = flags.tta === undefined ? ir.train.tta : !!flags.tta; // the run's own, as eval decides
  const { normalize } = run.json;
  const model = onnxModel({ ir, weights: run.weights, classNames, version: VERSION, tta, normalize });
  const file = flags.out === undefined ? join(dir, 'model.onnx') : String(flags.out);
  const parent = flags.out === undefined ? undefined : dirname(resolve(file));
  checkOutFile(file, {
    folder: `directory: give the model's file name, e.g. ${join(file, 'model.onnx')}`,
    kind: ONNX_FILE,
    parent,
    keep: () => runDirFiles(dir, 'model.onnx'),
  });
  const bytes = encodeOnnx(model);
  write(dir, flags.out === undefined ? null : file, bytes);
  const { c, h, w } = ir.input;
  const input = `${INPUT_NAME} float32 [N, ${c}, ${h}, ${w}]`;
  const output = `${OUTPUT_NAME} [N, ${classes}]`;
  if (flags.json)
    out.log(JSON.stringify({ file, bytes: bytes.length, opset: OPSET, input, output, tta, weights: run.weightsFile }));
  else
    out.log(
      `${file}: ONNX opset ${OPSET}, ${bytes.length.toLocaleString('en-US')} bytes; input ${input} (pixel / 255), ` +
        `output ${output}${tta ? ', each image averaged with its mirror image' : ''}`,
    );
  return 0;
}

/** Into the run under its lock (not while fmgpu train writes it), or to the file --out names. */
function write(dir: string, out: string | null, bytes: Uint8Array): void {
  if (out !== null) {
    writeFileAtomic(out, bytes);
    return;
  }
  const run = RunDir.open(dir);
  try {
    run.write('model.onnx', bytes);
  } finally {
    run.release();
  }
}
