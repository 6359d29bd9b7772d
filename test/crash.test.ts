// A crash costs at most the work since the last checkpoint: SIGKILL at random moments of a run
// (during steps and during checkpoint writes) always leaves a readable checkpoint, and --resume
// goes on from it to the end.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, FINISHED_RUN, writeIdxDir } from './helpers/files.ts';
import { checkpointFolder, readCheckpoint } from '../src/node/rundir.ts';
import { Rng } from '../src/util/rng.ts';

const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };
/**
 * The process that trains: bin/fmgpu.js runs the CLI as its child (to filter Dawn's notes from
 * stderr). Killing that one is the crash; bin/fmgpu.js reaps it and ends with the same signal.
 */
function trainingProcess(wrapper: number): number {
  try {
    const children = readFileSync(`/proc/${wrapper}/task/${wrapper}/children`, 'utf8').trim();
    return Number(children.split(/\s+/)[0]) || wrapper;
  } catch {
    return wrapper;
  }
}
const tmp = mkdtempSync(join(tmpdir(), 'fmgpu-crash-'));
const data = join(tmp, 'data');
const NET = join(tmp, 'tiny.net');

beforeAll(() => {
  ensureBuilt();
  writeIdxDir(data, 256, 64);
  // Tiny epochs, so that checkpoints are written often and kills land during writes too.
  writeFileSync(NET, 'conv 2 3x3 relu\npool 2\ndense 10 softmax\ntrain epochs=12 batch=32 lr=0.01\n');
}, 120_000);

describe('SIGKILL during training', () => {
  it('every kill leaves the last complete checkpoint readable, and --resume finishes the run', async () => {
    const dir = join(tmp, 'run');
    const rng = new Rng(42);
    let kills = 0;
    for (let attempt = 0; attempt < 6; attempt++) {
      const args = checkpointFolder(dir) ? ['train', '--resume', dir] : ['train', NET, '--data', data, '--out', dir];
      const child = spawn('node', ['bin/fmgpu.js', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let epochs = 0;
      // Kill after a random number of epoch lines plus a random delay: sometimes mid-step,
      // sometimes while the checkpoint that follows an epoch is being written.
      const target = 1 + rng.int(2),
        delay = rng.int(40);
      const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      let killing = false;
      child.stdout.on('data', (d: Buffer) => {
        epochs += (d.toString().match(/^epoch \d+\/\d+ {2}/gm) ?? []).length;
        if (epochs < target || killing) return;
        killing = true;
        setTimeout(() => {
          try {
            process.kill(trainingProcess(child.pid!), 'SIGKILL');
          } catch {
            // It finished first.
          }
        }, delay);
      });
      const code = await done;
      if (code === 0) break;
      kills++;
      if (checkpointFolder(dir)) {
        const ck = readCheckpoint(dir);
        expect(ck.state.history.length).toBe(ck.state.epoch);
        expect(ck.weights.size).toBeGreaterThan(0);
      }
    }
    expect(kills).toBeGreaterThan(0);
    // Whatever state the kills left, resuming completes the run.
    const r = spawnSync('node', ['bin/fmgpu.js', 'train', '--resume', dir], {
      env,
      encoding: 'utf8',
      timeout: 300_000,
    });
    if (r.status !== 0) expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // Nothing but the run's own files: no lock, no temporary names, no stale checkpoint folders.
    expect(readdirSync(dir).sort()).toEqual(FINISHED_RUN);
    const history = JSON.parse(readFileSync(join(dir, 'history.json'), 'utf8'));
    expect(history.map((h: { epoch: number }) => h.epoch)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(existsSync(join(dir, 'weights.safetensors'))).toBe(true);
  }, 600_000);
});
