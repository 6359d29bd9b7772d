// The fmgpu command. Exit codes: 0 success, 1 runtime failure, 2 usage or input error, 130 after
// Ctrl-C. Errors go to stderr as one line `fmgpu: error: …` (language errors in their
// FILE:LINE:COL form with the excerpt); stack traces only with --debug. bin/fmgpu.js runs this in
// a child process whose stderr it filters (see there); --verbose runs it in bin/fmgpu.js itself.
import { UsageError, flagHelp } from './args.ts';
import { VERSION, reportError } from './common.ts';
import type { Out } from './progress.ts';
import { suggest } from '../../dsl/errors.ts';
import { train, TRAIN_FLAGS } from './train.ts';
import { SUMMARY_FLAGS, summary } from './summary.ts';
import { evaluate, EVAL_FLAGS } from './eval.ts';
import { predict, PREDICT_FLAGS } from './predict.ts';
import { serve, SERVE_HELP } from './serve.ts';
import { reportCommand, REPORT_FLAGS } from './report.ts';
import { exportCommand, EXPORT_FLAGS, EXPORT_HELP } from './export.ts';

const HELP = `fmgpu ${VERSION}: train convolutional networks on the GPU through WebGPU

usage: fmgpu COMMAND [options]

start here: fmgpu train examples/quick.net   (from the repository: Fashion-MNIST, about a minute on a CPU)

commands:
  train model.net      train a network, checkpoint every epoch, evaluate on the test set
  eval RUN [RUN ...]   test loss, accuracy, confusion matrix, classification report (several runs: ensemble)
                       (on the run's own test set unless --data or --test-csv say otherwise)
  predict RUN IMAGE... top-3 classes (--top N) for PNG or JPEG images (a directory: every image in it)
                       (--test N: test images by index; --csv FILE --out F.csv: a Kaggle submission)
  summary model.net    check a .net file and print its Keras-style summary (no GPU; --cost DEVICE: predicted speed)
  report RUN           (re)write RUN/report.html: curves, confusion matrix, test images, PCA
  export RUN           the trained network as an ONNX model for ONNX Runtime (-o FILE.onnx; no GPU)
  serve                the training page on a local web server

options of every command:
  --debug              stack traces on errors
  --verbose            also the notes the WebGPU library (Dawn) prints itself, which fmgpu hides

  fmgpu COMMAND --help   the command's options (or fmgpu help COMMAND)
  fmgpu --version

The .net language: docs/language.md.
Exit codes: 0 success, 1 runtime failure, 2 usage or input error, 130 interrupted.`;

const TRAIN_HELP = `usage: fmgpu train model.net [options]

Flags override the file's train settings. Its true/false ones (nesterov, tta) are switches, as on every
command: --tta turns one on, --no-tta off (--tta=false says the same).`;

const EVAL_HELP = `usage: fmgpu eval RUN [RUN ...] [options]

With several runs, also the ensemble by averaged probabilities and by majority vote.`;

const PREDICT_HELP = `usage: fmgpu predict RUN IMAGE [IMAGE ...] [options]
       fmgpu predict RUN --test 5,8,10-19        test images by index (the run's own test set)
       fmgpu predict RUN --csv FILE [--out predictions.csv]   a Kaggle submission: id,label,probabilities

Photos are brought to the form of the run's training images, and each gets a line saying what was
done. Fashion-MNIST's form (light items on black, the item's longer side 28 pixels, centred): EXIF
orientation applied, the background estimated from the border and levelled to black, the item
cropped to its bounding box, scaled and centred, dark items on light backgrounds inverted. Runs
trained on other 28x28x1 data: grayscale, the whole picture fitted to 28x28, inverted if the border
is light. Runs of another shape (colour, such as CIFAR-10's 32x32x3, or another size): the whole
picture resized to the run's HxW (stretched), RGB for colour runs (grey ones as above), normalised as
the run's test set is (its per-channel mean and std): "photo 640×480 RGB → 32×32 RGB".`;

const REPORT_HELP = `usage: fmgpu report RUN [--data DIR | --test-csv FILE] [--out FILE]

Writes a self-contained page (nothing loaded from the network): accuracy and loss curves, the
confusion matrix, per-class metrics, test images with predictions (mistakes first) and a PCA of the
penultimate layer. Uses the GPU for the predictions. The test set is the run's own (its --test-csv
or --data, as fmgpu eval) unless one is given; the first line names it.`;

