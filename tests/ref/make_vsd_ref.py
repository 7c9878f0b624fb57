"""Reference values for tests/test_vsd.c: the `vsdhead` composite layer
(docs/vsd.md) as a PyTorch module with ibnet's parameter names, and the
VSD loss on its outputs.

Run: /usr/bin/python3 tests/ref/make_vsd_ref.py  (writes tests/fixtures/vsd.txt)

The model is `flatten` then `vsdhead 5 zdim=6 hidden=16,8 p=0 name=head` on
(N, 1, 3, 4) inputs, in training mode (batch statistics), with the
bottleneck noise given as input and dropout off (p=0), so the forward is
deterministic.  The fixture holds the inputs, the noise, the parameters,
the teacher and student logits, mu, sigma, the per-example KL, the loss
CE(teacher) + CE(student) + 2 KL(softmax(teacher) || softmax(student))
with the teacher detached, and every parameter gradient.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from fixture import write_fixture  # noqa: E402

torch.manual_seed(0)
N, D, C, K, H1, H2 = 8, 12, 5, 6, 16, 8


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(D, H1)
        self.bn1 = nn.BatchNorm1d(H1)
        self.fc2 = nn.Linear(H1, H2)
        self.bn2 = nn.BatchNorm1d(H2)
        self.out = nn.Linear(H2, 2 * K)

    def forward(self, v):
        h = F.relu(self.bn1(self.fc1(v)))
        h = F.relu(self.bn2(self.fc2(h)))
        return self.out(h)


class Student(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(K, K // 2)
        self.bn1 = nn.BatchNorm1d(K // 2)
        self.fc2 = nn.Linear(K // 2, C)

    def forward(self, z):
        return self.fc2(F.dropout(F.leaky_relu(self.bn1(self.fc1(z)), 0.1), 0.0, self.training))


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.teacher = nn.Linear(D, C)
        self.encoder = Encoder()
        self.student = Student()

    def forward(self, v, eps):
        t = self.teacher(v)
        h = self.encoder(v)
        mu, sigma = h[:, :K], F.softplus(h[:, K:] - 5.0)
        z = mu + sigma * eps
        kl = 0.5 * (mu ** 2 + sigma ** 2 - 1 - 2 * torch.log(sigma)).sum(1)
        return t, self.student(z), mu, sigma, kl


head = Head()
# wider initial weights than PyTorch's default so sigma and the KL are not tiny
with torch.no_grad():
    head.encoder.out.bias[K:] += 5.0
x = torch.randn(N, 1, 3, 4)
eps = torch.randn(N, K)
y = torch.randint(0, C, (N,))
out = {"x": x, "eps": eps, "y": y.float()}
for name, p in head.named_parameters():
    out["head." + name] = p.detach().clone()
head.train()
t, s, mu, sigma, kl = head(x.reshape(N, D), eps)
lt, ls = F.log_softmax(t.detach(), 1), F.log_softmax(s, 1)
vsd = (lt.exp() * (lt - ls)).sum(1).mean()
loss = F.cross_entropy(t, y) + F.cross_entropy(s, y) + 2.0 * vsd
loss.backward()
out.update({"teacher": t.detach(), "student": s.detach(), "mu": mu.detach(), "sigma": sigma.detach(),
            "kl": kl.detach(), "vsd": vsd.detach().reshape(1), "loss": loss.detach().reshape(1)})
for name, p in head.named_parameters():
    out["grad.head." + name] = p.grad.detach().clone()
here = os.path.dirname(os.path.abspath(__file__))
write_fixture(os.path.join(here, "..", "fixtures", "vsd.txt"), out, __doc__.strip().splitlines()[0])
