"""PyTorch interop: ibnet models as torch.nn.Module, ibnet checkpoints in and
out (docs/python.md).

    import ibnet.torch
    net = ibnet.torch.load("run/best.safetensors")      # a torch.nn.Module with the run's weights
    logits = net(x)                                      # mean path (z = mu, Bernoulli p)
    logits = net(x, noise=eps)                           # the sampling rule with the noise given
    ibnet.torch.save(net, "vib-mlp", "mine.safetensors", dataset="mnist")   # `ibnet eval` accepts it

The module is built from the model's structured layer listing (Model.layers,
the C API's ib_model_layer...), not from its text, and its state_dict holds
exactly the checkpoint's tensors under the same names (batch norms keep no
num_batches_tracked, which ibnet does not have).

Stochastic layers, as ibnet computes them:
  vib K shift=s          mu = h[:, :K], sigma = softplus(h[:, K:] + s), z = mu + sigma * eps
  vibcell k= shift=s     mu = conv_mu(h), sigma = softplus(conv_rho(h) + s), z = mu + sigma * eps
  vsdhead                its encoder's output goes through the vib rule above
  bernoulli W            p = sigmoid(linear(h)); grad=st: h = 1[u < p]; grad=gumbel:
                         sigmoid((a + log u - log(1 - u)) / temp), u clamped to [2^-24, 1 - 2^-24]
With particles=M a layer repeats each incoming row M times in a row before
sampling, and the model's logits are log((1/P) sum_paths softmax) over the
P paths of each example.

forward(x, noise=None):
  noise None       the mean path: z = mu, Bernoulli h = p (gumbel: sigmoid(a / temp))
  noise "sample"   fresh noise from torch's generator (eps ~ N(0, 1), u ~ U(0, 1))
  noise dict       {layer name: tensor}, or a sequence in the order of
                   module.noise_names (every stochastic layer in depth
                   order); a layer left out takes its mean path.  Shapes:
                   module.noise_shapes(batch).  Gaussian layers take eps,
                   Bernoulli layers u.  ibnet.Net(..., given_noise=True)
                   takes the Gaussian ones in the same order and shapes.
Dropout follows module.training as in torch; batch norm too.
"""
import json
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import ibnet
from ibnet import safetensors as _st

__all__ = ["build", "load", "save", "IbnetModule", "noise_like"]

_TINY = 2.0 ** -24


def _softplus(x):
    """log(1 + exp(x)) computed stably (without torch's threshold cut-over)."""
    return torch.clamp(x, min=0) + torch.log1p(torch.exp(-torch.abs(x)))


def _bn(c, ndim):
    m = nn.BatchNorm1d(c) if ndim == 1 else nn.BatchNorm2d(c)
    # ibnet keeps no batch counter (momentum is fixed at 0.1), so the
    # state_dict matches the checkpoint's tensors exactly.
    m.register_buffer("num_batches_tracked", None)
    return m


def _conv(cin, cout, k, stride=1, pad=0, bias=True):
    return nn.Conv2d(cin, cout, k, stride, pad, bias=bias)


# ---- stochastic layers ------------------------------------------------------
class _Stochastic(nn.Module):
    """A layer that draws noise: .noise_kind "gaussian" or "uniform",
    .particles, and the noise shape per incoming row (noise_shape)."""
    noise_kind = "gaussian"
    particles = 1
    layer_name = "?"  # set by IbnetModule, for messages

    def _draw(self, like, noise):
        if noise is None:
            return None
        if isinstance(noise, str):
            return torch.randn_like(like) if self.noise_kind == "gaussian" else torch.rand_like(like)
        noise = torch.as_tensor(noise)
        if tuple(noise.shape) != tuple(like.shape):
            raise ValueError(f"noise for layer {self.layer_name!r} must have shape {tuple(like.shape)}, "
                             f"not {tuple(noise.shape)}")
        return noise.to(like.dtype)

    def _rep(self, t):
        return t.repeat_interleave(self.particles, 0) if self.particles > 1 else t

    @staticmethod
    def kl_std_normal(mu, sigma):
        """KL(N(mu, sigma^2) || N(0, 1)) summed over all dims but the first."""
        return 0.5 * (mu * mu + sigma * sigma - 1 - 2 * torch.log(sigma)).flatten(1).sum(1)


