"""Reference trajectories of PyTorch 1.13's optimizers, gradient clipping and
learning-rate schedulers for tests/test_optim.c.

Problem: W (3,4), b (3) from fixed values, loss = sum((x W^T + b - y)^2)
with fixed x (6,4), y (6,3).  Each configuration runs 5 steps; for step t we
store the gradients the step used (before clipping) as NAME.gW.t / NAME.gb.t
and the parameters after it as NAME.W.t / NAME.b.t, so the C test feeds the
same gradients to its optimizer and compares the parameters.  The final
optimizer state is stored as NAME.<state>.W / NAME.<state>.b.

Run: /usr/bin/python3 tests/ref/make_optim_ref.py (writes tests/fixtures/optim.txt)
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import write_fixture  # noqa: E402

torch.set_default_dtype(torch.float32)
rs = np.random.RandomState(20240611)
W0 = rs.uniform(-1, 1, (3, 4)).astype(np.float32)
b0 = rs.uniform(-1, 1, (3,)).astype(np.float32)
X = torch.tensor(rs.uniform(-1, 1, (6, 4)).astype(np.float32))
Y = torch.tensor(rs.uniform(-1, 1, (6, 3)).astype(np.float32))

out = {"W0": W0, "b0": b0}

CONFIGS = {
    # name: (optimizer class, kwargs, clip max_norm or None)
    "sgd": (torch.optim.SGD, dict(lr=0.02), None),
    "sgd_mom": (torch.optim.SGD, dict(lr=0.02, momentum=0.9, weight_decay=1e-2), None),
    "sgd_nest": (torch.optim.SGD, dict(lr=0.02, momentum=0.9, nesterov=True, weight_decay=1e-2), None),
    "sgd_damp": (torch.optim.SGD, dict(lr=0.02, momentum=0.9, dampening=0.5, weight_decay=1e-2), None),
    "adam_vib": (torch.optim.Adam, dict(lr=0.01, betas=(0.5, 0.999), eps=1e-8), None),
    "adam_wd": (torch.optim.Adam, dict(lr=0.01, betas=(0.9, 0.999), weight_decay=0.1), None),
    "adamw": (torch.optim.AdamW, dict(lr=0.01, weight_decay=0.05), None),
    "sgd_clip": (torch.optim.SGD, dict(lr=0.02, momentum=0.9), 1.0),
    "adam_clip": (torch.optim.Adam, dict(lr=0.01), 2.0),
    "adamax": (torch.optim.Adamax, dict(lr=0.01), None),  # the IMB reference script's optimizer
    "adamax_wd": (torch.optim.Adamax, dict(lr=0.02, betas=(0.5, 0.99), weight_decay=0.1), None),
    "adamax_clip": (torch.optim.Adamax, dict(lr=0.01), 5.0),
}
STATE = {torch.optim.SGD: ["momentum_buffer"], torch.optim.Adam: ["exp_avg", "exp_avg_sq"],
         torch.optim.AdamW: ["exp_avg", "exp_avg_sq"], torch.optim.Adamax: ["exp_avg", "exp_inf"]}


def loss_of(W, b):
    return ((X @ W.t() + b - Y) ** 2).sum()


for name, (cls, kw, clip) in CONFIGS.items():
    W = torch.tensor(W0, requires_grad=True)
    b = torch.tensor(b0, requires_grad=True)
    opt = cls([W, b], **kw)
    for t in range(1, 6):
        opt.zero_grad()
        loss_of(W, b).backward()
        out["%s.gW.%d" % (name, t)] = W.grad.clone()
        out["%s.gb.%d" % (name, t)] = b.grad.clone()
        if clip is not None:
            norm = torch.nn.utils.clip_grad_norm_([W, b], clip)
            out["%s.norm.%d" % (name, t)] = norm.reshape(1)
            out["%s.cW.%d" % (name, t)] = W.grad.clone()
            out["%s.cb.%d" % (name, t)] = b.grad.clone()
        opt.step()
        out["%s.W.%d" % (name, t)] = W.detach().clone()
        out["%s.b.%d" % (name, t)] = b.detach().clone()
    if cls is not torch.optim.SGD or kw.get("momentum", 0) != 0:
        for s in STATE[cls]:
            out["%s.%s.W" % (name, s)] = opt.state[W][s]
            out["%s.%s.b" % (name, s)] = opt.state[b][s]

# A parameter that joins after two steps (a param group added later): it
# gets its own Adam step count, so its first bias correction is step 1.
W = torch.tensor(W0, requires_grad=True)
b = torch.tensor(b0, requires_grad=True)
opt = torch.optim.Adam([W], lr=0.01, betas=(0.5, 0.999))
for t in range(1, 6):
    if t == 3:
        opt.add_param_group({"params": [b]})
    opt.zero_grad()
    b.grad = None
    loss_of(W, b).backward()
    out["adam_late.gW.%d" % t] = W.grad.clone()
    out["adam_late.gb.%d" % t] = b.grad.clone()
    opt.step()
    out["adam_late.W.%d" % t] = W.detach().clone()
    out["adam_late.b.%d" % t] = b.detach().clone()

# Schedulers: the lr in force during epochs 0..N-1.


def lrs(make, base, n):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base)
    sch = make(opt)
    got = []
    for _ in range(n):
        got.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    return np.array(got, dtype=np.float32)


out["sched.step"] = lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.97), 1e-4, 12)
out["sched.multistep"] = lrs(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[3, 7], gamma=0.1),
                             0.1, 10)
out["sched.cosine"] = lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=1e-3),
                          0.1, 11)
out["sched.exponential"] = lrs(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9), 0.05, 10)

here = os.path.dirname(os.path.abspath(__file__))
write_fixture(os.path.join(here, "..", "fixtures", "optim.txt"), out,
              comment="Written by tests/ref/make_optim_ref.py (PyTorch %s); do not edit." % torch.__version__)
