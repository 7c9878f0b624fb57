"""Attacks and information estimators from Python (ibnet.attack, ibnet.mi,
ibnet.info, ibnet.activations) against the CLI's --json output on a tiny
model these tests train (IBNET_CLI names the ibnet under test; without it
the comparisons are skipped with a message)."""
import json
import os
import subprocess

import numpy as np
import pytest

import ibnet
from test_ibnet import _config, _write_idx

CLI = os.environ.get("IBNET_CLI")
needs_cli = pytest.mark.skipif(not CLI, reason="IBNET_CLI is not set: no ibnet CLI to compare with")


def _cli(*args):
    out = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 1-epoch run of the tiny VIB model on 8x8 blobs: (checkpoint, data dir)."""
    tmp = tmp_path_factory.mktemp("analysis")
    d = tmp / "blobs"
    d.mkdir()
    _write_idx(str(d), "train", 300, 1)
    _write_idx(str(d), "t10k", 100, 2)
    assert ibnet.train(_config(tmp, d, "run", epochs=1))
    return str(tmp / "run" / "best.safetensors"), d


# ---- attacks ------------------------------------------------------------------
ROW_KEYS = ("clean_acc", "robust_acc", "success_rate", "mean_l2", "mean_linf", "robust_acc_u8", "success_rate_u8")


def _same_as_cli(r, ref):
    assert len(r["rows"]) == len(ref)
    for row, c in zip(r["rows"], ref):
        assert row["eps"] == (c["eps"] if c["eps"] is not None else float("inf")) and c["n"] == r["n"]
        for k in ROW_KEYS:
            got = r["clean_acc"] if k == "clean_acc" else row[k]
            assert got == pytest.approx(c[k], abs=1e-6), k  # the CLI prints 6 decimals
        assert (row["fooled"], row["fooled_u8"]) == (c["fooled"], c["fooled_u8"])
        assert (r["stochastic"], r["samples"]) == (c["stochastic"], c["samples"])


@needs_cli
@pytest.mark.parametrize("kind,extra", [("fgsm", {}), ("pgd", {"steps": 3, "restarts": 2, "loss": "margin"}),
                                        ("cw", {"steps": 5, "search_steps": 2})])
def test_attack_gives_the_figures_of_ibnet_attack_json(run, kind, extra):
    ckpt, _ = run
    eps = [0.1, 0.3] if kind != "cw" else None
    r = ibnet.attack(ckpt, kind, eps=eps, limit=30, eot=2, batch_size=10, seed=3, **extra)
    args = ["attack", ckpt, "--attack", kind, "--limit", 30, "--eot", 2, "--batch-size", 10, "--seed", 3, "--json"]
    if eps:
        args += ["--eps", "0.1,0.3"]
    flags = {"steps": "--steps", "restarts": "--restarts", "loss": "--loss", "search_steps": "--search-steps"}
    for k, v in extra.items():
        args += [flags[k], v]
    _same_as_cli(r, json.loads(_cli(*args)))
    assert r["n"] == 30 and r["clean_pred"].shape == (30,) and r["clean_pred"].dtype == np.int32
    assert all(row["pred"].shape == (30,) for row in r["rows"])
    if kind == "cw":
        assert r["rows"][0]["eps"] == float("inf")


def test_attack_keeps_images_within_the_ball_and_takes_a_numpy_dataset(run):
    ckpt, d = run
    test = ibnet.open_dataset(f"idx:{d}", "test")
    r = ibnet.attack(ckpt, "pgd", eps=[0.05], steps=2, limit=20, eot=2, batch_size=10, keep_images=True)
    by_name = ibnet.attack(ckpt, "pgd", eps=[0.05], steps=2, dataset=test, limit=20, eot=2, batch_size=10)
    assert by_name["rows"][0]["robust_acc"] == r["rows"][0]["robust_acc"]
    np.testing.assert_array_equal(by_name["rows"][0]["pred"], r["rows"][0]["pred"])
    row = r["rows"][0]
    clean = test.images[:20].astype(np.float32) / 255
    assert row["images"].shape == (20, 1, 8, 8) and row["images"].dtype == np.float32
    assert np.abs(row["images"] - clean).max() <= 0.05 + 1e-6
    assert 0 <= row["images"].min() and row["images"].max() <= 1
    assert row["images_u8"].dtype == np.uint8
    assert np.abs(row["images_u8"].astype(np.float32) / 255 - clean).max() <= 0.05 + 1e-6
    # targeted, with given targets: every example pushed to (label + 1) mod 4
    t = ((test.labels[:20] + 1) % 4).astype(np.int32)
    tr = ibnet.attack(ckpt, "fgsm", eps=[0.3], targeted=True, targets=t, limit=20, eot=2, batch_size=10)
    np.testing.assert_array_equal(tr["targets"], t)


def test_attack_errors_are_the_status_classes(run):
    ckpt, _ = run
    with pytest.raises(ibnet.ArgError):
        ibnet.attack(ckpt, "cw", norm="linf")  # CW is L2 only: the library's check
    with pytest.raises(ibnet.ArgError):
        ibnet.attack(ckpt, "nope")
    with pytest.raises(ibnet.ArgError):
        ibnet.attack(ckpt, "fgsm", eps=[-1])
    with pytest.raises(ibnet.IOError_):
        ibnet.attack(ckpt + ".missing", "fgsm")


# ---- mi -------------------------------------------------------------------------
@needs_cli
def test_mi_gives_the_numbers_of_ibnet_mi_json(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0.5)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    for est in ("binning:12", "kde:0.1", "kde-lower:0.5", "binning:8:-2:2"):
        ref = json.loads(_cli("mi", "--x", tmp_path / "x.npy", "--y", tmp_path / "y.npy", "--estimator", est, "--json"))
        assert ibnet.mi(x, y, estimator=est) == ref, est
    ref = json.loads(_cli("mi", "--x", tmp_path / "x.npy", "--estimator", "kde:0.1", "--json"))
    r = ibnet.mi(x, estimator="kde:0.1")
    assert r == ref and r["kind"] == "upper" and r["quantity"] == "I(X;T)"
    lines = _cli("mi", "--x", tmp_path / "x.npy", "--y", tmp_path / "y.npy", "--sweep", "--json").splitlines()
    assert ibnet.mi(x, y, sweep=True) == [json.loads(s) for s in lines]
    ref = json.loads(_cli("mi", "--x", tmp_path / "x.npy", "--y", tmp_path / "y.npy", "--estimator", "infonce",
                          "--steps", 30, "--seed", 4, "--json"))
    r = ibnet.mi(x, y, estimator="infonce", steps=30, seed=4)
    assert r["kind"] == "lower" and r["steps"] == 30 and r["nats"] == pytest.approx(ref["nats"], abs=1e-9)


def test_mi_takes_numpy_dtypes_as_continuous_or_discrete():
    a = np.repeat(np.arange(4), 25)
    r = ibnet.mi(a, a)  # discrete with itself: H(A) = log 4
    assert r["nats"] == pytest.approx(np.log(4), abs=1e-12)
    assert ibnet.mi(a.astype(np.float64), a, estimator="binning:4")["nats"] == pytest.approx(np.log(4), abs=1e-12)
    with pytest.raises(ibnet.ArgError):
        ibnet.mi(a, a[:50])  # rows differ: the library's message
    with pytest.raises(ibnet.ArgError):
        ibnet.mi(a, a, estimator="binning:1")
    with pytest.raises(ibnet.ArgError):
        ibnet.mi(np.array(["a", "b"]), a[:2])


# ---- info and activations ----------------------------------------------------
@needs_cli
@pytest.mark.parametrize("est,layers", [("binning:10", "fc1,vib"), ("kde:0.1", None), ("variational", None),
                                        ("infonce", "fc2"), ("decoder:4:1", "vib")])
def test_info_gives_the_numbers_of_ibnet_info_json(run, est, layers):
    ckpt, _ = run
    trained = est in ("infonce", "decoder:4:1")
    steps = 3 if est.startswith("decoder") else 20
    extra = ["--steps", steps] if trained else []
    args = ["info", ckpt, "--estimator", est, "--limit", 60, "--json", *extra]
    if layers:
        args += ["--layers", layers]
    ref = [json.loads(s) for s in _cli(*args).splitlines()]
    r = ibnet.info(ckpt, layers=layers.split(",") if layers else None, estimator=est, limit=60,
                   steps=steps if trained else None)
    per_layer = 1 if est.startswith("decoder") else 2  # the decoder gives I(X;T) only
    assert len(r) == len(ref) == per_layer * (len(layers.split(",")) if layers else 1)
    for a, b in zip(r, ref):
        if trained:  # trained critics and decoders: compared to rounding
            assert a["nats"] == pytest.approx(b["nats"], abs=1e-9)
            zero = {k: 0 for k in ("nats", "bits", "spread_nats", "h_x_nats", "h_x_given_t_nats", "bits_per_pixel")
                    if k in b}
            a, b = dict(a, **zero), dict(b, **zero)
        assert a == b
    kinds = [x["kind"] for x in r]
    if est == "variational":
        assert kinds == ["upper", "lower"] and r[0]["quantity"] == "I(X;T)"


def test_activations_are_numpy_rows_per_example(run):
    ckpt, d = run
    test = ibnet.open_dataset(f"idx:{d}", "test")
    a = ibnet.activations(ckpt, ["x", "fc1", "vib.mu", "vib"], limit=30)
    assert a["fc1"].shape == (30, 32) and a["fc1"].dtype == np.float32
    assert a["vib.mu"].shape == (30, 8) and a.nodes["vib"] == "vib.z"
    np.testing.assert_array_equal(a["vib"], a["vib.mu"])  # the mean path: z = mu
    np.testing.assert_allclose(a["x"][:, :], (test.images[:30].reshape(30, -1) / 255.0) * 2 - 1, atol=1e-6)
    np.testing.assert_array_equal(a.labels, test.labels[:30])
    s = ibnet.activations(ckpt, ["vib"], limit=30, mean_path=False)
    assert np.abs(s["vib"] - a["vib.mu"]).max() > 0  # one draw of the noise
    with pytest.raises(ibnet.ArgError) as e:
        ibnet.activations(ckpt, ["no_such_layer"], limit=5)
    assert "no_such_layer" in str(e.value)


# ---- evaluation options ------------------------------------------------------
@needs_cli
def test_evaluate_with_limit_and_corruption_as_ibnet_eval(run):
    ckpt, d = run
    with ibnet.Net(ckpt, batch_size=25) as net:
        r = net.evaluate(limit=40, corruption="gaussian_noise", severity=4, corruption_seed=3)
        clean = net.evaluate(limit=40)
        test = ibnet.open_dataset(f"idx:{d}", "test")
        given = net.evaluate(dataset=test, limit=40)  # an ibnet.Dataset in place of a name
    ref = json.loads(_cli("eval", ckpt, "--json", "--batch-size", 25, "--limit", 40, "--corruption", "gaussian_noise",
                          "--severity", 4, "--seed", 3))
    ref_clean = json.loads(_cli("eval", ckpt, "--json", "--batch-size", 25, "--limit", 40))
    assert r["n"] == clean["n"] == 40
    for k in ("acc_1shot", "acc_avg", "acc_mean", "nll_avg", "nll_mean"):
        assert r[k] == pytest.approx(ref[k], abs=1e-6), k
        assert clean[k] == pytest.approx(ref_clean[k], abs=1e-6), k
        assert given[k] == clean[k], k
    with ibnet.Net(ckpt, batch_size=25) as net, pytest.raises(ibnet.ArgError):
        net.evaluate(corruption="frost")
