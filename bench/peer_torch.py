# The reference network (examples/reference.net) in PyTorch, as the peer for bench/train.ts:
# images/s at batch 64 and 256 in eager mode (and with torch.compile when --compile is given),
# steady state after warm-up, Adam 1e-3. Reads the idx .gz files, fed from GPU memory.
# fp32 throughout unless --tf32: PyTorch's default lets cuDNN run convolutions in TF32 on Ampere
# and later, which is not the arithmetic fmgpu does.
#   python3 bench/peer_torch.py [--data DIR] [--batch 64,256] [--steps N] [--compile] [--tf32]
import argparse, gzip, json, time
import numpy as np
import torch
import torch.nn as nn

p = argparse.ArgumentParser()
p.add_argument('--data', default='/usr/share/datasets/fashion-mnist')
p.add_argument('--batch', default='64,256')
p.add_argument('--steps', type=int, default=1000)
p.add_argument('--compile', action='store_true')
p.add_argument('--tf32', action='store_true')
a = p.parse_args()
torch.backends.cudnn.allow_tf32 = a.tf32
torch.backends.cuda.matmul.allow_tf32 = a.tf32
precision = 'tf32' if a.tf32 else 'fp32'

def idx(path, offset):
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)

x = torch.tensor(idx(f'{a.data}/train-images-idx3-ubyte.gz', 16).reshape(-1, 1, 28, 28), device='cuda').float() / 255
y = torch.tensor(idx(f'{a.data}/train-labels-idx1-ubyte.gz', 8).astype(np.int64), device='cuda')
torch.backends.cudnn.benchmark = True

def net():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Flatten(), nn.Linear(128 * 3 * 3, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10)).cuda()

for batch in map(int, a.batch.split(',')):
    for mode in ['eager'] + (['compile'] if a.compile else []):
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
            step = torch.compile(step, mode='max-autotune')
        n = x.shape[0] // batch
        perm = torch.randperm(x.shape[0], device='cuda')
        for i in range(50):  # warm-up (and compilation)
            s = perm[(i % n) * batch:(i % n + 1) * batch]
            step(x[s], y[s])
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(a.steps):
            s = perm[(i % n) * batch:(i % n + 1) * batch]
            step(x[s], y[s])
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        print(json.dumps({'bench': 'peer', 'peer': f'pytorch {torch.__version__} {mode}', 'precision': precision, 'batch': batch, 'steps': a.steps, 'images_per_s': round(a.steps * batch / dt)}), flush=True)
