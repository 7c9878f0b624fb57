"""Tests of the Python binding (pytest).  IBNET_LIBRARY names the libibnet.so
under test (tests/python_test.sh sets it to the build's)."""
import json
import os
import struct

import numpy as np
import pytest

import ibnet


def test_version_matches_the_abi_this_binding_mirrors():
    v = ibnet.version()
    assert tuple(int(x) for x in v.split(".")[:2]) == ibnet.ABI_VERSION


def test_model_load_text_summary():
    m = ibnet.Model("mlp")
    assert m.name == "mlp"
    assert "linear" in m.text
    # The canonical text parses to a model with the same text.
    assert ibnet.Model.parse(m.text).text == m.text
    s = m.summary()
    assert "linear" in s and len(s.splitlines()) > 2
    assert "mlp" in ibnet.Model.builtins()


def test_errors_are_exceptions_per_status_with_the_message():
    with pytest.raises(ibnet.ArgError) as e:
        ibnet.Model("no-such-model")
    assert e.value.status == -1 and "mlp" in str(e.value)  # the message lists the built-ins
    with pytest.raises(ibnet.FormatError) as e:
        ibnet.Model.parse("model x\ninput 1 8 8\nclasses 4\nbogus-layer 3\n", "x.ibm")
    assert e.value.status == -5 and "x.ibm:4" in str(e.value)
    assert isinstance(e.value, ibnet.IbnetError) and isinstance(e.value, ValueError)
    with pytest.raises(ibnet.IbnetError):
        ibnet.open_dataset("idx:/no/such/dir", "train")


