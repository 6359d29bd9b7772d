// The training page: wires the editor, the data, the trainer and the drawings together.
// State lives here; data.ts loads the dataset and says what fits it, curves.ts shows the numbers,
// charts.ts draws, editor.ts checks the source, pad.ts turns drawings into inputs.
import {
  openGpu,
  adapterName,
  webgpuMissing,
  Trainer,
  fitOptions,
  pageSets,
  type PageSets,
  imagesOf,
  saveWeights,
  readWeights,
  trainedWith,
  trainedWithMetadata,
  type TrainedWith,
  sourceOf,
  heatmap,
  parseNet,
  formatError,
  DslError,
  type Gpu,
  type ModelIR,
  type Dataset,
  type ServedData,
  type Progress,
  type EpochLog,
  type EvalResult,
  type Preprocessed,
} from '../src/web.ts';
import { bars, el, argmax, pickSamples, sampleGrid } from './charts.ts';
import { drawCurves as curves, fmt, pct, showEpochStats, showStep } from './curves.ts';
import { editor } from './editor.ts';
import { downloadBytes } from './download.ts';
import { showingTrainLine } from './form.ts';
import { pad } from './pad.ts';
import { drawSample, namesOf, shapedInput } from './colour.ts';
import { checkOptions, defaultSource, loadData, misfit, normalised, readyLine } from './data.ts';
import { otherClasses, servedRun, type ServedRun } from './data.ts';

type State = 'starting' | 'nogpu' | 'idle' | 'training' | 'pausing' | 'paused' | 'stopping' | 'evaluating';

/** What the page has seen, readable from the console (and by the browser test). */
const page = {
  state: 'starting' as State,
  adapter: '',
  progress: [] as Progress[],
  epochs: [] as EpochLog[],
  evaluation: null as EvalResult | null,
  lastInput: null as Float32Array | null,
  lastProbs: null as Float32Array | null,
  error: '',
  /** The weights file loaded, if any. */
  loaded: '',
};
(window as unknown as { fmgpuPage: typeof page }).fmgpuPage = page;

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;
const buttons = {
  train: $<HTMLButtonElement>('train'),
  pause: $<HTMLButtonElement>('pause'),
  stop: $<HTMLButtonElement>('stop'),
  evaluate: $<HTMLButtonElement>('evaluate'),
  download: $<HTMLButtonElement>('download'),
  reshuffle: $<HTMLButtonElement>('reshuffle'),
};
const field = (id: string): HTMLInputElement => $<HTMLInputElement>(id);

let gpu: Gpu | null = null;
let data: ServedData | null = null;
let trainer: Trainer | null = null;
let samples: number[] = [];
/** Epochs finished in the current run (a paused run resumes from there). */
let done = 0;
let stopRequested = false;
let split: (PageSets & { key: string }) | null = null;
/**
 * The training and test sets with the normalisation the current weights were trained with: a page
 * run's (pageSets), a served run's (its run.json), else null: the data's own.
 */
let sets: { train: Dataset; test: Dataset } | null = null;
/** What the weights were trained with: a page run's classes and normalisation, or those loaded weights record. */
let notes: TrainedWith = {};
/** The sets for weights just loaded: the data normalised as they were trained, else (null) the data's own. */
const loadedSets = (): typeof sets => (data && notes.normalize ? normalised(data, notes.normalize) : null);
/** The default model the editor shows, while it is left as it is: it follows the data once that arrives. */
let shownDefault = defaultSource(null);

/** The model that classifies the data: the trainer's, when it takes the data's images and classes. */
const fitting = (): Trainer | null => (trainer && data && misfit(trainer.ir, data) ? null : trainer);

function setState(s: State): void {
  page.state = s;
  document.body.dataset.state = s;
  const busy = s === 'training' || s === 'pausing' || s === 'stopping' || s === 'evaluating';
  buttons.train.disabled = !gpu || !data || busy || !ed.model();
  buttons.train.textContent = s === 'paused' ? 'Resume' : 'Train';
  buttons.pause.disabled = s !== 'training';
  buttons.stop.disabled = s !== 'training' && s !== 'paused';
  buttons.evaluate.disabled = !trainer || !data || busy;
  buttons.download.disabled = !trainer || busy;
  buttons.reshuffle.disabled = !data;
}

function status(text: string, bad = false): void {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('bad', bad);
  if (bad) page.error = text;
}

const drawCurves = (): void => curves(page.progress, page.epochs);

function showProgress(p: Progress): void {
  page.progress.push(p);
  showStep(p);
  drawCurves();
}

function showEpoch(e: EpochLog): void {
  page.epochs.push(e);
  showEpochStats(e);
  drawCurves();
}

/** Predicted labels and the top-3 probability bars for the sample test images. */
async function showSamples(): Promise<void> {
  if (!data) return;
  if (samples.length === 0) samples = pickSamples(data.test.n, 12);
  const test = sets?.test ?? data.test;
  const model = fitting();
  const probs = model ? await model.predict(imagesOf(test, samples), samples.length) : null;
  const truths = samples.map((i) => test.labels[i]!);
  sampleGrid($('grid'), (c, i) => drawSample(c, test, samples[i]!), truths, probs, namesOf(data));
}

