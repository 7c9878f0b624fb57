"""Reference values for tests/test_conv_torch.c: forward and gradients of
conv2d, max/avg pooling and batch norm from PyTorch 1.13, inputs included.

Run: /usr/bin/python3 tests/ref/make_conv_ref.py  (writes tests/fixtures/conv_ops.txt)

Every loss is sum(y * R) with R stored too, so dL/dy = R and each output
element carries its own weight.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import write_fixture  # noqa: E402

torch.manual_seed(20240611)
gen = torch.Generator().manual_seed(7)


def randn(*shape):
    return torch.randn(*shape, generator=gen, dtype=torch.float32)


def leaf(t):
    return t.clone().requires_grad_(True)


out = {}

# conv2d: stride 2, pad 1, bias, non-square input, Cin 3 -> Cout 4
x = randn(2, 3, 7, 6)
w = randn(4, 3, 3, 3) * 0.5
b = randn(4)
xl, wl, bl = leaf(x), leaf(w), leaf(b)
y = F.conv2d(xl, wl, bl, stride=2, padding=1)
R = randn(*y.shape)
(y * R).sum().backward()
out.update({"conv.x": x, "conv.w": w, "conv.b": b, "conv.R": R, "conv.y": y, "conv.dx": xl.grad,
            "conv.dw": wl.grad, "conv.db": bl.grad})

# max-pool k3 s2 p1 (overlapping windows, -inf padding)
x = randn(2, 3, 7, 8)
xl = leaf(x)
y = F.max_pool2d(xl, 3, stride=2, padding=1)
R = randn(*y.shape)
(y * R).sum().backward()
out.update({"maxpool.x": x, "maxpool.R": R, "maxpool.y": y, "maxpool.dx": xl.grad})

# avg-pool k3 s2 p1, count_include_pad=True (the default)
x = randn(2, 3, 7, 8)
xl = leaf(x)
y = F.avg_pool2d(xl, 3, stride=2, padding=1, count_include_pad=True)
R = randn(*y.shape)
(y * R).sum().backward()
out.update({"avgpool.x": x, "avgpool.R": R, "avgpool.y": y, "avgpool.dx": xl.grad})

# batch norm, training mode, 4-D, then eval mode with the updated statistics
x = randn(4, 3, 5, 5) * 2.0 + 0.5
gamma = randn(3)
beta = randn(3)
rm0 = randn(3) * 0.1
rv0 = torch.rand(3, generator=gen) + 0.5
xl, gl, bl = leaf(x), leaf(gamma), leaf(beta)
rm, rv = rm0.clone(), rv0.clone()
y = F.batch_norm(xl, rm, rv, gl, bl, training=True, momentum=0.1, eps=1e-5)
R = randn(*y.shape)
(y * R).sum().backward()
out.update({"bn.x": x, "bn.gamma": gamma, "bn.beta": beta, "bn.rm0": rm0, "bn.rv0": rv0, "bn.R": R, "bn.y": y,
            "bn.dx": xl.grad, "bn.dgamma": gl.grad, "bn.dbeta": bl.grad, "bn.rm1": rm, "bn.rv1": rv})
xl, gl, bl = leaf(x), leaf(gamma), leaf(beta)
y = F.batch_norm(xl, rm, rv, gl, bl, training=False, momentum=0.1, eps=1e-5)
(y * R).sum().backward()
out.update({"bn_eval.y": y, "bn_eval.dx": xl.grad, "bn_eval.dgamma": gl.grad, "bn_eval.dbeta": bl.grad})

# batch norm, training mode, 2-D (N, C)
x = randn(6, 4) * 1.5 - 0.3
gamma = randn(4)
beta = randn(4)
xl, gl, bl = leaf(x), leaf(gamma), leaf(beta)
rm, rv = torch.zeros(4), torch.ones(4)
y = F.batch_norm(xl, rm, rv, gl, bl, training=True, momentum=0.1, eps=1e-5)
R = randn(*y.shape)
(y * R).sum().backward()
out.update({"bn2.x": x, "bn2.gamma": gamma, "bn2.beta": beta, "bn2.R": R, "bn2.y": y, "bn2.dx": xl.grad,
            "bn2.dgamma": gl.grad, "bn2.dbeta": bl.grad, "bn2.rm1": rm, "bn2.rv1": rv})

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "conv_ops.txt")
write_fixture(path, out, comment="conv2d / pooling / batch norm references from PyTorch %s\n"
              "written by tests/ref/make_conv_ref.py" % torch.__version__)
print("wrote", os.path.normpath(path))
