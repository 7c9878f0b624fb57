"""PyTorch interop (ibnet.torch) against the library, for every built-in
model: the same outputs in PyTorch and ibnet on the same batch (mean path,
and with the same given noise where the model has Gaussian bottlenecks), a
bit-for-bit round trip PyTorch -> ibnet checkpoint -> PyTorch, `ibnet eval`
on a saved checkpoint, and a checkpoint written by ibnet's trainer loaded in
PyTorch.  Skipped with a message where torch is not installed.

Tolerance: max |logit_torch - logit_ibnet| <= 1e-5 * max(1, max |logit|)
(float32; measured at most 5e-7 over the built-ins, ResNet-56 included).
imb-mlp's Bernoulli layers draw keyed noise inside ibnet (no given-noise
input), so it is compared on the mean path only; its sampling rule with
given noise is checked against the formula instead.
"""
import json
import os
import re
import struct
import subprocess

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="ibnet.torch needs PyTorch (Debian: python3-torch)")

import ibnet  # noqa: E402
import ibnet.torch as it  # noqa: E402

torch.set_num_threads(1)  # small batches; CTest runs tests side by side
HERE = os.path.dirname(os.path.abspath(__file__))
BUILTINS = ibnet.Model.builtins()
BATCH = 3


def _tol(y):
    return 1e-5 * max(1.0, float(np.abs(y).max()))


def _randomise(module, seed):
    """Non-trivial batch-norm statistics and affine parameters, and a larger
    sigma in the VIB cells (softplus(-5) would hide a wrong sigma)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
        for name, p in module.named_parameters():
            if name.endswith("rho.bias"):  # VIB cells: sigma = softplus(rho - 1), not softplus(rho - 5)
                p.add_(4.0)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Each built-in model built in torch with seed-fixed weights, saved as
    an ibnet checkpoint: name -> (module, path)."""
    d = tmp_path_factory.mktemp("ckpt")
    out = {}
    for i, name in enumerate(BUILTINS):
        torch.manual_seed(100 + i)
        m = it.build(name)
        _randomise(m, i)
        m.eval()
        path = str(d / f"{name}.safetensors")
        it.save(m, name, path, dataset="mnist")
        out[name] = (m, path)
    return out


def test_every_builtin_has_a_module_with_the_models_tensors():
    for name in BUILTINS:
        m = it.build(name)
        want = [(n, s) for L in ibnet.Model(name).layers() for n, s, _ in L.tensors]
        assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == want, name
        assert sum(p.numel() for p in m.parameters()) == ibnet.Model(name).param_count, name


@pytest.mark.parametrize("name", BUILTINS)
def test_same_outputs_in_torch_and_ibnet(saved, name):
    m, path = saved[name]
    x = torch.randn((BATCH,) + m.input_shape, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        yt = m(x).numpy()
    with ibnet.Net(path, batch_size=BATCH, mean_path=True) as net:
        yi = net.forward(x.numpy()).copy()
    assert yi.shape == yt.shape == (BATCH, m.classes)
    assert np.abs(yt - yi).max() <= _tol(yt), name
    gaussian = [n for n in m.noise_names if not isinstance(dict(m._order)[n], it.Bernoulli)]
    if not gaussian:
        return
    # the same given noise: ibnet's noise inputs are the Gaussian layers', in the same order and shapes
    noise = it.noise_like(m, BATCH, generator=torch.Generator().manual_seed(8))
    with ibnet.Net(path, batch_size=BATCH, given_noise=True) as net:
        assert [(n, tuple(s)) for n, s in net.noise_shapes] == [(n, tuple(noise[n].shape)) for n in gaussian]
        yi2 = net.forward(x.numpy(), noise=[noise[n].numpy() for n in gaussian]).copy()
    with torch.no_grad():
        yt2 = m(x, noise=noise).numpy()
    assert np.abs(yt2 - yi2).max() <= _tol(yt2), name
    assert np.abs(yt2 - yt).max() > 20 * _tol(yt2), name  # the noise did change the outputs


@pytest.mark.parametrize("name", BUILTINS)
def test_round_trip_keeps_every_tensor_bit_for_bit(saved, name):
    m, path = saved[name]
    back = it.load(path)
    a, b = m.state_dict(), back.state_dict()
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype == torch.float32 and a[k].shape == b[k].shape
        assert torch.equal(a[k].view(torch.int32), b[k].view(torch.int32)), (name, k)


def test_sampling_rules_with_given_noise():
    """vib: z = mu + softplus(h2 + shift) eps; bernoulli (st): 1[u < p],
    (gumbel): sigmoid((a + log u - log(1-u)) / T); particles repeat rows."""
    torch.manual_seed(0)
    v = it.VIB(3, shift=-1.0, particles=2)
    h, eps = torch.randn(2, 6), torch.randn(4, 3)
    z = v(h, eps)
    mu = h[:, :3].repeat_interleave(2, 0)
    sig = torch.nn.functional.softplus(h[:, 3:] - 1.0).repeat_interleave(2, 0)
    assert torch.allclose(z, mu + sig * eps)
    assert torch.equal(v(h, None), mu)
    b = it.Bernoulli(4, 5, particles=3)
    x, u = torch.randn(2, 4), torch.rand(6, 5)
    p = torch.sigmoid(x @ b.weight.T + b.bias).repeat_interleave(3, 0)
    assert torch.equal(b(x, u), (u < p).float())
    assert torch.allclose(b(x, None), p)
    gb = it.Bernoulli(4, 5, grad="gumbel", temp=0.5, prior="half")
    a = x @ gb.weight.T + gb.bias
    u = torch.rand(2, 5)
    assert torch.allclose(gb(x, u), torch.sigmoid((a + torch.log(u) - torch.log(1 - u)) / 0.5))
    assert torch.allclose(gb(x, None), torch.sigmoid(a / 0.5))
    # imb-mlp: 32 x 32 paths per example; identical paths give log softmax
    m = it.build("imb-mlp").eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        y0 = m(x)
        y1 = m(x, noise="sample")
    assert torch.allclose(y0.exp().sum(1), torch.ones(2)) and torch.allclose(y1.exp().sum(1), torch.ones(2))
    assert list(m.noise_shapes(2).values()) == [(64, 512), (2048, 512)]


def _write_idx(d, n, seed, hw=28):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 256, (n, hw, hw)).astype(np.uint8)
    for prefix in ("train", "t10k"):
        with open(os.path.join(d, f"{prefix}-images-idx3-ubyte"), "wb") as f:
            f.write(struct.pack(">IIII", 0x803, n, hw, hw) + images.tobytes())
        with open(os.path.join(d, f"{prefix}-labels-idx1-ubyte"), "wb") as f:
            f.write(struct.pack(">II", 0x801, n) + labels.tobytes())
    return images, labels


