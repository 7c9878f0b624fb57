#!/usr/bin/python3
"""torch_step.py — the PyTorch twin of bench/train_step.c: the same
workloads (models, batch sizes, objective, optimizer) on synthetic data of
the same shape, timed the same way (warm-up, then windows; median), one
JSON line on stdout with the same keys.

    /usr/bin/python3 bench/torch_step.py --workload vib-mlp --mode train --threads 2 --seconds 5 --warmup 2

Threads: torch.set_num_threads(N); OMP_WAIT_POLICY must be set in the
environment before the process starts (bench/vs_pytorch.py does that).
Inference runs model.eval() under torch.inference_mode() on the mean path
(z = mu), as ibnet's evaluation does.  Peak RSS (ru_maxrss) includes the
interpreter and `import torch`: that is what a PyTorch process costs.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class VIB(nn.Module):
    """Deep VIB layer on h (N, 2K): mu = h[:, :K], sigma = softplus(h[:, K:] + shift)."""

    def __init__(self, k, shift=-5.0):
        super().__init__()
        self.k, self.shift = k, shift

    def forward(self, h):
        mu, rho = h[:, : self.k], h[:, self.k:]
        sigma = F.softplus(rho + self.shift)
        kl = 0.5 * (mu * mu + sigma * sigma - 1 - 2 * torch.log(sigma)).sum(1)
        self.kl = kl
        if self.training:
            return mu + sigma * torch.randn_like(mu)
        return mu


class VIBCell(nn.Module):
    """cellVIB: 1x1 convs give mu and sigma = softplus(rho + shift) maps."""

    def __init__(self, c, k=1, shift=-5.0):
        super().__init__()
        self.mu = nn.Conv2d(c, c, k, padding=k // 2)
        self.rho = nn.Conv2d(c, c, k, padding=k // 2)
        self.shift = shift

    def forward(self, h):
        mu = self.mu(h)
        sigma = F.softplus(self.rho(h) + self.shift)
        self.kl = 0.5 * (mu * mu + sigma * sigma - 1 - 2 * torch.log(sigma)).flatten(1).sum(1)
        if self.training:
            return mu + sigma * torch.randn_like(mu)
        return mu


class BasicBlock(nn.Module):
    """He et al.'s CIFAR basic block with the option-A (pad) shortcut."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride, self.extra = stride, cout - cin

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        s = x
        if self.stride != 1 or self.extra:
            s = x[:, :, :: self.stride, :: self.stride]
            e = self.extra
            s = F.pad(s, (0, 0, 0, 0, e // 2, e - e // 2))
        return F.relu(h + s)


def mlp(vib):
    layers = [nn.Flatten(), nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU()]
    if vib:
        layers += [nn.Linear(1024, 512), VIB(256), nn.Linear(256, 10)]
    else:
        layers += [nn.Linear(1024, 10)]
    return nn.Sequential(*layers)


def lenet(vib):
    layers = [nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
    if vib:
        layers.append(VIBCell(32))
    layers += [nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
    if vib:
        layers.append(VIBCell(64))
    layers += [nn.Flatten(), nn.Linear(3136, 1024), nn.ReLU(), nn.Linear(1024, 10)]
    return nn.Sequential(*layers)


def resnet20(vib):
    layers = [nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for stage, c in enumerate((16, 32, 64)):
        for b in range(3):
            layers.append(BasicBlock(cin, c, 2 if (stage > 0 and b == 0) else 1))
            cin = c
        if vib:
            layers.append(VIBCell(c))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


# name: (builder, vib, input shape, batch, optimizer, lr, beta) -- as bench/train_step.c
WORKLOADS = {
    "vib-mlp": (mlp, True, (1, 28, 28), 100, "adam", 1e-4, 1e-3),
    "mlp": (mlp, False, (1, 28, 28), 100, "adam", 1e-4, 0.0),
    "lenet": (lenet, False, (1, 28, 28), 64, "sgd", 0.01, 0.0),
    "lenet-vibcells": (lenet, True, (1, 28, 28), 64, "sgd", 0.01, 1e-4),
    "resnet20": (resnet20, False, (3, 32, 32), 128, "sgd", 0.01, 0.0),
    "resnet20-vibcells": (resnet20, True, (3, 32, 32), 128, "sgd", 0.01, 1e-4),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", default="vib-mlp", choices=sorted(WORKLOADS))
    ap.add_argument("--mode", default="train", choices=("train", "infer"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--windows", type=int, default=5)
    ap.add_argument("--batch", type=int, default=0)
    a = ap.parse_args()

    t_setup = time.perf_counter()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    build, vib, shape, batch, optim, lr, beta = WORKLOADS[a.workload]
    if a.batch > 0:
        batch = a.batch
    model = build(vib)
    train = a.mode == "train"
    x = torch.randn(batch, *shape)
    y = torch.randint(0, 10, (batch,))
    cells = [m for m in model.modules() if isinstance(m, (VIB, VIBCell))]
    if train:
        model.train()
        if optim == "adam":
            opt = torch.optim.Adam(model.parameters(), lr=lr)
        else:
            opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)

        def step():
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            for c in cells:
                loss = loss + beta * c.kl.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return logits
    else:
        model.eval()

        def step():
            with torch.inference_mode():
                return model(x)

    out = step()
    t_setup = time.perf_counter() - t_setup
    steps = 1
    t_run = time.perf_counter()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < a.warmup:
        step()
        steps += 1
    wins = []
    length = a.seconds / a.windows
    for _ in range(a.windows):
        n = 0
        ts = time.perf_counter()
        while True:
            out = step()
            n += 1
            el = time.perf_counter() - ts
            if el >= length:
                break
        wins.append(n * batch / el)
        steps += n
    t_run = time.perf_counter() - t_run
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({
        "impl": "pytorch", "version": torch.__version__, "workload": a.workload, "mode": a.mode,
        "threads": a.threads, "batch": batch, "samples_per_s": round(statistics.median(wins), 2),
        "windows": [round(w, 2) for w in wins], "steps": steps, "run_s": round(t_run, 3),
        "setup_s": round(t_setup, 3), "peak_rss_mib": round(rss, 1),
        "params": sum(p.numel() for p in model.parameters()),
        "finite": bool(torch.isfinite(out).all()),
        "blas": loaded_blas(),
        "thread_env": {k: os.environ.get(k) for k in THREAD_VARS},
    }))
    sys.stdout.flush()


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")


def loaded_blas():
    """The BLAS/LAPACK libraries this process has mapped (after the steps ran)."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                name = os.path.basename(path)
                if any(k in name for k in ("blas", "mkl", "lapack", "gomp", "iomp")):
                    libs.add(path)
    except OSError:
        pass
    return sorted(libs)


if __name__ == "__main__":
    main()
