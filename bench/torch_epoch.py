#!/usr/bin/python3
"""torch_epoch.py — one training epoch of an ibnet recipe, written in PyTorch
the way a careful user would write it, timed as a whole process and by phase.
The PyTorch side of bench/epoch_vs_pytorch.py.

    /usr/bin/python3 bench/torch_epoch.py --recipe deep-vib --threads 2 --data ../shared/data
    /usr/bin/python3 bench/torch_epoch.py --recipe cifar-resnet --threads 2 --workers 2

deep-vib (ibnet train --recipe deep-vib --epochs 1): vib-mlp on MNIST from the
same gzipped IDX files, inputs 2p/255 - 1, batch 100 reshuffled by a seeded
permutation, Adam (lr 1e-4, betas 0.5/0.999), CE + 1e-3 KL, an EMA of the
weights (decay 0.999, zero-debiased) updated after every step with
torch._foreach ops, then the test evaluation with the EMA weights: the mean
path z = mu, one draw, and the softmax average of 12 draws, on all 10,000
images in batches of 500.  The encoder runs once per batch; only the sampling
and the decoder run 12 times (what ibnet's evaluator does from the first
random op).

cifar-resnet (ibnet train --recipe cifar-resnet --epochs 1): ResNet-20 on
CIFAR-10, per-channel standardisation, random crop from a 4-pixel zero pad
and a horizontal flip (numpy in a Dataset: Debian has no torchvision),
DataLoader with --workers processes, batch 128, SGD (momentum 0.9, Nesterov,
weight decay 5e-4), lr 0.1 with one epoch of linear warm-up (the recipe's
first epoch), then the test evaluation (batch 500).

One JSON line on stdout: process wall time (from the interpreter's start,
import torch included), data-loading, training and evaluation seconds,
samples/s of the training phase, test accuracy, peak RSS.
"""
import argparse
import gzip
import json
import os
import resource
import sys
import time

T_START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_step import VIB, mlp, resnet20  # noqa: E402

T_IMPORT = time.perf_counter() - T_START


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(data, *names):
    for n in names:
        for root in (data, os.path.join(data, "mnist"), os.path.join(data, "cifar10"), os.path.join(data, "cifar-10")):
            p = os.path.join(root, n)
            if os.path.exists(p):
                return p
    sys.exit("torch_epoch: none of %s under %s" % (", ".join(names), data))


def mnist(data):
    xs = {}
    for split, pre in (("train", "train"), ("test", "t10k")):
        x = read_idx(find(data, pre + "-images-idx3-ubyte.gz"))
        y = read_idx(find(data, pre + "-labels-idx1-ubyte.gz"))
        xs[split] = (torch.from_numpy(x.astype(np.float32) * (2.0 / 255.0) - 1.0).reshape(-1, 1, 28, 28),
                     torch.from_numpy(y.astype(np.int64)))
    return xs


def cifar10(data):
    """The binary version: records of 1 label byte and 3,072 pixel bytes, gzipped."""
    def read(name):
        with gzip.open(find(data, os.path.join("cifar-10-batches-bin", name)), "rb") as f:
            r = np.frombuffer(f.read(), dtype=np.uint8).reshape(-1, 3073)
        return r[:, 1:].reshape(-1, 3, 32, 32), r[:, 0].astype(np.int64)
    parts = [read("data_batch_%d.bin.gz" % i) for i in range(1, 6)]
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])), read("test_batch.bin.gz")


class Augmented(torch.utils.data.Dataset):
    """CIFAR-10 training images: standardise, crop from a 4-pixel zero pad, flip."""

    def __init__(self, x, y, mean, std, seed):
        self.x, self.y, self.mean, self.std, self.seed = x, y, mean, std, seed

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        rng = np.random.default_rng((self.seed, i))
        img = (self.x[i].astype(np.float32) / 255.0 - self.mean) / self.std
        pad = np.zeros((3, 40, 40), np.float32)
        pad[:, 4:36, 4:36] = img
        dy, dx = rng.integers(0, 9, 2)
        img = pad[:, dy:dy + 32, dx:dx + 32]
        if rng.random() < 0.5:
            img = img[:, :, ::-1]
        return torch.from_numpy(np.ascontiguousarray(img)), int(self.y[i])


