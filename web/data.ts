// The page's dataset: loaded from the server (the one `fmgpu serve` read, else the data folder's
// files: src/web.ts loadServedData), its status lines, and what follows from it: the options the
// editor checks a model with (its class count and image shape), the default model that fits it, and
// whether a model takes its images.
import {
  channelsOf,
  DEFAULT_INPUT,
  isFlat,
  loadServedData,
  normalizedBy,
  shapeText,
  type Dataset,
  NUM_CLASSES,
  type CheckOptions,
  type ImageShape,
  type ModelIR,
  type ServedData,
  type TrainedWith,
} from '../src/web.ts';

/** The data's image shape, H×W×C. */
export const shapeOf = (d: ServedData): ImageShape => ({ h: d.train.rows, w: d.train.cols, c: channelsOf(d.train) });

/** Whether a shape is the default input (Fashion-MNIST's 28×28×1), which a model needs no input line for. */
export const isDefaultInput = (s: ImageShape): boolean => shapeText(s) === shapeText(DEFAULT_INPUT);

/** Fashion-MNIST's form: the page's default model needs no input line for it. */
const isFashionShaped = (d: ServedData): boolean => isDefaultInput(shapeOf(d)) && d.classes.length === NUM_CLASSES;

/**
 * How the editor checks a model: against the data's class count and shape (the input of a file without an
 * `input` line, and what an `input` line must say); with no data, any class count (as `fmgpu summary` does).
 */
export const checkOptions = (d: ServedData | null): CheckOptions =>
  d ? { classes: d.classes.length, input: shapeOf(d) } : { classes: null };

/**
 * The model the page opens with: a small CNN ending in one output per class. For data other than
 * Fashion-MNIST's 28×28×1 with ten classes it says its input, so that the weights it trains carry it.
 */
export function defaultSource(d: ServedData | null): string {
  const name = (d?.name ?? 'Fashion-MNIST').replace(/\p{Cc}/gu, ' ');
  const shape = d ? shapeOf(d) : DEFAULT_INPUT;
  const input = d && !isFashionShaped(d) ? `input ${shapeText(shape)}\n` : '';
  // Each pool halves the sides: no more of them than the image has room for.
  const side = Math.min(shape.h, shape.w);
  const pool = (least: number): string => (side >= least ? 'pool 2\n' : '');
  return (
    `# A small CNN for ${name}: edit it and the summary follows as you type.\n${input}` +
    `conv 16 3x3 same relu\n${pool(2)}conv 32 3x3 same relu\n${pool(4)}dense 64 relu\n` +
    `dense ${d?.classes.length ?? NUM_CLASSES} softmax\n\n` +
    'train epochs=5 batch=64 optimizer=adam lr=0.001 validation=0.1\n'
  );
}

/** Why `ir` cannot classify the data's images (another input shape, another class count), or null when it can. */
export function misfit(ir: ModelIR, d: ServedData): string | null {
  const want = shapeOf(d);
  if (shapeText(ir.input) !== shapeText(want))
    return `the model's input is ${shapeText(ir.input)} but ${d.name}'s images are ${shapeText(want)}`;
  const out = ir.output;
  const k = isFlat(out) ? out.units : out.c;
  if (k !== d.classes.length) return `the model ends in ${k} outputs but ${d.name} has ${d.classes.length} classes`;
  return null;
}

/** The dataset, with progress and failure told by `status`; null when there is none to train on. */
export async function loadData(status: (text: string, bad?: boolean) => void): Promise<ServedData | null> {
  status('Loading the dataset…');
  try {
    return await loadServedData('data/', {
      onProgress: (got, total) =>
        status(`Loading the dataset… ${(got / 1e6).toFixed(1)}${total ? ` of ${(total / 1e6).toFixed(1)}` : ''} MB`),
    });
  } catch (e) {
    status(
      `${e instanceof Error ? e.message : String(e)}. Training needs a dataset: run fmgpu serve --data DIR ` +
        '(idx files, CIFAR batches or class folders of images) or --csv FILE --test-csv FILE ' +
        '(apt-get install dataset-fashion-mnist for Fashion-MNIST). Loading weights still works.',
      true,
    );
    return null;
  }
}

/** `Ready: CIFAR-100, 50,000 training and 10,000 test images (32×32×3, 100 classes). Press Train.` */
export function readyLine(d: ServedData): string {
  const { h, w, c } = shapeOf(d);
  return (
    `Ready: ${d.name}, ${d.train.n.toLocaleString('en')} training and ${d.test.n.toLocaleString('en')} ` +
    `test images (${h}×${w}×${c}, ${d.classes.length} classes). Press Train.`
  );
}

/** The data's sets normalised as `norm` says (a served colour run's run.json); grey data stays pixel / 255. */
export function normalised(d: ServedData, norm: NonNullable<Dataset['normalize']>): { train: Dataset; test: Dataset } {
  const by = channelsOf(d.train) === 1 ? undefined : norm;
  return { train: normalizedBy(d.train, by), test: normalizedBy(d.test, by) };
}

/** What to say when weights were trained on classes named other than the data's (the bars name the data's): or ''. */
export function otherClasses(trained: readonly string[] | undefined, d: ServedData | null): string {
  if (!trained || !d || trained.join('\n') === d.classes.join('\n')) return '';
  const list = (names: readonly string[]): string =>
    names.length > 4 ? `${names.slice(0, 3).join(', ')}, … (${names.length})` : names.join(', ');
  return ` They were trained on the classes ${list(trained)}; the data's are ${list(d.classes)}, as the page shows.`;
}

/** The run `fmgpu serve --run` serves: its model, and the classes and normalisation its run.json records. */
export type ServedRun = TrainedWith & { source?: string | null };

/** The served run's model.net and run.json, from the files run/index.json lists. */
export async function servedRun(files: readonly string[]): Promise<ServedRun> {
  const source = files.includes('model.net') ? await (await fetch('run/model.net')).text() : null;
  // A colour run's normalisation and classes, as eval and predict apply them (run.json, src/cli/common.ts).
  const json: TrainedWith = files.includes('run.json') ? await (await fetch('run/run.json')).json() : {};
  return { source, classes: json.classes, normalize: json.normalize };
}