def _cli():
    cli = os.environ.get("IBNET_CLI")
    if not cli:
        pytest.skip("IBNET_CLI (the ibnet command) not set")
    return cli


def test_ibnet_eval_accepts_a_saved_checkpoint(saved, tmp_path):
    cli = _cli()
    images, labels = _write_idx(str(tmp_path), 40, 3)
    m, path = saved["vib-mlp"]
    r = subprocess.run([cli, "eval", path, "--dataset", f"idx:{tmp_path}", "--json", "--samples", "2",
                        "--threads", "1"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    # its mean-path accuracy is the torch module's on the same images (unit input: p/255)
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    with ibnet.Net(path, batch_size=40, mean_path=True) as net:
        acc = float((net.forward(x.numpy()).argmax(1) == labels).mean())
    with torch.no_grad():
        assert float((m(x).argmax(1).numpy() == labels).mean()) == acc
    assert res["n"] == 40 and res["acc_mean"] == pytest.approx(acc, abs=1e-9)  # acc_mean: the mean path


def test_save_refuses_a_state_dict_of_another_model(tmp_path):
    sd = it.build("mlp").state_dict()
    with pytest.raises(ibnet.MismatchError, match="fc3"):
        it.save(sd, "lenet", str(tmp_path / "x.safetensors"))
    sd["fc1.weight"] = sd["fc1.weight"][:, :10]
    with pytest.raises(ibnet.MismatchError, match="fc1.weight"):
        it.save(sd, "mlp", str(tmp_path / "x.safetensors"))


def test_a_checkpoint_trained_by_ibnet_loads_in_torch(tmp_path):
    """The other direction: ibnet's trainer writes last.safetensors (with
    optimizer and EMA tensors) and best.safetensors; torch gives the same
    logits as the library on both."""
    d = tmp_path / "data"
    d.mkdir()
    images, _ = _write_idx(str(d), 120, 5, hw=8)
    model = tmp_path / "tiny.ibm"
    model.write_text("model tiny\ninput 1 8 8\nclasses 10\nconv 4 k=3 pad=1 name=conv\nbatchnorm name=bn\nrelu\n"
                     "vibcell name=cell\nflatten\nlinear 8 name=fc\nvib 4 name=vib\nlinear 10 name=out\n")
    run = tmp_path / "run"
    assert ibnet.train({"model": str(model), "dataset": f"idx:{d}", "out_dir": str(run), "epochs": 1,
                        "batch_size": 40, "eval_batch_size": 60, "eval_samples": 2, "ema_decay": 0.9})
    x = images[:5, None].astype(np.float32) / 255.0 * 2 - 1  # the default normalisation: symmetric
    for f, weights in (("best.safetensors", "default"), ("last.safetensors", "raw"),
                       ("last.safetensors", "default"), ("last.safetensors", "ema")):
        m = it.load(str(run / f), weights=weights)
        assert m.used_ema == (f == "last.safetensors" and weights != "raw"), (f, weights)
        with torch.no_grad():
            yt = m(torch.from_numpy(x)).numpy()
        with ibnet.Net(str(run / f), batch_size=5, mean_path=True, weights=weights) as net:
            assert net.used_ema == m.used_ema
            yi = net.forward(x).copy()
        assert np.abs(yt - yi).max() <= _tol(yt), (f, weights)
    # After its one epoch the run evaluated (and kept as best) the EMA average, debiased by the
    # library: torch.load debiases last.safetensors' shadow to the same bits.
    best, ema, raw = it.load(str(run / "best.safetensors")), it.load(str(run / "last.safetensors")), \
        it.load(str(run / "last.safetensors"), weights="raw")
    for k, v in best.state_dict().items():
        assert torch.equal(v, ema.state_dict()[k]), k
    assert any(not torch.equal(v, raw.state_dict()[k]) for k, v in best.state_dict().items())
    # the batch-norm statistics too: recomputed for the EMA weights (ema.bn.*, taken as they are)
    assert not torch.equal(ema.state_dict()["bn.running_mean"], raw.state_dict()["bn.running_mean"])
    with pytest.raises(ibnet.MismatchError):
        it.load(str(run / "best.safetensors"), weights="ema")  # best holds no shadow


def test_load_opens_the_view2_copy_of_a_two_view_checkpoint(tmp_path):
    """A --separate-views checkpoint holds the run's network and a view2.*
    copy; load(scope="view2") gives the copy, load() the run's own, as
    ibnet.Net(scope=) does."""
    torch.manual_seed(3)
    a, b = it.build("vib-mlp").eval(), it.build("vib-mlp").eval()
    it.save(a, "vib-mlp", str(tmp_path / "a.safetensors"), dataset="mnist")
    tensors, meta = ibnet.safetensors.read(str(tmp_path / "a.safetensors"))
    tensors.update({"view2." + k: v.numpy() for k, v in b.state_dict().items()})
    meta.pop("ibnet.crc32", None)
    path = str(tmp_path / "two.safetensors")
    ibnet.safetensors.write(path, tensors, meta)
    x = torch.randn(2, 1, 28, 28)
    for scope, ref in ((None, a), ("view2", b)):
        m = it.load(path, scope=scope)
        for k, v in ref.state_dict().items():
            assert torch.equal(v, m.state_dict()[k]), (scope, k)
        with torch.no_grad():
            yt = m(x).numpy()
        with ibnet.Net(path, batch_size=2, mean_path=True, scope=scope) as net:
            assert np.abs(net.forward(x.numpy()) - yt).max() <= _tol(yt), scope
    with pytest.raises(ibnet.MismatchError, match="view3"):
        it.load(path, scope="view3")


def test_the_examples_of_docs_python_md_run(tmp_path, monkeypatch):
    """Every ```python block of docs/python.md, in order, in one namespace."""
    text = open(os.path.join(HERE, "..", "..", "docs", "python.md")).read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    ns = {}
    for b in blocks:
        exec(compile(b, "docs/python.md", "exec"), ns)  # noqa: S102 -- the documentation's own examples


def test_an_independent_torch_module_saves_and_runs_in_ibnet(tmp_path):
    """A plain torch.nn.Sequential written without ibnet.torch (LeNet, and a
    conv + batch norm net whose state_dict has num_batches_tracked): saved,
    run by the library, loaded back bit for bit."""
    from collections import OrderedDict
    nn = torch.nn
    torch.manual_seed(3)
    lenet = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 32, 5, padding=2)), ("r1", nn.ReLU()), ("p1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(32, 64, 5, padding=2)), ("r2", nn.ReLU()), ("p2", nn.MaxPool2d(2)), ("f", nn.Flatten()),
        ("fc1", nn.Linear(3136, 1024)), ("r3", nn.ReLU()), ("fc2", nn.Linear(1024, 10))])).eval()
    bnnet = nn.Sequential(OrderedDict([("conv", nn.Conv2d(3, 8, 3, padding=1, bias=False)), ("bn", nn.BatchNorm2d(8)),
                                       ("r", nn.ReLU()), ("gap", nn.AdaptiveAvgPool2d(1)), ("f", nn.Flatten()),
                                       ("fc", nn.Linear(8, 5))]))
    bnnet.train()
    with torch.no_grad():
        bnnet(torch.randn(16, 3, 6, 6))  # running statistics that are not the initial ones
    bnnet.eval()
    text = ("model bn\ninput 3 6 6\nclasses 5\nconv 8 k=3 pad=1 bias=false name=conv\nbatchnorm name=bn\nrelu\n"
            "globalavgpool\nlinear 5 name=fc\n")
    for module, model in ((lenet, "lenet"), (bnnet, text)):
        path = str(tmp_path / "m.safetensors")
        it.save(module, model, path)
        x = torch.randn((2,) + ibnet.torch._as_model(model).input_shape)
        with torch.no_grad():
            yt = module(x).numpy()
        with ibnet.Net(path, batch_size=2) as net:
            yi = net.forward(x.numpy()).copy()
        assert np.abs(yt - yi).max() <= _tol(yt)
        back = it.load(path).state_dict()
        for k, v in module.state_dict().items():
            if not k.endswith("num_batches_tracked"):
                assert torch.equal(v.view(torch.int32), back[k].view(torch.int32)), k