def _write_idx(d, prefix, n, seed):
    """Four classes of 8x8 images, a bright 3x3 square in the class's quadrant."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n).astype(np.uint8)
    images = (20 + 80 * rng.random((n, 8, 8))).astype(np.uint8)
    for i, k in enumerate(labels):
        r0, c0 = (k // 2) * 4 + 1, (k % 2) * 4 + 1
        images[i, r0:r0 + 3, c0:c0 + 3] += 150
    with open(os.path.join(d, f"{prefix}-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 8, 8) + images.tobytes())
    with open(os.path.join(d, f"{prefix}-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + labels.tobytes())
    return images, labels


@pytest.fixture
def blobs(tmp_path):
    d = tmp_path / "blobs"
    d.mkdir()
    train = _write_idx(str(d), "train", 300, 1)
    test = _write_idx(str(d), "t10k", 100, 2)
    return d, train, test


def test_dataset_open_gives_the_files_as_numpy_arrays(blobs):
    d, (images, labels), _ = blobs
    ds = ibnet.open_dataset(f"idx:{d}", "train")
    assert ds.images.dtype == np.uint8 and ds.images.shape == (300, 1, 8, 8)
    assert ds.labels.dtype == np.int32 and len(ds) == 300
    np.testing.assert_array_equal(ds.images[:, 0], images)
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.classes >= 4
    assert ibnet.open_dataset(f"idx:{d}", "test").images.shape == (100, 1, 8, 8)


TINY = ("model tiny\ninput 1 8 8\nclasses 4\n\nflatten\nlinear 32 name=fc1\nrelu\nlinear 16 name=fc2\n"
        "vib 8 shift=-5 name=vib\nlinear 4 name=decoder\n")


def _config(tmp_path, d, run, epochs=2):
    model = tmp_path / "tiny.ibm"
    model.write_text(TINY)
    return {"model": str(model), "dataset": f"idx:{d}", "out_dir": str(tmp_path / run), "epochs": epochs,
            "batch_size": 50, "eval_batch_size": 100, "eval_samples": 2, "lr": 3e-3}


def test_train_calls_back_and_writes_the_run(tmp_path, blobs):
    d = blobs[0]
    steps, epochs = [], []
    terms = []

    def progress(p):
        steps.append((p.epoch, p.batch, p.loss))
        terms.append(p.terms)

    done = ibnet.train(_config(tmp_path, d, "run"), progress=progress,
                       epoch_end=lambda r: epochs.append((r.epoch, r.epochs, r.loss)))
    assert done
    assert [e[0] for e in epochs] == [1, 2] and all(e[1] == 2 for e in epochs)
    assert len(steps) == 2 * 6 and steps[0][:2] == (1, 1)
    assert all(np.isfinite(s[2]) for s in steps)
    assert all(isinstance(t, dict) and all(np.isfinite(v) for v in t.values()) for t in terms)  # named terms (VIB: none)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary  # the run finished and wrote its figures
    assert (tmp_path / "run" / "last.safetensors").exists()


def test_a_callback_can_stop_training_and_its_exception_is_raised(tmp_path, blobs):
    d = blobs[0]
    seen = []

    def stop_at_3(p):
        seen.append(p.batch)
        return len(seen) == 3

    assert ibnet.train(_config(tmp_path, d, "stopped"), progress=stop_at_3) is False
    assert len(seen) == 3

    def boom(p):
        raise KeyError("from the callback")

    with pytest.raises(KeyError):
        ibnet.train(_config(tmp_path, d, "boom"), progress=boom)


def test_bad_config_is_an_arg_error(tmp_path, blobs):
    cfg = _config(tmp_path, blobs[0], "bad")
    cfg["batch_size"] = 0
    with pytest.raises(ibnet.ArgError):
        ibnet.train(cfg)
    with pytest.raises(ibnet.FormatError):
        ibnet.train({"no_such_key": 1})


def test_layer_listing_of_every_builtin_through_the_struct_mirrors():
    """The ctypes mirrors of ib_model_layer_info and ib_model_tensor read
    what the library holds: parameter counts add up, tensor shapes give
    them, bottlenecks are counted."""
    for name in ibnet.Model.builtins():
        m = ibnet.Model(name)
        layers = m.layers()
        assert sum(L.params for L in layers) == m.param_count, name
        trainable = sum(int(np.prod(s)) for L in layers for _, s, t in L.tensors if t)
        assert trainable == m.param_count, name
        assert sum(L.bottleneck for L in layers) == m.bottleneck_count, name
        real = [L for L in layers if L.kind != "group"]
        assert all(L.in_shape == () and L.params == 0 for L in layers if L.kind == "group"), name
        assert real[0].in_shape == m.input_shape and real[-1].out_shape == (m.classes,), name
        assert all(a.out_shape == b.in_shape for a, b in zip(real, real[1:])), name
        for L in layers:
            assert all(t[0].startswith(L.name + ".") for t in L.tensors), (name, L.name)
    conv = ibnet.Model("lenet").layers()[0]
    assert (conv.kind, conv.arg, conv.options) == ("conv", 32, {"k": 5, "stride": 1, "pad": 2, "bias": True})
    head = ibnet.Model("resnet20-vsd").layers()[-1]
    assert head.options["hidden"] == (256, 128) and head.options["shift"] == -5.0


def test_net_runs_a_checkpoint_and_evaluates_as_ibnet_eval(tmp_path, blobs):
    d, _, (images, labels) = blobs
    assert ibnet.train(_config(tmp_path, d, "run", epochs=1))
    ckpt = str(tmp_path / "run" / "best.safetensors")
    x = (images[:7, None].astype(np.float32) / 255.0) * 2 - 1  # the run's input: symmetric normalisation
    with ibnet.Net(ckpt, batch_size=10, mean_path=True) as mean:
        y = mean.forward(x)
        assert y.shape == (7, 4) and y.dtype == np.float32
        y = y.copy()
        assert mean.noise_shapes == []
        with pytest.raises(ibnet.ArgError):
            mean.forward(np.zeros((11, 1, 8, 8), np.float32))
    with ibnet.Net(ckpt, batch_size=10, given_noise=True) as net:
        assert net.noise_shapes == [("vib", (10, 8))]
        np.testing.assert_array_equal(net.forward(x), y)  # no noise given: eps = 0, the mean path
        z = net.forward(x, noise=[np.full((7, 8), 3.0, np.float32)]).copy()
        assert np.abs(z - y).max() > 0
        np.testing.assert_array_equal(net.forward(x, noise=[np.full((7, 8), 3.0, np.float32)]), z)
    with ibnet.Net(ckpt, batch_size=10, pixels=True, mean_path=True) as px:
        np.testing.assert_allclose(px.forward(images[:7, None] / np.float32(255.0)), y, atol=1e-5)
    with ibnet.Net(ckpt, batch_size=10, samples=3) as s3:
        assert s3.forward(x).shape == (21, 4)
    cli = os.environ.get("IBNET_CLI")
    with ibnet.Net(ckpt, batch_size=50) as net:
        r = net.evaluate()
    assert r["n"] == 100 and r["confusion"].sum() == 100 and len(r["kl"]) == 1
    if cli:
        import subprocess
        out = subprocess.run([cli, "eval", ckpt, "--json", "--batch-size", "50"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        ref = json.loads(out.stdout)
        for k in ("acc_1shot", "acc_avg", "acc_mean"):
            assert r[k] == pytest.approx(ref[k], abs=1e-12), k


def test_net_loss_grad_matches_central_differences(tmp_path, blobs):
    d, _, (images, labels) = blobs
    assert ibnet.train(_config(tmp_path, d, "run", epochs=1))
    ckpt = str(tmp_path / "run" / "best.safetensors")
    x = (images[:4, None].astype(np.float64) / 255.0) * 2 - 1
    y = labels[:4].astype(np.int32)
    with ibnet.Net(ckpt, batch_size=4, mean_path=True, input_grad=True) as net:
        loss, g = net.loss_grad(x, y)
        g = g.copy()
        assert g.shape == (4, 1, 8, 8) and np.isfinite(loss)
        h = 1e-2
        for idx in [(0, 0, 3, 3), (1, 0, 2, 5), (3, 0, 7, 0)]:
            xp, xm = x.copy(), x.copy()
            xp[idx] += h
            xm[idx] -= h
            fd = (net.loss_grad(xp, y)[0] - net.loss_grad(xm, y)[0]) / (2 * h)
            assert abs(fd - g[idx]) <= 1e-4 + 1e-2 * abs(g[idx]), (idx, fd, g[idx])  # measured: <= 5e-6
        assert np.abs(g).max() > 1e-3  # a gradient that says something
    with ibnet.Net(ckpt, batch_size=4) as net, pytest.raises(ibnet.StateError):
        net.loss_grad(x, y)


def test_offline_pip_install_gives_a_working_package(tmp_path):
    """`pip install --no-index --no-build-isolation` (no downloads, Debian's
    setuptools) of a copy of python/ installs every module of the package,
    and the installed copy imports and runs."""
    import shutil
    import subprocess
    import sys
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0:
        pytest.skip("pip is not installed (Debian: python3-pip)")
    here = os.path.dirname(os.path.abspath(__file__))
    src = tmp_path / "src"
    shutil.copytree(os.path.join(here, ".."), src, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info",
                                                                               "__pycache__"))
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation",
                        "--no-deps", "--no-compile", "--target", str(target), str(src)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    modules = sorted(f for f in os.listdir(os.path.join(here, "..", "ibnet")) if f.endswith(".py"))
    assert sorted(f for f in os.listdir(target / "ibnet") if f.endswith(".py")) == modules
    env = dict(os.environ, PYTHONPATH=str(target))
    if "/" in env.get("IBNET_LIBRARY", ""):
        env["IBNET_LIBRARY"] = os.path.abspath(env["IBNET_LIBRARY"])  # the child runs elsewhere
    r = subprocess.run([sys.executable, "-c", "import ibnet, ibnet.data; print(ibnet.__file__, ibnet.Model('mlp').name)"],
                       capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(target / "ibnet" / "__init__.py"), "mlp"]


def test_every_status_has_its_exception_class():
    for status, cls in ibnet._BY_STATUS.items():
        assert cls.status == status and issubclass(cls, ibnet.IbnetError)
        with pytest.raises(cls) as e:
            ibnet._check(status)
        assert str(e.value)  # the last error's message, else the status's ib_strerror
    assert sorted(ibnet._BY_STATUS) == list(range(-9, 0))
    ibnet._check(0)
    with pytest.raises(ibnet.IbnetError):
        ibnet._check(-99)  # a status this binding does not know: the base class


@pytest.mark.skipif(not os.environ.get("IBNET_ABI_SIZES"), reason="IBNET_ABI_SIZES (the build's abi_sizes) not set")
def test_struct_mirrors_have_the_c_layout():
    """Every ctypes mirror has the size (or, for the structs mirrored in
    part, the field offset) the C compiler gives: a field added to a public
    struct fails here until the mirror follows (docs/packaging.md)."""
    import ctypes
    import subprocess
    from ibnet import _attack, _info
    out = subprocess.run([os.environ["IBNET_ABI_SIZES"]], capture_output=True, text=True, check=True).stdout
    c = dict((k, int(v)) for k, v in (line.split() for line in out.splitlines()))
    mirrors = {"ib_model_layer_info": ibnet._LayerInfo, "ib_model_tensor": ibnet._Tensor,
               "ib_net_options": ibnet._NetOptions, "ib_calibration": ibnet._Calibration,
               "ib_eval_result": ibnet._EvalResult, "ib_dataset": ibnet._Dataset, "ib_load_options": ibnet._LoadOptions,
               "ib_train_progress": ibnet.TrainProgress, "ib_train_callbacks": ibnet._Callbacks,
               "ib_attack_config": _attack._Config, "ib_attack_row": _attack._Row, "ib_attack_result": _attack._Result,
               "ib_attack_head": _attack._Head, "ib_pixel_norm": _attack._PixelNorm, "ib_mi_var": _info._Var,
               "ib_mi_options": _info._Options, "ib_mi_result": _info._Result, "ib_activations": _info._Activations,
               "ib_bottleneck": _info._Bottleneck, "ib_decoder_data": _info._DecoderData}
    for name, cls in mirrors.items():
        assert ctypes.sizeof(cls) == c[name], name
    assert ibnet.EpochReport.ce.offset == c["ib_epoch_report.ce"]
    assert _info._ModelOutHead.bn_name.offset == c["ib_model_out.bn_name"]
    assert len(c) == len(mirrors) + 2  # abi_sizes lists no struct the test forgets
