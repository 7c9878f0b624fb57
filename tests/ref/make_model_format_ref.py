"""Reference values for tests/test_model_format.c, from PyTorch modules
written independently of ibnet's model format:

- for six built-in models (models/NAME.ibm), the torch.nn equivalent's
  state_dict names and shapes ("<model>:<name>" holds the shape), the
  number of tensors ("<model>.count", num_batches_tracked excluded: ibnet
  does not keep it) and of trainable scalars ("<model>.trainable");
- a small network of residual blocks (identity, zero-pad and 1x1-conv
  shortcuts, pre-activation wide blocks): its initial parameters, an input
  batch, the training-mode logits and the input gradient of the
  cross-entropy ("blocks.*").

Run: /usr/bin/python3 tests/ref/make_model_format_ref.py
(writes tests/fixtures/model_format.txt)
"""
import os
import sys
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from fixture import write_fixture  # noqa: E402


class BasicBlock(nn.Module):
    """ResNet basic block; shortcut 'conv' (1x1 conv + BN) or 'pad' (option A)."""

    def __init__(self, cin, cout, stride=1, shortcut="conv"):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.kind = "identity"
        if stride != 1 or cin != cout:
            self.kind = shortcut
            if shortcut == "conv":
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.stride, self.extra = stride, cout - cin

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        if self.kind == "conv":
            s = self.shortcut(x)
        elif self.kind == "pad":
            s = x[:, :, ::self.stride, ::self.stride]
            front = self.extra // 2
            s = F.pad(s, (0, 0, 0, 0, front, self.extra - front))
        else:
            s = x
        return F.relu(h + s)


class WideBlock(nn.Module):
    """Pre-activation WRN block as in the reference code (szagoruyko/wide-residual-networks)."""

    def __init__(self, cin, cout, stride=1, dropout=0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.equal = stride == 1 and cin == cout
        if not self.equal:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False)
        self.dropout = dropout

    def forward(self, x):
        a = F.relu(self.bn1(x))
        h = F.relu(self.bn2(self.conv1(a)))
        if self.dropout > 0:
            h = F.dropout(h, self.dropout, self.training)
        h = self.conv2(h)
        return h + (x if self.equal else self.shortcut(a))