/** The pad's picture classified, its bars shown; an empty pad (null) shows what to do instead. */
async function classify(p: Preprocessed | null): Promise<void> {
  page.lastInput = p?.pixels ?? null;
  const host = $('bars');
  if (!trainer || !p) {
    const what = trainer ? 'Draw or upload' : 'Train a model or load weights, then draw or upload';
    host.replaceChildren(el('p', 'hint', `${what}: the classes appear here.`));
    return;
  }
  const probs = await trainer.predict(p.pixels, 1);
  page.lastProbs = probs;
  bars(host, probs, namesOf(data, probs.length));
  host.dataset.predicted = String(argmax(probs));
}

async function evaluate(): Promise<void> {
  if (!trainer || !data) return;
  const wrong = misfit(trainer.ir, data);
  if (wrong) return status(`${wrong}: it cannot be evaluated on this data.`, true);
  const back: State = page.state === 'paused' ? 'paused' : 'idle';
  setState('evaluating');
  status(`Evaluating on ${data.test.n.toLocaleString('en')} test images…`);
  try {
    const r = await trainer.evaluate(sets?.test ?? data.test);
    page.evaluation = r;
    // The report's drawing (src/report/svg.ts): markup of numbers and escaped class names.
    $('confusion').innerHTML = heatmap(r.confusion, namesOf(data));
    $('test-acc').textContent =
      `test accuracy ${pct(r.accuracy)} · loss ${fmt(r.loss)} · ${r.n.toLocaleString('en')} images`;
    status(`Test accuracy ${pct(r.accuracy)}, loss ${fmt(r.loss)}.`);
  } catch (e) {
    status(message(e), true);
  }
  setState(back);
}

async function train(): Promise<void> {
  if (!gpu || !data) return;
  const resumed = page.state === 'paused' ? trainer : null;
  const ir = resumed ? resumed.ir : ed.model();
  if (!ir) return;
  const wrong = misfit(ir, data);
  if (wrong) return status(`${wrong}: change its input line (or remove it) to train on this data.`, true);
  const subset = Math.max(64, Math.min(data.train.n, Number(field('subset').value) || data.train.n));
  const validation = Math.min(0.9, Math.max(0, Number(field('validation').value) || 0));
  const test = ir.train.validation === 'test' && field('validation').value === ''; // the form shows no number
  const how = { keep: subset, fraction: validation, split: ir.train.split, seed: ir.train.seed, test };
  const key = JSON.stringify(how);
  // The same Dataset objects across runs: the trainer keeps them on the GPU by identity.
  if (split?.key !== key) split = { key, ...pageSets(data, how) };
  const { train: tr, val } = split;
  sets = split;
  if (!resumed) notes = { classes: namesOf(data), normalize: tr.normalize };
  const cpu = gpu.adapter.cpu;
  const o = fitOptions(ir, {
    epochs: Math.max(1, Number(field('epochs').value) || ir.train.epochs),
    batch: Math.max(1, Number(field('batch').value) || ir.train.batch),
    lr: Number(field('lr').value) > 0 ? Number(field('lr').value) : ir.train.lr,
    // A CPU adapter takes seconds per step: report often so the curves move.
    stepsPerSubmit: cpu ? 2 : undefined,
    progressEvery: cpu ? 2 : 50,
    initialEpoch: resumed ? done : 0,
  });
  // A resumed run starts its interrupted epoch again: drop that epoch's points so the curve does not fold back.
  let run = resumed;
  if (run) page.progress = page.progress.filter((p) => p.epoch <= done);
  else {
    trainer?.release();
    run = trainer = new Trainer(gpu, ir, ir.train.seed);
    page.progress = [];
    page.epochs = [];
    done = 0;
  }
  stopRequested = false;
  setState('training');
  const validating = val ? `, validating on ${val.n.toLocaleString('en')}: ${split.validation}` : '';
  status(
    `${resumed ? 'Resuming' : 'Training'} on ${tr.n.toLocaleString('en')} images${validating}: ` +
      'the first steps compile the shaders.',
  );
  let pausing = false;
  try {
    await run.fit(tr, val, {
      ...o,
      onProgress: showProgress,
      onEpoch: async (e) => {
        done = e.epoch;
        showEpoch(e);
        await showSamples();
      },
      shouldStop: () => {
        pausing = page.state === 'pausing';
        return stopRequested || pausing;
      },
    });
  } catch (e) {
    status(message(e), true);
    setState('idle');
    return;
  }
  if (pausing) {
    setState('paused');
    status(`Paused in epoch ${done + 1}: Resume starts that epoch again, Stop ends the run.`);
    return;
  }
  setState('idle');
  await showSamples();
  pad_.again();
  await evaluate();
}

function message(e: unknown): string {
  if (e instanceof DslError) return formatError(e);
  return e instanceof Error ? e.message : String(e);
}