/** Commands as Keras and PyTorch scripts name the step: fmgpu's command. */
const COMMAND_ALIASES: Readonly<Record<string, string>> = { fit: 'train', evaluate: 'eval', test: 'eval' };

const COMMAND_HELP = new Map([
  ['train', `${TRAIN_HELP}\n\n${flagHelp(TRAIN_FLAGS)}`],
  ['eval', `${EVAL_HELP}\n\n${flagHelp(EVAL_FLAGS)}`],
  ['predict', `${PREDICT_HELP}\n\n${flagHelp(PREDICT_FLAGS)}`],
  [
    'summary',
    'usage: fmgpu summary model.net [--cost DEVICE [--batch N]] [--fusions]\n\n' +
      'Checks the file and prints the Keras-style summary and the multiply-adds per image; exit 2 with the\n' +
      'errors otherwise. --fusions lists the kernels the planner fuses in a training step and at inference\n' +
      '(with --cost, also where that device gathers the batch, its conv passes by Winograd, its narrow weight\n' +
      'gradients, its pairs, the gradients completed in a dX, the batch norms taking their channels whole,\n' +
      'where the loss runs and what the update adds up as it ends the step).\n' +
      'No GPU is used.\n\n' +
      flagHelp(SUMMARY_FLAGS),
  ],
  ['report', `${REPORT_HELP}\n\n${flagHelp(REPORT_FLAGS)}`],
  ['export', `${EXPORT_HELP}\n\n${flagHelp(EXPORT_FLAGS)}`],
  ['serve', SERVE_HELP.trimEnd()],
]);

/** Options every command takes, wherever they stand on the command line. */
const GLOBAL = ['--debug', '--verbose'];

function terminal(): Out {
  const tty = process.stdout.isTTY === true;
  return {
    log: (line) => void process.stdout.write(`${line}\n`),
    err: (line) => void process.stderr.write(`${line}\n`),
    status: tty
      ? (line) => void process.stdout.write(`\r\x1b[2K${line.slice(0, (process.stdout.columns ?? 120) - 1)}`)
      : null,
  };
}

export async function run(argv: readonly string[], out: Out = terminal()): Promise<number> {
  const debug = argv.includes('--debug');
  const words = argv.filter((a) => !GLOBAL.includes(a));
  // `fmgpu help CMD` is `fmgpu CMD --help`; `fmgpu help` alone, the general help.
  const [command, ...rest] = words[0] === 'help' && words.length > 1 ? [...words.slice(1), '--help'] : words;
  try {
    if (!command) {
      // A bare `fmgpu` is a usage error: the help goes to stderr, stdout stays empty.
      out.err(HELP);
      return 2;
    }
    if (command === '--help' || command === '-h' || command === 'help') {
      out.log(HELP);
      return 0;
    }
    if (command === '--version' || command === '-V') {
      out.log(VERSION);
      return 0;
    }
    const help = COMMAND_HELP.get(command);
    if (help === undefined) {
      const commands = [...COMMAND_HELP.keys()];
      const near = COMMAND_ALIASES[command] ?? suggest(command, commands);
      const mean = near ? `did you mean "${near}"? ` : '';
      throw new UsageError(`unknown command "${command}" (${mean}commands: ${commands.join(', ')})`);
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      out.log(help);
      return 0;
    }
    return await dispatch(command, rest, out);
  } catch (e) {
    return reportError(e, out, debug);
  }
}

async function dispatch(command: string, args: string[], out: Out): Promise<number> {
  switch (command) {
    case 'train':
      return await train(args, out);
    case 'eval':
      return await evaluate(args, out);
    case 'predict':
      return await predict(args, out);
    case 'summary':
      return summary(args, out);
    case 'serve':
      return await serve(args);
    case 'report':
      return await reportCommand(args, out);
    case 'export':
      return exportCommand(args, out);
  }
  return 2;
}

// `fmgpu … | head` closes stdout early: that is not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

// Run by bin/fmgpu.js, with a channel to it: should it die (SIGKILL, a crash), go the same way at
// once, as one process would have. The channel alone does not keep this process alive.
if (process.channel) {
  process.channel.unref();
  process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
}

const code = await run(process.argv.slice(2));
process.exitCode = code;
// Dawn keeps the event loop alive while a GPU object is referenced; every command releases its
// device, but exit explicitly so that nothing else can hold the process. Once stdout and stderr
// have drained, though: a pipe takes 64 KiB at a time, and exiting sooner cuts long output short.
let streams = 2;
const drained = (): void => void (--streams === 0 && process.exit(code));
process.stdout.write('', drained);
process.stderr.write('', drained);
