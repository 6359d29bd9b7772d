# The reference network (examples/reference.net, 241,546 parameters) in PyTorch, the peer of
# bench/train.ts: steady-state training images/s at each batch size (Adam 1e-3, dropout on, after a
# warm-up), eager and, with --compile, torch.compile'd; with --infer, test-set inference images/s
# (eager, chunks of 1,000). Reads the four idx files (gzipped or not), fed from device memory.
# CUDA when there is a GPU, else the CPU (--device picks). fp32 throughout unless --tf32: PyTorch's
# default lets cuDNN run convolutions in TF32 on Ampere and later, which is not fmgpu's arithmetic.
# One JSON line per measurement (a mode that cannot run says why in its line, "skipped").
#   python3 bench/peer_torch.py [--data DIR] [--batch 64,256] [--steps N] [--seconds S] [--compile]
#                               [--modes eager,compile] [--compile-mode default] [--infer] [--tf32]
#                               [--device auto|cuda|cpu]
# --seconds S bounds each measurement (bench/gpu-check.sh): up to N steps or S seconds, whichever
# comes first. --modes compile alone lets a caller give compilation a time box of its own.
import argparse, gzip, json, os, sys, time
import numpy as np
import torch
import torch.nn as nn

PARAMS = 241546  # `fmgpu summary examples/reference.net`

p = argparse.ArgumentParser()
p.add_argument('--data', default='/usr/share/datasets/fashion-mnist')
p.add_argument('--batch', default='64,256')
p.add_argument('--steps', type=int, default=1000)
p.add_argument('--seconds', type=float, default=float('inf'))
p.add_argument('--compile', action='store_true', help='same as --modes eager,compile')
p.add_argument('--modes', default='')
p.add_argument('--compile-mode', default='default')
p.add_argument('--infer', action='store_true')
p.add_argument('--tf32', action='store_true')
p.add_argument('--device', default='auto', choices=['auto', 'cuda', 'cpu'])
a = p.parse_args()
modes = [m for m in (a.modes or ('eager,compile' if a.compile else 'eager')).split(',') if m]
for m in modes:
    if m not in ('eager', 'compile'):
        sys.exit(f'peer_torch: unknown mode {m} (eager, compile)')
dev = torch.device('cuda' if a.device == 'cuda' or (a.device == 'auto' and torch.cuda.is_available()) else 'cpu')
torch.backends.cudnn.allow_tf32 = a.tf32
torch.backends.cuda.matmul.allow_tf32 = a.tf32
torch.backends.cudnn.benchmark = True
precision = 'tf32' if a.tf32 else 'fp32'
# On the CPU, every core: some builds start with one thread (Debian's 1.13 here), which would halve
# the peer; OMP_NUM_THREADS, when set, still wins.
if dev.type == 'cpu' and 'OMP_NUM_THREADS' not in os.environ:
    torch.set_num_threads(os.cpu_count() or 1)
threads = torch.get_num_threads()
device_name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else f'cpu ({threads} thread{"s" * (threads != 1)})'
about = {'peer': f'pytorch {torch.__version__}', 'device': device_name, 'precision': precision}


def emit(row):
    print(json.dumps({**row, **about}), flush=True)


def sync():
    if dev.type == 'cuda':
        torch.cuda.synchronize()


def idx(name, offset):
    for path, opener in ((f'{a.data}/{name}.gz', gzip.open), (f'{a.data}/{name}', open)):
        if os.path.exists(path):
            with opener(path, 'rb') as f:
                return np.frombuffer(f.read(), np.uint8, offset=offset)
    sys.exit(f'peer_torch: {a.data}/{name}(.gz) not found (--data DIR: the four Fashion-MNIST idx files)')


def images(prefix):
    x = torch.tensor(idx(f'{prefix}-images-idx3-ubyte', 16).reshape(-1, 1, 28, 28).copy(), device=dev).float() / 255
    y = torch.tensor(idx(f'{prefix}-labels-idx1-ubyte', 8).astype(np.int64), device=dev)
    return x, y


x, y = images('train')


def net():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Flatten(), nn.Linear(128 * 3 * 3, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10)).to(dev)


params = sum(t.numel() for t in net().parameters())
if params != PARAMS:
    sys.exit(f'peer_torch: the network has {params} parameters, examples/reference.net has {PARAMS}')
about['params'] = params


def timed(run, n, seconds, check_every=20):
    """Runs run(i) up to n times or about `seconds`, syncing every check_every calls; (calls, seconds)."""
    sync()
    t0 = time.perf_counter()
    i = 0
    while i < n:
        run(i)
        i += 1
        if i % check_every == 0:
            sync()
            if time.perf_counter() - t0 > seconds:
                break
    sync()
    return i, time.perf_counter() - t0


for batch in map(int, a.batch.split(',')):
    for mode in modes:
        if mode == 'compile' and not hasattr(torch, 'compile'):
            emit({'bench': 'peer', 'mode': mode, 'batch': batch,
                  'skipped': f'torch {torch.__version__} has no torch.compile'})
            continue
        torch.manual_seed(1)
        m = net()
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        lossf = nn.CrossEntropyLoss()

        def step(xb, yb):
            opt.zero_grad(set_to_none=True)
            loss = lossf(m(xb), yb)
            loss.backward()
            opt.step()
            return loss

        if mode == 'compile':
            step = torch.compile(step, mode=a.compile_mode)
        n = x.shape[0] // batch
        perm = torch.randperm(x.shape[0], device=dev)

        def run(i):
            s = perm[(i % n) * batch:(i % n + 1) * batch]
            step(x[s], y[s])

        t0 = time.perf_counter()
        try:
            timed(run, 3 if mode == 'compile' else 20, float('inf'))  # warm-up (and compilation)
        except Exception as e:  # a compiler that fails here says so; eager went first
            emit({'bench': 'peer', 'mode': mode, 'batch': batch, 'skipped': f'{type(e).__name__}: {str(e)[:300]}'})
            continue
        warm = time.perf_counter() - t0
        steps, dt = timed(run, a.steps, a.seconds)
        emit({'bench': 'peer', 'mode': mode, 'batch': batch, 'steps': steps, 'seconds': round(dt, 3),
              'warmup_seconds': round(warm, 2), 'images_per_s': round(steps * batch / dt),
              **({'compile_mode': a.compile_mode} if mode == 'compile' else {})})

if a.infer:
    del x, y
    tx, ty = images('t10k')
    torch.manual_seed(1)
    m = net().eval()
    chunk = 1000

    def infer(_):
        with torch.no_grad():
            correct = 0
            for i in range(0, tx.shape[0], chunk):
                correct += (m(tx[i:i + chunk]).argmax(1) == ty[i:i + chunk]).sum()
            return int(correct)  # one read-back per pass, as fmgpu's evaluate

    timed(infer, 1, float('inf'), 1)
    reps, dt = timed(infer, 20, a.seconds, 1)
    emit({'bench': 'peer-infer', 'mode': 'eager', 'images': tx.shape[0], 'chunk': chunk, 'reps': reps,
          'images_per_s': round(reps * tx.shape[0] / dt)})
