"""Reference values for tests/test_softmax_torch.c (tests/fixtures/softmax_ops.txt).

log_softmax, softmax, cross-entropy without and with label smoothing (loss and
d loss / d logits), and the entropy of a softmax with the gradient of a
weighted sum of entropies.  Rows include large logits (+-50, 1e3) to show the
C code is stable where a naive exp would overflow.  Inputs are float32; the
references are computed in float64 from those exact float32 values.

Run: /usr/bin/python3 tests/ref/make_softmax_ref.py
"""
import os

import torch
import torch.nn.functional as F

from fixture import write_fixture

torch.manual_seed(0)
N, C = 7, 5
x = (torch.rand(N, C) * 6 - 3).float()
x[1] = torch.tensor([50.0, -50.0, 0.0, 10.0, -10.0])     # one dominant logit
x[2] = torch.tensor([-50.0, -50.0, -50.0, -49.0, -50.0])  # all very negative
x[3] = torch.tensor([1000.0, 999.0, 998.0, -1000.0, 0.0])  # exp would overflow float32
x[4] = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.5])            # uniform: entropy log C
labels = torch.tensor([2, 1, 3, 4, 0, 1, 3])             # rows 3: label on a -inf-like logit
w = (torch.rand(N) * 2 - 1).float()                       # weights for sum(w * H)

xd = x.double()
refs = {"x": x, "labels": labels.float(), "w": w}
refs["log_softmax"] = F.log_softmax(xd, dim=1)
refs["softmax"] = F.softmax(xd, dim=1)
for tag, s in (("ce0", 0.0), ("ce1", 0.1), ("ce3", 0.3)):
    xr = xd.clone().requires_grad_(True)
    loss = F.cross_entropy(xr, labels, label_smoothing=s)
    loss.backward()
    refs[tag + "_loss"] = loss.detach().reshape(1)
    refs[tag + "_grad"] = xr.grad
xr = xd.clone().requires_grad_(True)
logp = F.log_softmax(xr, dim=1)
H = -(logp.exp() * logp).sum(dim=1)
(H * w.double()).sum().backward()
refs["entropy"] = H.detach()
refs["entropy_grad"] = xr.grad

here = os.path.dirname(os.path.abspath(__file__))
write_fixture(os.path.join(here, "..", "fixtures", "softmax_ops.txt"), refs,
              comment="Made by tests/ref/make_softmax_ref.py with PyTorch %s (float64 references)." % torch.__version__)
