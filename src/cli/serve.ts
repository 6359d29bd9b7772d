// `fmgpu serve [--port N] [--host H] [--allow-host NAME] [--data DIR] [--run RUN]`: the training
// page on a local static server.
// Runs until Ctrl-C (exit 130, the CLI's convention) or until `stop` aborts (tests).
import { suggest } from '../../dsl/errors.ts';
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { escapeControl, shapeText, type SpatialShape } from '../../dsl/index.ts';
import { DataError, FmgpuError, UsageError } from '../errors.ts';
import { DEFAULT_DATA_DIR } from '../node/data.ts';
import { findRoot, startServer, type RunningServer } from '../node/server.ts';
import { onSignal } from './interrupt.ts';
import {
  CSV_INPUT,
  FOLDER_INPUT,
  TREE_HOLD_OUT,
  datasetFiles,
  parseInputFlag,
  readServedData,
  servedLines,
  type ServedData,
} from './serve-data.ts';

export const SERVE_HELP = `usage: fmgpu serve [--port N] [--host H] [--allow-host NAME]...
                   [--data DIR | --csv FILE --test-csv FILE] [--input HxWxC] [--run RUN]

Serves the training page (web/) and the browser bundle, with the dataset read at start by the same
loaders as fmgpu train (any data it trains on: idx files of any size, CIFAR-10 or CIFAR-100
batches, class folders of PNG/JPEG images, CSV); the page trains on it, its classes and its image
size. Open the printed address in a browser with WebGPU (Chrome or Edge).

  --port N    port to listen on (default 8080; 0 picks a free one)
  --host H    address to listen on (default 127.0.0.1; 0.0.0.0 exposes the page to the network)
  --allow-host NAME
              one more name to open the page by, such as this machine's DNS name (repeatable; no
              port). Requests must name the server as 127.0.0.1, localhost, [::1] or H (with H
              beyond loopback, also one of this machine's addresses), with its port: others get a
              421, so a web page whose name was rebound to this machine cannot read it
  --data DIR  idx files (names from a classes.txt beside them), CIFAR-10 batches (data_batch_*.bin,
              test_batch.bin, batches.meta.txt), CIFAR-100 batches (train.bin, test.bin,
              fine_label_names.txt), or class folders of images: DIR/train/<class>/ and
              DIR/test/<class>/, or one tree DIR/<class>/, whose test set is a seeded ${TREE_HOLD_OUT * 100}% of its
              images held out as fmgpu train does with validation=${TREE_HOLD_OUT}. Default:
              ${DEFAULT_DATA_DIR} (missing, the page can still load weights)
  --csv FILE --test-csv FILE
              training and test data in CSV form (a label, integer or name, then H·W·C pixels)
  --input HxWxC
              the size a folder's images are resized to (default ${shapeText(FOLDER_INPUT)}) and a CSV's image shape
              (default ${shapeText(CSV_INPUT)}); idx and CIFAR data have their own
  --run RUN   a run directory from fmgpu train: the page opens with its model and weights
`;

export interface ServeArgs {
  port: number;
  host: string;
  allowHosts: string[];
  dataDir: string;
  /** --data was given (bad data is then refused, not warned about). */
  dataGiven: boolean;
  csv: string | null;
  testCsv: string | null;
  input: SpatialShape | null;
  runDir: string | null;
  help: boolean;
}

export class ServeUsageError extends Error {}

export function parseServeArgs(args: readonly string[]): ServeArgs {
  const out: ServeArgs = {
    port: 8080,
    host: '127.0.0.1',
    allowHosts: [],
    dataDir: DEFAULT_DATA_DIR,
    dataGiven: false,
    csv: null,
    testCsv: null,
    input: null,
    runDir: null,
    help: false,
  };
  const cursor = args.values(); // a flag's value is the next argument: cursor.next()
  for (const a of cursor) {
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    // A value, never empty (as train's flags: --csv= names no file).
    const value = (): string => {
      const next = eq > 0 && a.startsWith('--') ? { done: false, value: a.slice(eq + 1) } : cursor.next();
      if (next.done || next.value === '') throw new ServeUsageError(`${flag} needs a value`);
      return next.value;
    };
    switch (flag) {
      case '--help':
      case '-h':
        out.help = true;
        break;
      case '--port': {
        const v = value();
        const n = Number(v);
        if (!/^\d+$/.test(v) || n > 65535)
          throw new ServeUsageError(`--port must be a whole number from 0 to 65535, not "${v}"`);
        out.port = n;
        break;
      }
      case '--host':
        out.host = value();
        if (out.host === '') throw new ServeUsageError('--host needs an address');
        break;
      case '--allow-host': {
        const v = value();
        // Without a port: the Host header must carry the one the server listens on.
        if (!/^[a-z0-9-]+(\.[a-z0-9-]+)*$/i.test(v) && !isIP(v.replace(/^\[(.*)\]$/, '$1'))) {
          throw new ServeUsageError(`--allow-host takes a host name or address without a port, not "${v}"`);
        }
        out.allowHosts.push(v);
        break;
      }
      case '--data':
        out.dataDir = value();
        out.dataGiven = true;
        break;
      case '--csv':
        out.csv = value();
        break;
      case '--test-csv':
        out.testCsv = value();
        break;
      case '--input': {
        try {
          out.input = parseInputFlag(value());
        } catch (e) {
          throw new ServeUsageError((e as Error).message);
        }
        break;
      }
      case '--run':
        out.runDir = value();
        break;
      default: {
        // As the other commands say it (args.ts), with the nearest option.
        const options = ['help', 'port', 'host', 'allow-host', 'data', 'csv', 'test-csv', 'input', 'run', 'verbose'];
        const near = a.startsWith('--') ? suggest(a.slice(2), options) : undefined;
        const mean = near ? ` (did you mean --${near}?)` : ' (see fmgpu serve --help)';
        throw new ServeUsageError(a.startsWith('-') ? `unknown option ${a}${mean}` : `unexpected argument "${a}"`);
      }
    }
  }
  return out;
}

