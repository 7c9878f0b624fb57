"""PyTorch references for the stochastic layers and divergences
(tests/fixtures/stochastic_ops.txt, read by tests/test_stochastic_torch.c).

Inputs are drawn in float32 and saved; every reference is computed from
those float32 values in float64, so the fixture holds the exact answer
rounded once to float32 and the C test measures only its own error.
Each case reduces its outputs to a scalar with saved random weights
(loss = sum(out * w)) and stores the gradient of that loss w.r.t. every
input.  Run: /usr/bin/python3 tests/ref/make_stochastic_ref.py
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import write_fixture  # noqa: E402

N, K, C = 8, 16, 10
rng = np.random.RandomState(20240611)
out = {}


def f32(a):
    return np.asarray(a, dtype=np.float32)


def leaf(name, a):
    """Save a float32 input and return it as a float64 leaf tensor."""
    a = f32(a)
    out[name] = a
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def uniform(shape, lo, hi):
    return rng.uniform(lo, hi, size=shape)


def grads(prefix, loss, inputs):
    loss.backward()
    for name, t in inputs.items():
        out["%s.grad.%s" % (prefix, name)] = t.grad


# ---- VIB layer: sigma = softplus(rho - 5), z = mu + sigma eps, KL to N(0,1) ----
mu = leaf("vib.mu", uniform((N, K), -2, 2))
rho = leaf("vib.rho", uniform((N, K), -1, 7))  # sigma from 0.0025 to 2.1
eps = leaf("vib.eps", rng.standard_normal((N, K)))
wz = leaf("vib.wz", uniform((N, K), -1, 1))
sigma = F.softplus(rho - 5.0)
z = mu + sigma * eps
kl = 0.5 * (mu ** 2 + sigma ** 2 - 1 - 2 * torch.log(sigma)).sum(-1)
loss = (z * wz).sum() + 0.5 * kl.mean()
out["vib.z"], out["vib.kl"], out["vib.loss"] = z, kl, loss.reshape(1)
grads("vib", loss, {"mu": mu, "rho": rho, "eps": eps})

# ---- Gaussian log-density, own parameters and a prior shared by the batch ----
x = leaf("ld.x", uniform((N, K), -2, 2))
mu = leaf("ld.mu", uniform((N, K), -1, 1))
sg = leaf("ld.sigma", uniform((N, K), 0.3, 1.5))
pm = leaf("ld.pmu", uniform((1, K), -1, 1))
ps = leaf("ld.psigma", uniform((1, K), 0.3, 1.5))
w1 = leaf("ld.w1", uniform((N,), -1, 1))
w2 = leaf("ld.w2", uniform((N,), -1, 1))
ld = Normal(mu, sg).log_prob(x).sum(-1)
ldp = Normal(pm, ps).log_prob(x).sum(-1)
out["ld.out"], out["ld.outp"] = ld, ldp
grads("ld", (ld * w1).sum() + (ldp * w2).sum(), {"x": x, "mu": mu, "sigma": sg, "pmu": pm, "psigma": ps})

# ---- KL between Gaussians, full and with a broadcast prior ----
m1 = leaf("klg.m1", uniform((N, K), -1, 1))
s1 = leaf("klg.s1", uniform((N, K), 0.3, 1.5))
m2 = leaf("klg.m2", uniform((N, K), -1, 1))
s2 = leaf("klg.s2", uniform((N, K), 0.3, 1.5))
pm = leaf("klg.pmu", uniform((1, K), -1, 1))
ps = leaf("klg.psigma", uniform((1, K), 0.3, 1.5))
w1 = leaf("klg.w1", uniform((N,), -1, 1))
w2 = leaf("klg.w2", uniform((N,), -1, 1))
klg = kl_divergence(Normal(m1, s1), Normal(m2, s2)).sum(-1)
klp = kl_divergence(Normal(m1, s1), Normal(pm.expand(N, K), ps.expand(N, K))).sum(-1)
out["klg.out"], out["klg.outp"] = klg, klp
grads("klg", (klg * w1).sum() + (klp * w2).sum(),
      {"m1": m1, "s1": s1, "m2": m2, "s2": s2, "pmu": pm, "psigma": ps})

# ---- Bernoulli KL, full q and a prior (1, K) ----
p = leaf("klb.p", uniform((N, K), 0.05, 0.95))
q = leaf("klb.q", uniform((N, K), 0.05, 0.95))
pr = leaf("klb.prior", uniform((1, K), 0.05, 0.95))
w1 = leaf("klb.w1", uniform((N,), -1, 1))
w2 = leaf("klb.w2", uniform((N,), -1, 1))


def kl_bern(p, q):
    return (p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))).sum(-1)


klb, klbp = kl_bern(p, q), kl_bern(p, pr)
# torch's own Bernoulli KL agrees with the formula
assert torch.allclose(klb, kl_divergence(torch.distributions.Bernoulli(probs=p),
                                         torch.distributions.Bernoulli(probs=q)).sum(-1))
out["klb.out"], out["klb.outp"] = klb, klbp
grads("klb", (klb * w1).sum() + (klbp * w2).sum(), {"p": p, "q": q, "prior": pr})

# ---- categorical KL and JS from log-probabilities (free arguments) ----
def logprobs(shape):
    return F.log_softmax(torch.tensor(uniform(shape, -3, 3)), dim=-1).numpy()


lp = leaf("cat.lp", logprobs((N, C)))
lq = leaf("cat.lq", logprobs((N, C)))
lm = leaf("cat.lm", logprobs((1, C)))
w1 = leaf("cat.w1", uniform((N,), -1, 1))
w2 = leaf("cat.w2", uniform((N,), -1, 1))
w3 = leaf("cat.w3", uniform((N,), -1, 1))
w4 = leaf("cat.w4", uniform((N,), -1, 1))
# kl_div(input, target) = sum exp(target) (target - input) = KL(target || input)
klc = F.kl_div(lq, lp, reduction="none", log_target=True).sum(-1)
klcm = F.kl_div(lm.expand(N, C), lp, reduction="none", log_target=True).sum(-1)


def js(a, b):
    mid = torch.logsumexp(torch.stack([a, b.expand_as(a)]), dim=0) - math.log(2.0)
    return 0.5 * (F.kl_div(mid, a, reduction="none", log_target=True).sum(-1)
                  + F.kl_div(mid, b.expand_as(a), reduction="none", log_target=True).sum(-1))


jsc, jscm = js(lp, lq), js(lp, lm)
out["cat.kl"], out["cat.klm"], out["cat.js"], out["cat.jsm"] = klc, klcm, jsc, jscm
grads("cat", (klc * w1).sum() + (klcm * w2).sum() + (jsc * w3).sum() + (jscm * w4).sum(),
      {"lp": lp, "lq": lq, "lm": lm})

# ---- cosine similarity with per-row clamped norms; row 2 of a is below eps ----
EPS = 0.1
av = uniform((6, K), -1, 1)
av[2] *= 0.03 / np.linalg.norm(av[2])
a = leaf("cos.a", av)
b = leaf("cos.b", uniform((5, K), -1, 1))
w = leaf("cos.w", uniform((6, 5), -1, 1))
an = a / a.norm(dim=1, keepdim=True).clamp_min(EPS)
bn = b / b.norm(dim=1, keepdim=True).clamp_min(EPS)
S = an @ bn.T
# PyTorch's own op clamps each norm the same way (1.13)
assert torch.allclose(S, F.cosine_similarity(a[:, None, :], b[None, :, :], dim=-1, eps=EPS))
out["cos.out"] = S
grads("cos", (S * w).sum(), {"a": a, "b": b})

here = os.path.dirname(os.path.abspath(__file__))
write_fixture(os.path.join(here, "..", "fixtures", "stochastic_ops.txt"), out,
              comment="Written by tests/ref/make_stochastic_ref.py (PyTorch %s, references in float64)."
              % torch.__version__)
