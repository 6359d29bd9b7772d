// The fmgpu command. Exit codes: 0 success, 1 runtime failure, 2 usage or input error, 130 after
// Ctrl-C. Errors go to stderr as one line `fmgpu: error: …` (language errors in their
// FILE:LINE:COL form with the excerpt); stack traces only with --debug.
import { UsageError, flagHelp } from './args.ts';
import { VERSION, reportError } from './common.ts';
import type { Out } from './progress.ts';
import { train, TRAIN_FLAGS } from './train.ts';
import { summary } from './summary.ts';
import { evaluate, EVAL_FLAGS } from './eval.ts';
import { predict, PREDICT_FLAGS } from './predict.ts';
import { serve, SERVE_HELP } from './serve.ts';
import { reportCommand, REPORT_FLAGS } from './report.ts';

const HELP = `fmgpu ${VERSION}: train convolutional networks on the GPU through WebGPU

usage: fmgpu COMMAND [options]

commands:
  train model.net      train a network, checkpoint every epoch, evaluate on the test set
  eval RUN [RUN ...]   test loss, accuracy, confusion matrix, classification report (several runs: ensemble)
  predict RUN IMAGE... top-3 classes for PNG or JPEG images (a directory: every image in it)
  summary model.net    check a .net file and print its Keras-style summary (no GPU)
  report RUN           (re)write RUN/report.html: curves, confusion matrix, test images, PCA
  serve                the training page on a local web server

  fmgpu COMMAND --help   the command's options
  fmgpu --version

The .net language: docs/language.md. Exit codes: 0 success, 1 runtime failure, 2 usage or input error, 130 interrupted.`;

const COMMAND_HELP: Record<string, string> = {
  train: `usage: fmgpu train model.net [options]\n\nFlags override the file's train settings.\n\n${flagHelp(TRAIN_FLAGS)}`,
  eval: `usage: fmgpu eval RUN [RUN ...] [options]\n\nWith several runs, also the ensemble by averaged probabilities and by majority vote.\n\n${flagHelp(EVAL_FLAGS)}`,
  predict: `usage: fmgpu predict RUN IMAGE [IMAGE ...] [options]\n\nImages are made grayscale, fitted to 28x28 keeping their aspect ratio, and inverted when their\nbackground is light (Fashion-MNIST items are light on black).\n\n${flagHelp(PREDICT_FLAGS)}`,
  summary:
    'usage: fmgpu summary model.net\n\nChecks the file and prints the Keras-style summary; exit 2 with the errors otherwise. No GPU is used.',
  report: `usage: fmgpu report RUN [--data DIR] [--out FILE]\n\nWrites a self-contained page (nothing loaded from the network): accuracy and loss curves, the\nconfusion matrix, per-class metrics, test images with predictions (mistakes first) and a PCA of the\npenultimate layer. Uses the GPU for the predictions.\n\n${flagHelp(REPORT_FLAGS)}`,
  serve: SERVE_HELP.trimEnd(),
};

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
  const args = argv.filter((a) => a !== '--debug');
  const [command, ...rest] = args;
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
    if (!(command in COMMAND_HELP))
      throw new UsageError(`unknown command "${command}" (commands: ${Object.keys(COMMAND_HELP).join(', ')})`);
    if (rest.includes('--help') || rest.includes('-h')) {
      out.log(COMMAND_HELP[command]!);
      return 0;
    }
    switch (command) {
      case 'train':
        return await train(rest, out);
      case 'eval':
        return await evaluate(rest, out);
      case 'predict':
        return await predict(rest, out);
      case 'summary':
        return summary(rest, out);
      case 'serve':
        return await serve(rest);
      case 'report':
        return await reportCommand(rest, out);
    }
    return 2;
  } catch (e) {
    return reportError(e, out, debug);
  }
}

// `fmgpu … | head` closes stdout early: that is not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

const code = await run(process.argv.slice(2));
process.exitCode = code;
// Dawn keeps the event loop alive while a GPU object is referenced; every command releases its
// device, but exit explicitly so that nothing else can hold the process. Once stdout and stderr
// have drained, though: a pipe takes 64 KiB at a time, and exiting sooner cuts long output short.
let streams = 2;
const drained = (): void => void (--streams === 0 && process.exit(code));
process.stdout.write('', drained);
process.stderr.write('', drained);