export interface ServeIo {
  out(line: string): void;
  err(line: string): void;
  /** Where web/ and dist/web/ live (default: found above this module, else above the working directory). */
  root?: string;
  /** Aborting stops the server (exit 0), as Ctrl-C does (exit 130). */
  stop?: AbortSignal;
}

// What the terminal shows: a path or host given on the command line may hold control characters.
const defaultIo: ServeIo = { out: (l) => console.log(escapeControl(l)), err: (l) => console.error(escapeControl(l)) };

/**
 * The dataset to serve, read as fmgpu train reads it; null (a warning says why) when none was named
 * and the default folder is missing or unreadable. Data named by --data or --csv that cannot be
 * read throws (exit 2).
 */
function datasetFor(a: ServeArgs, io: ServeIo): ServedData | null {
  const named = a.dataGiven || a.csv !== null || a.testCsv !== null;
  const cannot = 'the page can still load weights but not train';
  if (!named && !existsSync(a.dataDir)) {
    const hint = '(apt-get install dataset-fashion-mnist, or --data DIR)';
    io.err(`fmgpu: warning: no data folder ${a.dataDir}: ${cannot} ${hint}`);
    return null;
  }
  try {
    return readServedData(a);
  } catch (e) {
    if (named || !(e instanceof FmgpuError)) throw e;
    io.err(`fmgpu: warning: ${e.message.split('\n')[0]}: ${cannot}`);
    return null;
  }
}

/** Runs `fmgpu serve ARGS`; resolves with the exit code once the server has stopped. */
export async function serve(args: readonly string[], io: ServeIo = defaultIo): Promise<number> {
  let a: ServeArgs;
  try {
    a = parseServeArgs(args);
  } catch (e) {
    if (!(e instanceof ServeUsageError)) throw e;
    io.err(`fmgpu: error: ${e.message}`);
    return 2;
  }
  if (a.help) {
    io.out(SERVE_HELP.trimEnd());
    return 0;
  }
  if (a.runDir !== null && !existsSync(join(a.runDir, 'weights.safetensors'))) {
    const weights = join(a.runDir, 'weights.safetensors');
    io.err(`fmgpu: error: ${weights} does not exist: --run takes a run directory written by fmgpu train`);
    return 2;
  }
  // The page and its bundle first: a missing build is found before the data is read and decoded.
  const root = io.root ?? findRoot(fileURLToPath(new URL('.', import.meta.url))) ?? findRoot(process.cwd());
  if (!root) {
    io.err('fmgpu: error: cannot find the page (web/index.html) next to this program');
    return 1;
  }
  for (const f of ['fmgpu.js', 'app.js']) {
    if (!existsSync(join(root, 'dist', 'web', f))) {
      io.err(`fmgpu: error: the browser bundle ${join(root, 'dist', 'web', f)} is missing: run npm run build`);
      return 1;
    }
  }
  let data: ServedData | null;
  try {
    data = datasetFor(a, io);
  } catch (e) {
    if (!(e instanceof DataError || e instanceof UsageError)) throw e;
    io.err(`fmgpu: error: ${e.message.split('\n')[0]}`);
    return 2;
  }
  let running: RunningServer;
  try {
    running = await startServer({
      root,
      dataDir: a.dataDir,
      runDir: a.runDir ?? undefined,
      dataset: data ? datasetFiles(data) : undefined,
      host: a.host,
      allowHosts: a.allowHosts,
      port: a.port,
    });
  } catch (e) {
    io.err(`fmgpu: error: ${(e as Error).message}`);
    return 1;
  }
  for (const line of data ? servedLines(data) : []) io.out(line);
  io.out(`fmgpu: serving the training page at ${running.url} (Ctrl-C to stop)`);
  if (a.host !== '127.0.0.1' && a.host !== 'localhost' && a.host !== '::1') {
    // A browser here has WebGPU at the loopback address, not at a wildcard's or a LAN one.
    const local =
      a.host === '0.0.0.0' || a.host === '::'
        ? `; on this machine open http://127.0.0.1:${new URL(running.url).port}/`
        : '';
    io.err(
      `fmgpu: warning: listening on ${a.host}: other machines can reach this page; ` +
        `browsers give WebGPU only to https pages or localhost${local}`,
    );
  }
  // The first Ctrl-C (or SIGTERM) closes the server; another while it closes quits at once.
  let stopping = false;
  let release: (() => void)[] = [];
  const code = await new Promise<number>((done) => {
    const stop = (exit: number) => (): void => {
      if (stopping) process.exit(exit);
      stopping = true;
      done(exit);
    };
    release = [onSignal('SIGINT', stop(130)), onSignal('SIGTERM', stop(143))];
    io.stop?.addEventListener('abort', () => done(0), { once: true });
    if (io.stop?.aborted) done(0);
  });
  await running.close();
  for (const r of release) r();
  return code;
}