/** Weights from a file input or the served run; the model comes from their metadata, else `source`, else the editor. */
async function loadWeightsFrom(from: Blob | string, name: string, run: ServedRun = {}): Promise<void> {
  if (!gpu) return;
  if (page.state !== 'idle' && page.state !== 'starting') {
    status('Stop the training first, then load weights.', true);
    return;
  }
  try {
    const { tensors, metadata } = await readWeights(from, name);
    const { source, ...served } = run;
    const recorded: TrainedWith = { ...served, ...trainedWith(metadata, name) };
    const src = sourceOf(metadata) ?? source ?? null;
    const ir: ModelIR =
      src !== null
        ? parseNet(src, 'model.net', ed.options())
        : (ed.model() ?? parseNet(ed.source(), 'model.net', ed.options()));
    const t = new Trainer(gpu, ir, ir.train.seed);
    t.params.load(tensors, name);
    // The editor shows the weights' model only once they load: else the user's text stays as it was.
    if (src !== null) ed.set(src);
    trainer?.release();
    trainer = t;
    page.loaded = name;
    notes = recorded;
    sets = loadedSets();
    page.progress = [];
    page.epochs = [];
    drawCurves();
    const other = otherClasses(notes.classes, data);
    status(`Loaded ${name}${src !== null ? ' and its model' : ' into the model in the editor'}.${other}`, !!other);
    setState('idle');
    await showSamples();
    pad_.again();
  } catch (e) {
    status(message(e), true);
  }
}

/** `fmgpu serve --run DIR` lists the run's files at run/index.json: its model and weights; 'none' without one. */
async function loadServedRun(): Promise<'none' | 'tried'> {
  const res = await fetch('run/index.json');
  if (!res.ok) return 'none';
  const { files } = (await res.json()) as { files: string[] };
  if (!files.includes('weights.safetensors')) return 'none';
  await loadWeightsFrom('run/weights.safetensors', 'run/weights.safetensors', await servedRun(files));
  return 'tried';
}

const ed = editor({
  onModel: showingTrainLine(() => {
    setState(page.state);
    pad_.refresh();
  }),
  check: checkOptions(null),
});
const pad_ = pad(
  classify,
  (e) => status(message(e), true),
  () => shapedInput(trainer?.ir ?? ed.model(), data && sets ? { ...data, train: sets.train } : data),
);

buttons.train.addEventListener('click', () => void train());
buttons.pause.addEventListener('click', () => {
  setState('pausing');
  status('Pausing after the current steps…');
});
buttons.stop.addEventListener('click', () => {
  if (page.state === 'paused') {
    setState('idle');
    status('Stopped.');
    void evaluate();
    return;
  }
  stopRequested = true;
  setState('stopping');
  status('Stopping after the current steps…');
});
buttons.evaluate.addEventListener('click', () => void evaluate());
buttons.download.addEventListener('click', async () => {
  if (!trainer) return;
  downloadBytes(await saveWeights(trainer, trainedWithMetadata(notes)), 'weights.safetensors');
});
buttons.reshuffle.addEventListener('click', () => {
  samples = [];
  void showSamples();
});
$<HTMLInputElement>('weights').addEventListener('change', (e) => {
  const f = (e.target as HTMLInputElement).files?.[0];
  if (f) void loadWeightsFrom(f, f.name);
});
window.addEventListener('resize', drawCurves);

async function start(): Promise<void> {
  ed.set(shownDefault);
  drawCurves();
  setState('starting');
  const missing = webgpuMissing();
  const badge = $('adapter');
  if (missing) return noGpu(missing);
  try {
    gpu = await openGpu(navigator.gpu);
  } catch (e) {
    return noGpu(message(e));
  }
  page.adapter = adapterName(gpu.adapter);
  badge.textContent = `adapter: ${page.adapter}`;
  if (gpu.adapter.cpu) field('subset').value = '2048';
  setState('idle');
  data = await loadData(status);
  setState('idle');
  if (data) useData(data);
  // The served run after the data, so that its model is read as trained on it (the data's image size and
  // classes, for a model without an input line); where it fails, its error is what stays shown.
  const served = await loadServedRun().catch((e) => status(`the served run: ${message(e)}`, true));
  if (!data) return;
  if (served === 'none' || page.loaded === 'run/weights.safetensors') status(readyLine(data));
  await showSamples();
  pad_.again();
}

/** The editor checks against the data; its default model, if still as shown, becomes the data's. */
function useData(d: ServedData): void {
  const subset = field('subset');
  subset.max = String(d.train.n);
  subset.value = String(Math.min(d.train.n, Number(subset.value) || d.train.n));
  ed.configure(checkOptions(d));
  if (ed.source() === shownDefault) {
    shownDefault = defaultSource(d);
    ed.set(shownDefault);
  }
}

function noGpu(reason: string): void {
  setState('nogpu');
  $('nogpu').hidden = false;
  $('nogpu-reason').textContent = reason;
  const badge = $('adapter');
  badge.textContent = 'no WebGPU';
  badge.classList.add('bad');
  status('WebGPU is not available here: see above how to enable it.', true);
}

void start();