def deep_vib(a):
    t0 = time.perf_counter()
    d = mnist(a.data)
    xtr, ytr = d["train"]
    xte, yte = d["test"]
    if a.limit:
        xtr, ytr, xte, yte = xtr[:a.limit], ytr[:a.limit], xte[:a.limit], yte[:a.limit]
    t_data = time.perf_counter() - t0

    torch.manual_seed(a.seed)
    model = mlp(True)
    vib = [m for m in model.modules() if isinstance(m, VIB)][0]
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.5, 0.999))
    params = [p for p in model.parameters()]
    ema = [p.detach().clone().zero_() for p in params]
    decay = 0.999

    t0 = time.perf_counter()
    model.train()
    order = torch.randperm(len(ytr))
    steps = 0
    for j in range(0, len(ytr) - 99, 100):
        idx = order[j:j + 100]
        x, y = xtr[idx], ytr[idx]
        logits = model(x)
        loss = F.cross_entropy(logits, y) + 1e-3 * vib.kl.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            torch._foreach_mul_(ema, decay)
            torch._foreach_add_(ema, [p.detach() for p in params], alpha=1 - decay)
        steps += 1
    t_train = time.perf_counter() - t0

    t0 = time.perf_counter()
    debias = 1.0 / (1.0 - decay ** steps)
    with torch.no_grad():
        saved = [p.detach().clone() for p in params]
        for p, e in zip(params, ema):
            p.copy_(e * debias)
    model.eval()
    enc, dec = model[:6], model[7:]
    correct = {"mean": 0, "1shot": 0, "avg": 0}
    with torch.inference_mode():
        for j in range(0, len(yte), 500):
            x, y = xte[j:j + 500], yte[j:j + 500]
            h = enc(x)
            mu, sigma = h[:, :256], F.softplus(h[:, 256:] - 5.0)
            correct["mean"] += (dec(mu).argmax(1) == y).sum().item()
            prob = 0
            for s in range(12):
                p = F.softmax(dec(mu + sigma * torch.randn_like(mu)), 1)
                if s == 0:
                    correct["1shot"] += (p.argmax(1) == y).sum().item()
                prob = prob + p
            correct["avg"] += (prob.argmax(1) == y).sum().item()
    with torch.no_grad():
        for p, s in zip(params, saved):
            p.copy_(s)
    t_eval = time.perf_counter() - t0
    return t_data, t_train, t_eval, steps * 100, {k: v / len(yte) for k, v in correct.items()}


def cifar_resnet(a):
    t0 = time.perf_counter()
    (xtr, ytr), (xte, yte) = cifar10(a.data)
    if a.limit:
        xtr, ytr, xte, yte = xtr[:a.limit], ytr[:a.limit], xte[:a.limit], yte[:a.limit]
    mean = (xtr.astype(np.float32) / 255.0).mean(axis=(0, 2, 3)).reshape(3, 1, 1)
    std = (xtr.astype(np.float32) / 255.0).std(axis=(0, 2, 3)).reshape(3, 1, 1)
    xte_t = torch.from_numpy((xte.astype(np.float32) / 255.0 - mean) / std)
    yte_t = torch.from_numpy(yte)
    loader = torch.utils.data.DataLoader(Augmented(xtr, ytr, mean, std, a.seed), batch_size=128, shuffle=True,
                                         num_workers=a.workers, drop_last=True,
                                         generator=torch.Generator().manual_seed(a.seed),
                                         persistent_workers=False)
    t_data = time.perf_counter() - t0

    torch.manual_seed(a.seed)
    model = resnet20(False)
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(m.weight)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    total = len(ytr) // 128

    t0 = time.perf_counter()
    model.train()
    steps = 0
    for x, y in loader:
        for g in opt.param_groups:  # linear warm-up over the first epoch
            g["lr"] = 0.1 * (steps + 1) / total
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
    t_train = time.perf_counter() - t0

    t0 = time.perf_counter()
    model.eval()
    correct = 0
    with torch.inference_mode():
        for j in range(0, len(yte_t), 500):
            correct += (model(xte_t[j:j + 500]).argmax(1) == yte_t[j:j + 500]).sum().item()
    t_eval = time.perf_counter() - t0
    return t_data, t_train, t_eval, steps * 128, {"mean": correct / len(yte_t)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", choices=("deep-vib", "cifar-resnet"), default="deep-vib")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers (cifar-resnet)")
    ap.add_argument("--data", default=os.environ.get("IBNET_DATA", "../shared/data"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0, help="first N training and test images only (a smoke test)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    run = deep_vib if a.recipe == "deep-vib" else cifar_resnet
    t_data, t_train, t_eval, samples, acc = run(a)
    wall = time.perf_counter() - T_START
    print(json.dumps({
        "impl": "pytorch", "version": torch.__version__, "recipe": a.recipe, "threads": a.threads,
        "workers": a.workers if a.recipe == "cifar-resnet" else 0,
        "wall_s": round(wall, 3), "import_s": round(T_IMPORT, 3), "data_s": round(t_data, 3),
        "train_s": round(t_train, 3), "eval_s": round(t_eval, 3),
        "train_samples_per_s": round(samples / t_train, 1), "test_acc": acc,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)}))


if __name__ == "__main__":
    main()