class Cell(nn.Module):
    """VIB cell: mean and rho maps by k x k convs with C outputs."""

    def __init__(self, c, k=1):
        super().__init__()
        self.mu = nn.Conv2d(c, c, k, padding=k // 2)
        self.rho = nn.Conv2d(c, c, k, padding=k // 2)


class GAP(nn.Module):
    def forward(self, x):
        return x.mean((2, 3))


def seq(*items):
    """nn.Sequential with keys: a (name, module) pair or a module (its index)."""
    d = OrderedDict()
    for i, it in enumerate(items):
        name, mod = it if isinstance(it, tuple) else (str(i), it)
        d[name] = mod
    return nn.Sequential(d)


def cifar_resnet(n):
    def stage(cin, cout, stride):
        return seq(BasicBlock(cin, cout, stride, "pad"), *[BasicBlock(cout, cout) for _ in range(n - 1)])
    return seq(("conv1", nn.Conv2d(3, 16, 3, 1, 1, bias=False)), ("bn1", nn.BatchNorm2d(16)), nn.ReLU(),
               ("layer1", stage(16, 16, 1)), ("layer2", stage(16, 32, 2)), ("layer3", stage(32, 64, 2)),
               GAP(), ("fc", nn.Linear(64, 10)))


def resnet18():
    def stage(cin, cout, stride):
        return seq(BasicBlock(cin, cout, stride), BasicBlock(cout, cout))
    return seq(("conv1", nn.Conv2d(3, 64, 3, 1, 1, bias=False)), ("bn1", nn.BatchNorm2d(64)), nn.ReLU(),
               ("layer1", stage(64, 64, 1)), ("layer2", stage(64, 128, 2)), ("layer3", stage(128, 256, 2)),
               ("layer4", stage(256, 512, 2)), GAP(), ("fc", nn.Linear(512, 10)))


def wrn_16_4():
    def stage(cin, cout, stride):
        return seq(WideBlock(cin, cout, stride), WideBlock(cout, cout))
    return seq(("conv1", nn.Conv2d(3, 16, 3, 1, 1, bias=False)), ("block1", stage(16, 64, 1)),
               ("block2", stage(64, 128, 2)), ("block3", stage(128, 256, 2)), ("bn", nn.BatchNorm2d(256)),
               nn.ReLU(), GAP(), ("fc", nn.Linear(256, 10)))


def vgg_small():
    layers, cin = [], 3
    for cout in (64, 128, 256):
        for _ in range(2):
            layers += [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
        layers.append(nn.MaxPool2d(2))
    return seq(("features", seq(*layers)), nn.Flatten(),
               ("classifier", seq(nn.Dropout(0.5), nn.Linear(4096, 512), nn.ReLU(), nn.Dropout(0.5),
                                  nn.Linear(512, 10))))


def lenet_vibcells():
    return seq(("conv1", nn.Conv2d(1, 32, 5, padding=2)), nn.ReLU(), nn.MaxPool2d(2), ("cell1", Cell(32)),
               ("conv2", nn.Conv2d(32, 64, 5, padding=2)), nn.ReLU(), nn.MaxPool2d(2), ("cell2", Cell(64)),
               nn.Flatten(), ("fc1", nn.Linear(3136, 1024)), nn.ReLU(), ("fc2", nn.Linear(1024, 10)))


def vib_mlp():
    return seq(nn.Flatten(), ("fc1", nn.Linear(784, 1024)), nn.ReLU(), ("fc2", nn.Linear(1024, 1024)), nn.ReLU(),
               ("fc3", nn.Linear(1024, 512)), ("vib", nn.Identity()), ("decoder", nn.Linear(256, 10)))


out = {}
for name, make in [("resnet20", lambda: cifar_resnet(3)), ("resnet18", resnet18), ("wrn-16-4", wrn_16_4),
                   ("vgg-small", vgg_small), ("lenet-vibcells", lenet_vibcells), ("vib-mlp", vib_mlp)]:
    model = make()
    sd = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    for k, v in sd.items():
        out["%s:%s" % (name, k)] = torch.tensor(list(v.shape), dtype=torch.float32)
    out[name + ".count"] = torch.tensor([len(sd)], dtype=torch.float32)
    out[name + ".trainable"] = torch.tensor([sum(p.numel() for p in model.parameters())], dtype=torch.float32)

# ---- the residual blocks network (see test_torch_blocks for its description) ----
torch.manual_seed(0)
blocks = seq(("conv1", nn.Conv2d(3, 4, 3, 1, 1, bias=False)), ("bn1", nn.BatchNorm2d(4)), nn.ReLU(),
             BasicBlock(4, 4), BasicBlock(4, 8, 2, "pad"), BasicBlock(8, 12, 2, "conv"),
             WideBlock(12, 16), WideBlock(16, 16), nn.MaxPool2d(2), nn.LeakyReLU(0.2), GAP(),
             ("fc", nn.Linear(16, 5)))
# Non-trivial batch-norm affine parameters, so a swapped gamma/beta shows.
with torch.no_grad():
    for m in blocks.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.5, 0.5)
blocks.train()
for k, p in blocks.named_parameters():
    out["blocks." + k] = p.detach().clone()
x = torch.randn(4, 3, 8, 8, requires_grad=True)
y = torch.tensor([0, 3, 1, 4])
logits = blocks(x)
F.cross_entropy(logits, y).backward()
out["blocks.x"] = x.detach()
out["blocks.y"] = y.float()
out["blocks.logits"] = logits.detach()
out["blocks.dx"] = x.grad

here = os.path.dirname(os.path.abspath(__file__))
write_fixture(os.path.join(here, "..", "fixtures", "model_format.txt"), out,
              comment="made by tests/ref/make_model_format_ref.py")