class VIB(_Stochastic):
    """Deep VIB layer: splits the encoder's 2K outputs into mu and sigma."""

    def __init__(self, k, shift=-5.0, particles=1):
        super().__init__()
        self.k, self.shift, self.particles = k, shift, particles

    def noise_shape(self, rows):
        return (rows * self.particles, self.k)

    def forward(self, h, noise=None):
        mu, sigma = h[:, :self.k], _softplus(h[:, self.k:] + self.shift)
        self.last = {"mu": mu, "sigma": sigma, "kl": self.kl_std_normal(mu, sigma)}
        mu, sigma = self._rep(mu), self._rep(sigma)
        eps = self._draw(mu, noise)
        return mu if eps is None else mu + sigma * eps


class VIBCell(_Stochastic):
    """VIB cell: mu and rho maps by k x k convolutions with C outputs."""

    def __init__(self, c, k=1, shift=-5.0, particles=1, hw=(1, 1)):
        super().__init__()
        self.mu = _conv(c, c, k, 1, k // 2)
        self.rho = _conv(c, c, k, 1, k // 2)
        self.shift, self.particles, self.shape = shift, particles, (c,) + tuple(hw)

    def noise_shape(self, rows):
        return (rows * self.particles,) + self.shape

    def forward(self, h, noise=None):
        mu, sigma = self.mu(h), _softplus(self.rho(h) + self.shift)
        self.last = {"mu": mu, "sigma": sigma, "kl": self.kl_std_normal(mu, sigma)}
        mu, sigma = self._rep(mu), self._rep(sigma)
        eps = self._draw(mu, noise)
        return mu if eps is None else mu + sigma * eps


class Bernoulli(_Stochastic):
    """Bernoulli-sigmoid neurons (IMB): a = W x + b, p = sigmoid(a); prior
    sigmoid(prior) (learned) or 1/2."""
    noise_kind = "uniform"

    def __init__(self, cin, width, particles=1, grad="st", temp=0.0, prior="learned"):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(width, cin))
        self.bias = nn.Parameter(torch.empty(width))
        bound = 1.0 / cin ** 0.5
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        nn.init.uniform_(self.bias, -bound, bound)
        if prior == "learned":
            self.prior = nn.Parameter(torch.nn.init.trunc_normal_(torch.empty(1, width), 0.0, 0.5))
        self.width, self.particles, self.grad, self.temp, self.prior_kind = width, particles, grad, temp, prior

    def noise_shape(self, rows):
        return (rows * self.particles, self.width)

    def forward(self, x, noise=None):
        a = F.linear(x, self.weight, self.bias)
        p = torch.sigmoid(a)
        q = torch.sigmoid(self.prior) if self.prior_kind == "learned" else torch.full_like(p[:1], 0.5)
        pc, qc = p.clamp(1e-7, 1 - 1e-7), q.clamp(1e-7, 1 - 1e-7)
        kl = (pc * torch.log(pc / qc) + (1 - pc) * torch.log((1 - pc) / (1 - qc))).sum(1)
        self.last = {"p": p, "kl": kl}
        if self.grad == "gumbel":
            a = self._rep(a)
            u = self._draw(a, noise)
            if u is None:
                return torch.sigmoid(a / self.temp)
            u = u.clamp(_TINY, 1 - _TINY)
            return torch.sigmoid((a + torch.log(u) - torch.log(1 - u)) / self.temp)
        p = self._rep(p)
        u = self._draw(p, noise)
        if u is None:
            return p
        return p + ((u < p).to(p.dtype) - p).detach()  # straight-through: forward 1[u < p], dh/dp = 1


# ---- residual blocks ------------------------------------------------------------
class BasicBlock(nn.Module):
    """ResNet basic block; a changing shape uses shortcut 'conv' (1x1 conv +
    batch norm) or 'pad' (subsample, zero channels on both sides)."""

    def __init__(self, cin, cout, stride=1, shortcut="conv"):
        super().__init__()
        self.conv1 = _conv(cin, cout, 3, stride, 1, False)
        self.bn1 = _bn(cout, 3)
        self.conv2 = _conv(cout, cout, 3, 1, 1, False)
        self.bn2 = _bn(cout, 3)
        self.kind = "identity" if stride == 1 and cin == cout else shortcut
        if self.kind == "conv":
            self.shortcut = nn.Sequential(_conv(cin, cout, 1, stride, 0, False), _bn(cout, 3))
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
    """Pre-activation wide ResNet block; the 1x1 shortcut reads the activated input."""

    def __init__(self, cin, cout, stride=1, dropout=0.0):
        super().__init__()
        self.bn1 = _bn(cin, 3)
        self.conv1 = _conv(cin, cout, 3, stride, 1, False)
        self.bn2 = _bn(cout, 3)
        self.conv2 = _conv(cout, cout, 3, 1, 1, False)
        self.equal = stride == 1 and cin == cout
        if not self.equal:
            self.shortcut = _conv(cin, cout, 1, stride, 0, False)
        self.dropout = dropout

    def forward(self, x):
        a = F.relu(self.bn1(x))
        h = F.relu(self.bn2(self.conv1(a)))
        if self.dropout > 0:
            h = F.dropout(h, self.dropout, self.training)
        h = self.conv2(h)
        return h + (x if self.equal else self.shortcut(a))


class VSDHead(nn.Module):
    """The variational self-distillation head: teacher linear classifier on
    v, encoder MLP to a Gaussian bottleneck (or deterministic z), student
    classifier on z (its logits are the output)."""

    def __init__(self, d, classes, zdim, hidden, shift, deterministic, student, slope, p):
        super().__init__()
        self.teacher = nn.Linear(d, classes)
        enc, cin = OrderedDict(), d
        hidden = hidden if isinstance(hidden, tuple) else (hidden,)
        for j, h in enumerate(hidden):
            enc[f"fc{j + 1}"] = nn.Linear(cin, h)
            enc[f"bn{j + 1}"] = _bn(h, 1)
            cin = h
        enc["out"] = nn.Linear(cin, zdim if deterministic else 2 * zdim)
        self.encoder = nn.ModuleDict(enc)
        self.n_hidden, self.deterministic = len(hidden), deterministic
        self.vib = VIB(zdim, shift)
        if student == "linear":
            self.student = nn.ModuleDict({"fc": nn.Linear(zdim, classes)})
        else:
            self.student = nn.ModuleDict({"fc1": nn.Linear(zdim, zdim // 2), "bn1": _bn(zdim // 2, 1),
                                          "fc2": nn.Linear(zdim // 2, classes)})
        self.student_kind, self.slope, self.p, self.zdim = student, slope, p, zdim

    def forward(self, v, noise=None):
        self.teacher_logits = self.teacher(v)
        h = v
        for j in range(self.n_hidden):
            h = F.relu(self.encoder[f"bn{j + 1}"](self.encoder[f"fc{j + 1}"](h)))
        h = self.encoder["out"](h)
        if self.deterministic:
            z = h
            self.vib.last = {"mu": h, "kl": torch.zeros(h.shape[0], dtype=h.dtype)}
        else:
            z = self.vib(h, noise)
        s = self.student
        if self.student_kind == "linear":
            return s["fc"](z)
        h = F.dropout(F.leaky_relu(s["bn1"](s["fc1"](z)), self.slope), self.p, self.training)
        return s["fc2"](h)


class _GAP(nn.Module):
    def forward(self, x):
        return x.mean((2, 3))


class _Flatten(nn.Module):
    def forward(self, x):
        return x.flatten(1) if x.dim() > 2 else x


class _Group(nn.Module):
    """A group of the description: only a name prefix (its layers run in order)."""


# ---- the model ------------------------------------------------------------------
def _layer_module(L):
    o, kind = L.options, L.kind
    cin = L.in_shape[0] if L.in_shape else 0
    if kind == "linear":
        return nn.Linear(cin, L.arg, bias=o["bias"])
    if kind == "conv":
        return _conv(cin, L.arg, o["k"], o["stride"], o["pad"], o["bias"])
    if kind == "batchnorm":
        return _bn(cin, len(L.in_shape))
    if kind == "relu":
        return nn.ReLU()
    if kind == "leaky_relu":
        return nn.LeakyReLU(o["slope"])
    if kind == "tanh":
        return nn.Tanh()
    if kind == "sigmoid":
        return nn.Sigmoid()
    if kind == "softplus":
        return _SoftplusLayer()
    if kind == "dropout":
        return nn.Dropout(o["p"])
    if kind == "maxpool":
        return nn.MaxPool2d(o["k"], o["stride"], o["pad"])
    if kind == "avgpool":
        return nn.AvgPool2d(o["k"], o["stride"], o["pad"], count_include_pad=True)
    if kind == "globalavgpool":
        return _GAP()
    if kind == "flatten":
        return _Flatten()
    if kind == "vib":
        return VIB(L.arg, o["shift"], o.get("particles", 1))
    if kind == "vibcell":
        return VIBCell(cin, o["k"], o["shift"], o.get("particles", 1), L.in_shape[1:])
    if kind == "bernoulli":
        return Bernoulli(cin, L.arg, o.get("particles", 1), o["grad"], o.get("temp", 0.0), o["prior"])
    if kind == "basicblock":
        return BasicBlock(cin, L.arg, o["stride"], o["shortcut"])
    if kind == "wideblock":
        return WideBlock(cin, L.arg, o["stride"], o["dropout"])
    if kind == "vsdhead":
        return VSDHead(cin, L.arg, o["zdim"], o["hidden"], o["shift"], o["deterministic"], o["student"],
                       o["slope"], o["p"])
    raise NotImplementedError(f"ibnet.torch: no PyTorch module for layer kind {kind!r} (layer {L.name!r})")


class _SoftplusLayer(nn.Module):
    def forward(self, x):
        return _softplus(x)


class IbnetModule(nn.Module):
    """The torch.nn equivalent of an ibnet model (see the module's text).
    .model is the ibnet.Model; .noise_names the stochastic layers in depth
    order; after a forward, .kl is a dict layer name -> per-row KL (nats)
    of each stochastic layer and .teacher_logits those of a vsdhead."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self._order, self.noise_names = [], []
        layers = model.layers()
        for L in layers:
            mod = _Group() if L.kind == "group" else _layer_module(L)
            parent, _, leaf = L.name.rpartition(".")
            owner = self
            for part in parent.split(".") if parent else []:
                if part not in owner._modules:  # a dotted name= outside any group
                    owner.add_module(part, _Group())
                owner = owner._modules[part]
            owner.add_module(leaf, mod)
            mod.layer_name = L.name
            if isinstance(mod, VSDHead):
                mod.vib.layer_name = L.name
            if L.kind == "group":
                continue
            self._order.append((L.name, mod))
            if isinstance(mod, _Stochastic) or (isinstance(mod, VSDHead) and not mod.deterministic):
                self.noise_names.append(L.name)
        self.classes, self.paths = model.classes, model.paths
        self.input_shape = model.input_shape
        self._check_tensors(layers)

    def _check_tensors(self, layers):
        want = OrderedDict((n, s) for L in layers for n, s, _ in L.tensors)
        have = OrderedDict((k, tuple(v.shape)) for k, v in self.state_dict().items())
        if want != have:
            diff = set(want.items()) ^ set(have.items())
            raise RuntimeError(f"ibnet.torch: the module's tensors differ from the model's listing: {sorted(diff)[:6]}")

    def noise_shapes(self, batch):
        """OrderedDict layer name -> noise shape for a batch of `batch` examples."""
        out, rows = OrderedDict(), batch
        for name, mod in self._order:
            sto = mod.vib if isinstance(mod, VSDHead) else mod
            if isinstance(sto, _Stochastic):
                if isinstance(mod, VSDHead) and mod.deterministic:
                    continue
                out[name] = sto.noise_shape(rows)
                rows *= sto.particles
        return out

    def _noise_for(self, noise):
        if noise is None or isinstance(noise, str):
            if noise not in (None, "sample"):
                raise ValueError(f"noise must be None, 'sample', a dict or a sequence, not {noise!r}")
            return lambda name: noise
        if isinstance(noise, dict):
            unknown = set(noise) - set(self.noise_names)
            if unknown:
                raise ValueError(f"noise for unknown stochastic layers {sorted(unknown)}; they are {self.noise_names}")
            return noise.get
        noise = list(noise)
        if len(noise) != len(self.noise_names):
            raise ValueError(f"{len(noise)} noise tensors for {len(self.noise_names)} stochastic layers "
                             f"{self.noise_names}")
        return dict(zip(self.noise_names, noise)).get

    def forward(self, x, noise=None):
        get = self._noise_for(noise)
        self.kl, self.teacher_logits = OrderedDict(), None
        for name, mod in self._order:
            if isinstance(mod, (_Stochastic, VSDHead)):
                x = mod(x, get(name))
                sto = mod.vib if isinstance(mod, VSDHead) else mod
                self.kl[name] = sto.last["kl"]
                if isinstance(mod, VSDHead):
                    self.teacher_logits = mod.teacher_logits
            else:
                x = mod(x)
        if self.paths > 1:  # the particle average of the paths' softmax, per example
            lp = F.log_softmax(x, 1).view(-1, self.paths, x.shape[1])
            x = torch.logsumexp(lp, 1) - float(np.log(self.paths))
        return x


def _as_model(model):
    if isinstance(model, ibnet.Model):
        return model
    text = str(model)
    return ibnet.Model.parse(text) if "\n" in text else ibnet.Model(text)


def build(model):
    """A fresh IbnetModule (torch's default initialisation) for an
    ibnet.Model, a built-in name, a .ibm path or a description text."""
    return IbnetModule(_as_model(model))


def _view_of(name):
    """"view2" for a tensor "view2.fc1.weight" (the copies of a
    --separate-views run, view2..view9), else None."""
    return name[:5] if len(name) > 6 and name.startswith("view") and name[4] in "23456789" and name[5] == "." \
        else None


def _ema_divisor(meta, name):
    """What ibnet's loader divides the EMA shadow of parameter `name` by
    (src/io/checkpoint.c): 1 without zero_debias; else 1 - decay^t, t the
    parameter's update count (ema.param_updates, else ema.updates), formed in
    double and rounded once to float32; 0 when t = 0 (no average yet: the raw
    value is taken)."""
    if meta.get("ema.zero_debias") != "true":
        return np.float32(1.0)
    try:
        decay = float(np.float32(float(meta["ema.decay"])))
        t = int(meta["ema.updates"])
    except (KeyError, ValueError) as e:
        raise ibnet.FormatError(f"EMA metadata missing or damaged ({e})", -5) from e
    own = json.loads(meta.get("ema.param_updates", "{}") or "{}")
    if name in own:
        t = int(own[name])
    return np.float32(0.0) if t == 0 else np.float32(1.0 - decay ** t)


def load(path, model=None, verify=True, map_location=None, weights="default", scope=None):
    """The checkpoint's model as an IbnetModule with its weights, as
    ibnet.Net opens it.  weights: "default" takes the EMA average when the
    file holds one (a last.safetensors of a run with --ema-decay: each
    ema.NAME shadow debiased exactly as ibnet's loader does, bit for bit, and
    the batch-norm statistics recomputed for those weights when it has them),
    else the plain tensors (best.safetensors already holds the evaluated
    ones); "raw": the plain tensors; "ema": the average, MismatchError when
    the file has none.  scope: "view2" opens the view2.* copy of a
    --separate-views checkpoint (without it the run's own network is loaded
    and the other views' tensors are left, as Net does).  model: another
    description to load into (else the one in the file's metadata).
    Mismatched names or shapes raise MismatchError.  .used_ema tells which
    weights were taken."""
    if weights not in ("default", "raw", "ema"):
        raise ibnet.ArgError(f"load: weights must be default, raw or ema, not {weights!r}", -1)
    tensors, meta = _st.read(path, verify=verify)
    info = json.loads(meta.get("ibnet", "{}") or "{}")
    if model is None:
        if not info.get("model_text"):
            raise ibnet.FormatError(f"{path}: not an ibnet training checkpoint (no model description); "
                                    "pass model=", -5)
        model = ibnet.Model.parse(info["model_text"], str(path))
    decay = (info.get("config") or {}).get("ema_decay", 0)
    has_ema = "ema.updates" in meta and isinstance(decay, (int, float)) and 0 < decay < 1
    if weights == "ema" and not has_ema:
        raise ibnet.MismatchError(f"{path} holds no EMA average; open it with the raw weights", -6)
    use_ema = has_ema and weights != "raw"
    prefix = f"{scope}." if scope else ""
    module = build(model)
    sd = module.state_dict()
    if scope:
        plain = {k[len(prefix):]: k for k in tensors if k.startswith(prefix)}
        if not plain:
            raise ibnet.MismatchError(f"{path}: no weights of the copy {scope} (was the run trained with "
                                      "--separate-views?)", -6)
    else:
        plain = {k: k for k in tensors if not k.startswith(("optim.", "ema.")) and not _view_of(k)}
    missing = [k for k in sd if k not in plain]
    extra = [k for k in plain if k not in sd]
    bad = [f"{k} {tuple(tensors[plain[k]].shape)} vs {tuple(v.shape)}" for k, v in sd.items()
           if k in plain and tuple(tensors[plain[k]].shape) != tuple(v.shape)]
    if missing or extra or bad:
        raise ibnet.MismatchError(f"{path}: tensors do not fit model {module.model.name!r}: missing {missing[:4]}, "
                                  f"unexpected {extra[:4]}, other shapes {bad[:4]}", -6)
    values, n_ema = {}, 0
    # ema.<buffer>: the batch-norm statistics recomputed for the EMA weights,
    # stored as they are (never debiased)
    buffers = {name for name, _ in module.named_buffers()}
    for k in sd:
        full = plain[k]
        x = tensors[full]
        shadow = tensors.get("ema." + full) if use_ema else None
        if shadow is not None and shadow.shape == x.shape:
            div = np.float32(1.0) if k in buffers else _ema_divisor(meta, full)
            if div != 0:
                x = shadow if div == 1 else shadow / div
                n_ema += 1
        values[k] = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    # Not strict: torch's batch norm asks for the num_batches_tracked that
    # ibnet does not keep (names and shapes were checked above).
    r = module.load_state_dict(values, strict=False)
    assert not r.missing_keys and all(k.endswith("num_batches_tracked") for k in r.unexpected_keys), r
    module.eval()
    if map_location is not None:
        module.to(map_location)
    module.checkpoint_meta = meta
    module.used_ema = n_ema > 0
    return module


_NORM_RANGE = {"unit": (0.0, 1.0), "symmetric": (-1.0, 1.0)}


def save(module_or_state_dict, model, path, dataset="", input_norm="unit", input_mean=None, input_std=None,
         class_names=None, seed=0):
    """Write an ibnet checkpoint of a state_dict (or a module's) for
    `model` (an ibnet.Model, built-in name, .ibm path or description
    text): the model's tensors by name, float32, with the metadata `ibnet
    eval` and ibnet.Net read (model text, data set, input normalisation
    "unit" | "symmetric" | "standardize" with per-channel input_mean and
    input_std on the p/255 scale).  Extra entries ending in
    num_batches_tracked are dropped; a missing tensor or a shape that
    differs raises MismatchError naming it."""
    m = _as_model(model)
    sd = module_or_state_dict.state_dict() if isinstance(module_or_state_dict, nn.Module) else module_or_state_dict
    sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    want = [(n, s) for L in m.layers() for n, s, _ in L.tensors]
    names = {n for n, _ in want}
    missing = [n for n, _ in want if n not in sd]
    extra = [k for k in sd if k not in names]
    bad = [f"{n} {tuple(sd[n].shape)} vs {s}" for n, s in want if n in sd and tuple(sd[n].shape) != s]
    if missing or extra or bad:
        raise ibnet.MismatchError(f"state_dict does not fit model {m.name!r}: missing {missing[:4]}, "
                                  f"unexpected {extra[:4]}, other shapes {bad[:4]}", -6)
    tensors = OrderedDict()
    for n, _ in want:
        t = sd[n]
        if not torch.is_floating_point(t):
            raise ibnet.ArgError(f"tensor {n} is {t.dtype}, not floating point", -1)
        tensors[n] = t.detach().to("cpu", torch.float32).contiguous().numpy()
    c = m.input_shape[0]
    if input_norm == "standardize":
        if input_mean is None or input_std is None or len(input_mean) != c or len(input_std) != c:
            raise ibnet.ArgError(f"input_norm 'standardize' needs input_mean and input_std of {c} channel(s)", -1)
        mean, std = [float(v) for v in input_mean], [float(v) for v in input_std]
        lo, hi = [-a / b for a, b in zip(mean, std)], [(1 - a) / b for a, b in zip(mean, std)]
    elif input_norm in _NORM_RANGE:
        mean, std = [0.0] * c, [1.0] * c
        lo, hi = [_NORM_RANGE[input_norm][0]] * c, [_NORM_RANGE[input_norm][1]] * c
    else:
        raise ibnet.ArgError(f"input_norm must be unit, symmetric or standardize, not {input_norm!r}", -1)
    info = {"meta_version": 1, "epoch": 0, "step": 0, "epoch_batches_done": 0, "seed": str(seed), "threads": 1,
            "best_epoch": 0, "best_accuracy": -1, "model": m.name, "model_text": m.text, "dataset": dataset,
            "classes": m.classes, "input_norm": input_norm, "input_mean": mean, "input_std": std,
            "input_min": lo, "input_max": hi, "written_by": "ibnet.torch.save"}
    if class_names is not None:
        info["class_names"] = list(class_names)
    _st.write(path, tensors, {"format": "pt", "ibnet_version": ibnet.version(), "ibnet": json.dumps(info)})


def noise_like(module, batch, generator=None):
    """Noise for every stochastic layer of module for `batch` examples, as
    forward takes it: eps ~ N(0, 1) for Gaussian layers, u ~ U(0, 1) for
    Bernoulli layers (a dict in depth order)."""
    out = OrderedDict()
    kinds = {name: mod for name, mod in module._order}
    for name, shape in module.noise_shapes(batch).items():
        mod = kinds[name]
        sto = mod.vib if isinstance(mod, VSDHead) else mod
        out[name] = (torch.randn(shape, generator=generator) if sto.noise_kind == "gaussian"
                     else torch.rand(shape, generator=generator))
    return out
