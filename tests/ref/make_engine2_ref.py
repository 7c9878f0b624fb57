"""Reference values for tests/test_engine2_torch.c: the ops the later IB
methods need — logsumexp and log-mean-exp along an axis, PixelCNN masked
convolutions (masks A and B), the gated activation tanh(a) * sigmoid(b) and
row-wise L2 normalisation — forward values and gradients from PyTorch.

Run: /usr/bin/python3 tests/ref/make_engine2_ref.py  (writes tests/fixtures/engine2_ops.txt)

Every loss is sum(y * R) with R stored too, so dL/dy = R.
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import write_fixture  # noqa: E402

gen = torch.Generator().manual_seed(11)


def randn(*shape, scale=1.0):
    return torch.randn(*shape, generator=gen, dtype=torch.float32) * scale


def leaf(t):
    return t.clone().requires_grad_(True)


out = {}

# logsumexp / log-mean-exp along axis 1 of a (3, 5, 4) tensor, with large values in one slice
x = randn(3, 5, 4, scale=3.0)
x[1, :, 2] += 60.0
for name, fn in (("lse", lambda t: torch.logsumexp(t, 1)),
                 ("lme", lambda t: torch.logsumexp(t, 1) - math.log(t.shape[1]))):
    xl = leaf(x)
    y = fn(xl)
    R = randn(*y.shape)
    (y * R).sum().backward()
    out.update({name + ".x": x, name + ".R": R, name + ".y": y, name + ".dx": xl.grad})


# masked convolutions: 5x5 kernels, pad 2, 3 -> 4 channels
def mask(k, kind):
    m = torch.ones(k, k)
    c = k // 2
    m[c, c + (1 if kind == "B" else 0):] = 0
    m[c + 1:, :] = 0
    return m


for kind in ("A", "B"):
    x = randn(2, 3, 6, 7)
    w = randn(4, 3, 5, 5, scale=0.3)
    b = randn(4)
    xl, wl, bl = leaf(x), leaf(w), leaf(b)
    y = F.conv2d(xl, wl * mask(5, kind), bl, padding=2)
    R = randn(*y.shape)
    (y * R).sum().backward()
    p = "mconv" + kind
    out.update({p + ".x": x, p + ".w": w, p + ".b": b, p + ".R": R, p + ".y": y, p + ".dx": xl.grad,
                p + ".dw": wl.grad, p + ".db": bl.grad})

# gated activation
a, b = randn(2, 3, 4, 4, scale=2.0), randn(2, 3, 4, 4, scale=2.0)
al, bl = leaf(a), leaf(b)
y = torch.tanh(al) * torch.sigmoid(bl)
R = randn(*y.shape)
(y * R).sum().backward()
out.update({"gated.a": a, "gated.b": b, "gated.R": R, "gated.y": y, "gated.da": al.grad, "gated.db": bl.grad})

# row-wise L2 normalisation (eps 1e-12 as F.normalize)
x = randn(5, 7)
xl = leaf(x)
y = F.normalize(xl, dim=1, eps=1e-12)
R = randn(*y.shape)
(y * R).sum().backward()
out.update({"l2n.x": x, "l2n.R": R, "l2n.y": y, "l2n.dx": xl.grad})

here = os.path.dirname(os.path.abspath(__file__))
write_fixture(os.path.join(here, "..", "fixtures", "engine2_ops.txt"), out,
              comment="made by tests/ref/make_engine2_ref.py with torch %s" % torch.__version__)
print("wrote", len(out), "tensors")
