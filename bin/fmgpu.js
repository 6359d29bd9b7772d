#!/usr/bin/env node
// The fmgpu command. It runs the CLI (dist/cli.js, written by `npm run build`) in a child process
// and passes the child's stderr on line by line, less the notes Dawn's native code prints itself
// on some adapters (lavapipe: "Warning: maxDynamic…PerPipelineLayout artificially reduced …"),
// which nothing inside the process can silence. stdin and stdout are the child's own: a terminal
// stays a terminal, a pipe a pipe. Commands that open no GPU, help, and anything with --verbose
// (nothing hidden) run in this process instead, without the child's start-up time.
//
// Signals: a Ctrl-C on a terminal reaches both processes (the CLI counts the two deliveries as
// one); SIGINT, SIGTERM and SIGHUP sent to this process alone are passed on. The exit code, or the
// signal that ended the child, is this process's too; should this process die first, the child
// does (it watches the IPC channel).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/cli.js', import.meta.url);
const DAWN_NOTE = new RegExp(
  '^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \\d+ to \\d+ ' +
    'to fit dynamic offset allocation limit\\.\r?$',
);
const PASSED_ON = ['SIGINT', 'SIGTERM', 'SIGHUP'];
/** The commands that open a GPU in this process, and so may hear from Dawn; the rest run here, at no cost. */
const GPU_COMMANDS = ['train', 'eval', 'predict', 'report'];

const args = process.argv.slice(2);
const command = args.find((a) => a !== '--debug');
if (GPU_COMMANDS.includes(command) && !args.some((a) => ['--verbose', '--help', '-h'].includes(a))) runChild();
else await import(cli.href);

function runChild() {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(cli), ...args], {
    stdio: ['inherit', 'inherit', 'pipe', 'ipc'],
  });
  for (const s of PASSED_ON) process.on(s, () => child.kill(s));
  // A closed stderr (`2>&1 | head`) is no reason to stop waiting for the child.
  process.stderr.on('error', () => undefined);
  filterLines(child.stderr, process.stderr);
  child.on('error', (e) => {
    process.stderr.write(`fmgpu: error: cannot start ${fileURLToPath(cli)}: ${e.message}\n`);
    process.exitCode = 1;
  });
  child.on('close', (code, signal) => {
    if (signal) {
      // Ended by a signal: end the same way, so that a shell sees what it would have seen.
      for (const s of PASSED_ON) process.removeAllListeners(s);
      process.kill(process.pid, signal);
      return;
    }
    process.exitCode = code ?? 1;
  });
}

/** Copies `from` to `to` byte for byte, whole lines at a time, less Dawn's notes. */
function filterLines(from, to) {
  let pending = Buffer.alloc(0);
  const pass = (line) => {
    if (!DAWN_NOTE.test(line.toString('latin1').replace(/\n$/, ''))) to.write(line);
  };
  from.on('data', (chunk) => {
    let buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10)) {
      pass(buf.subarray(0, nl + 1));
      buf = buf.subarray(nl + 1);
    }
    pending = Buffer.from(buf);
  });
  from.on('end', () => pending.length && pass(pending));
}
