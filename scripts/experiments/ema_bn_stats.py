"""Which batch-norm statistics go with a run's EMA weights?  Opens a run's
last.safetensors (a batch-norm model trained with --ema) in PyTorch through
ibnet.torch and prints the test accuracy (mean path, the first N_TEST test
images) of:

  raw weights + raw statistics        what --ema 0 evaluates
  EMA weights + EMA statistics        the file's ema.<buffer>: since --ema-bn-batches, the statistics
                                      ibnet recomputed for the EMA weights (its order of the training
                                      batches); a file without them (--ema-bn-batches 0, or written
                                      before) gives the next row.  (docs/runs/ema-batchnorm/*/after
                                      came from a trial build that averaged them instead; ibnet.torch
                                      no longer debiases such files' buffers.)
  EMA weights + raw statistics        what ibnet evaluates
  EMA weights + recomputed statistics the statistics of the EMA weights themselves: a forward pass in
                                      training mode over the first N_TRAIN training images (batches of
                                      100, no augmentation), cumulative average (torch's update_bn)

Usage (the binding's library and the data as the run used them):
  IBNET_LIBRARY=build/libibnet.so PYTHONPATH=python /usr/bin/python3 \\
    scripts/experiments/ema_bn_stats.py RUN N_TRAIN N_TEST DATASET [DATA_DIR]
The run must have used the default input normalisation (symmetric, 2x - 1).
"""
import sys

import numpy as np
import torch

import ibnet
import ibnet.torch as it


def main():
    run, n_train, n_test, spec = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    data_dir = sys.argv[5] if len(sys.argv) > 5 else None
    torch.set_num_threads(1)
    train = ibnet.open_dataset(spec, "train", data_dir=data_dir)
    test = ibnet.open_dataset(spec, "test", data_dir=data_dir)

    def inputs(ds, n):
        return torch.from_numpy(ds.images[:n].astype(np.float32) / 255.0 * 2 - 1)

    x_train, x_test = inputs(train, n_train), inputs(test, n_test)
    y_test = torch.from_numpy(test.labels[:n_test].astype(np.int64))

    def accuracy(m):
        m.eval()
        with torch.no_grad():
            logits = torch.cat([m(x_test[i:i + 500]) for i in range(0, n_test, 500)])
        return float((logits.argmax(1) == y_test).float().mean())

    def norms(m):
        return [b for b in m.modules() if isinstance(b, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]

    path = f"{run}/last.safetensors"
    raw = it.load(path, weights="raw")
    print(f"raw weights + raw statistics        {accuracy(raw):.4f}")
    print(f"EMA weights + EMA statistics        {accuracy(it.load(path, weights='ema')):.4f}")
    mixed = it.load(path, weights="ema")
    for a, b in zip(norms(mixed), norms(raw)):
        a.running_mean.copy_(b.running_mean)
        a.running_var.copy_(b.running_var)
    print(f"EMA weights + raw statistics        {accuracy(mixed):.4f}")
    fresh = it.load(path, weights="ema")
    for b in norms(fresh):
        b.running_mean.zero_()
        b.running_var.fill_(1)
        b.momentum = None  # cumulative average over the batches
        b.num_batches_tracked = torch.tensor(0)
    fresh.train()
    with torch.no_grad():
        for i in range(0, n_train, 100):
            fresh(x_train[i:i + 100])
    print(f"EMA weights + recomputed statistics {accuracy(fresh):.4f}")


if __name__ == "__main__":
    main()
