"""Reference values for tests/test_models_torch.c: a small MLP, a small CNN
with batch norm and pooling, and a Deep VIB layer (noise given as input).

Run: /usr/bin/python3 tests/ref/make_models_ref.py  (writes tests/fixtures/models.txt)

For each model the fixture holds the inputs, the initial parameters (named
as ibnet names them, which is PyTorch's naming), the forward outputs, the
loss, every parameter gradient and the input gradient; for the CNN also the
running statistics after the training-mode forward.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from fixture import write_fixture  # noqa: E402

torch.manual_seed(0)
out = {}


def add_params(prefix, module):
    for name, p in module.named_parameters():
        out[prefix + name] = p.detach().clone()


def add_grads(prefix, module):
    for name, p in module.named_parameters():
        out[prefix + "grad." + name] = p.grad.detach().clone()


# ---- MLP: 20 -> 32 (relu) -> 16 (tanh) -> 5, cross-entropy ----
class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 32)
        self.fc2 = nn.Linear(32, 16)
        self.fc3 = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc3(torch.tanh(self.fc2(F.relu(self.fc1(x)))))


mlp = MLP()
x = torch.randn(8, 20, requires_grad=True)
y = torch.randint(0, 5, (8,))
add_params("mlp.", mlp)
logits = mlp(x)
loss = F.cross_entropy(logits, y)
loss.backward()
out["mlp.x"] = x.detach()
out["mlp.y"] = y.float()
out["mlp.logits"] = logits.detach()
out["mlp.loss"] = loss.detach().reshape(1)
out["mlp.dx"] = x.grad
add_grads("mlp.", mlp)


# ---- CNN: conv3x3(3->8,p1) bn relu maxpool2 conv3x3(8->16,p1,s1) bn relu avgpool2 fc(16*3*3 -> 10) ----
class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16 * 3 * 3, 10)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        h = F.avg_pool2d(F.relu(self.bn2(self.conv2(h))), 2)
        return self.fc(h.flatten(1))


cnn = CNN()
with torch.no_grad():  # non-trivial affine parameters so their gradients matter
    cnn.bn1.weight.uniform_(0.5, 1.5)
    cnn.bn1.bias.uniform_(-0.5, 0.5)
    cnn.bn2.weight.uniform_(0.5, 1.5)
    cnn.bn2.bias.uniform_(-0.5, 0.5)
x = torch.randn(4, 3, 12, 12, requires_grad=True)
y = torch.randint(0, 10, (4,))
add_params("cnn.", cnn)
logits = cnn(x)
loss = F.cross_entropy(logits, y)
loss.backward()
out["cnn.x"] = x.detach()
out["cnn.y"] = y.float()
out["cnn.logits"] = logits.detach()
out["cnn.loss"] = loss.detach().reshape(1)
out["cnn.dx"] = x.grad
add_grads("cnn.", cnn)
for bn in ("bn1", "bn2"):
    out["cnn.after." + bn + ".running_mean"] = getattr(cnn, bn).running_mean
    out["cnn.after." + bn + ".running_var"] = getattr(cnn, bn).running_var


# ---- Deep VIB: 20 -> 32 relu -> 2K (K = 6); mu, sigma = softplus(rho - 5); z = mu + sigma eps;
#      decoder 6 -> 5; loss = CE + beta * mean(KL) ----
class VIB(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.k = k
        self.enc1 = nn.Linear(20, 32)
        self.enc2 = nn.Linear(32, 2 * k)
        self.dec = nn.Linear(k, 5)

    def forward(self, x, eps):
        h = self.enc2(F.relu(self.enc1(x)))
        mu, rho = h[:, :self.k], h[:, self.k:]
        sigma = F.softplus(rho - 5.0)
        z = mu + sigma * eps
        kl = 0.5 * (mu.pow(2) + sigma.pow(2) - 1 - 2 * torch.log(sigma)).sum(1)
        return self.dec(z), z, kl


K, beta = 6, 1e-2
vib = VIB(K)
x = torch.randn(8, 20, requires_grad=True)
eps = torch.randn(8, K)
y = torch.randint(0, 5, (8,))
add_params("vib.", vib)
logits, z, kl = vib(x, eps)
ce = F.cross_entropy(logits, y)
loss = ce + beta * kl.mean()
loss.backward()
out["vib.x"] = x.detach()
out["vib.eps"] = eps
out["vib.y"] = y.float()
out["vib.z"] = z.detach()
out["vib.kl"] = kl.detach()
out["vib.logits"] = logits.detach()
out["vib.loss"] = loss.detach().reshape(1)
out["vib.dx"] = x.grad
add_grads("vib.", vib)

here = os.path.dirname(os.path.abspath(__file__))
write_fixture(os.path.join(here, "..", "fixtures", "models.txt"), out,
              comment="made by tests/ref/make_models_ref.py with torch %s" % torch.__version__)
print("wrote", len(out), "tensors")
