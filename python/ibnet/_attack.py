"""Adversarial attacks on a checkpoint (ib_attack_run; docs/attacks.md):
the library call behind `ibnet attack`, with numpy out.

attack(checkpoint, "pgd", eps=[0.1, 0.2]) opens the checkpoint as a network
whose graph gets the attack head before it is compiled, exactly as the CLI
does, attacks the test split of the run's data set (or any name, or an
ibnet.Dataset) in pixel units, and returns the report: the same figures as
`ibnet attack --json`, with the predictions (and, with keep_images, the
adversarial images) as numpy arrays.
"""
import ctypes as _c
import math

import numpy as np

from . import (_lib, _check, _s, _Dataset, _WEIGHTS, _open_c, Dataset, ArgError)

__all__ = ["attack", "MAX_EPS"]

MAX_EPS = 16  # IB_ATTACK_MAX_EPS
_KIND = {"fgsm": 0, "pgd": 1, "cw": 2}
_NORM = {"linf": 0, "l2": 1}
_LOSS = {"ce": 0, "margin": 1, "both": 2}


class _Config(_c.Structure):  # ib_attack_config
    _fields_ = [("kind", _c.c_int), ("norm", _c.c_int), ("loss", _c.c_int), ("targeted", _c.c_bool),
                ("targets", _c.POINTER(_c.c_int32)), ("n_eps", _c.c_int), ("eps", _c.c_float * MAX_EPS),
                ("steps", _c.c_int), ("step_size", _c.c_float), ("restarts", _c.c_int), ("random_start", _c.c_bool),
                ("eot_samples", _c.c_int), ("mean_path", _c.c_bool), ("cw_search_steps", _c.c_int),
                ("cw_c0", _c.c_float), ("cw_kappa", _c.c_float), ("keep_images", _c.c_bool), ("seed", _c.c_uint64)]


class _Row(_c.Structure):  # ib_attack_row
    _fields_ = [("eps", _c.c_float), ("robust_acc", _c.c_double), ("success_rate", _c.c_double),
                ("mean_l2", _c.c_double), ("mean_linf", _c.c_double), ("robust_acc_u8", _c.c_double),
                ("success_rate_u8", _c.c_double), ("pred", _c.POINTER(_c.c_int32)),
                ("images", _c.POINTER(_c.c_float)), ("images_u8", _c.POINTER(_c.c_uint8))]


class _Result(_c.Structure):  # ib_attack_result
    _fields_ = [("n", _c.c_int64), ("classes", _c.c_int), ("stochastic", _c.c_bool), ("samples", _c.c_int),
                ("clean_acc", _c.c_double), ("clean_pred", _c.POINTER(_c.c_int32)),
                ("targets", _c.POINTER(_c.c_int32)), ("n_rows", _c.c_int), ("rows", _Row * MAX_EPS),
                ("seconds", _c.c_double)]


class _Head(_c.Structure):  # ib_attack_head
    _fields_ = [("g", _c.c_void_p), ("x", _c.c_void_p), ("logits", _c.c_void_p), ("w", _c.c_void_p),
                ("loss", _c.c_void_p)]


class _PixelNorm(_c.Structure):  # ib_pixel_norm
    _fields_ = [("channels", _c.c_int), ("mean", _c.c_float * 4), ("std", _c.c_float * 4)]


_lib.ib_attack_config_default.argtypes = [_c.c_int]
_lib.ib_attack_config_default.restype = _Config
_lib.ib_attack_config_check.argtypes = [_c.POINTER(_Config)]
_lib.ib_attack_head_build.argtypes = [_c.c_void_p, _c.c_void_p, _c.c_void_p, _c.POINTER(_Head)]
_lib.ib_net_compile.argtypes = [_c.c_void_p]
_lib.ib_pixel_norm_from.argtypes = [_c.c_void_p, _c.c_int, _c.POINTER(_PixelNorm)]
_lib.ib_attack_run.argtypes = [_c.POINTER(_Head), _c.POINTER(_PixelNorm), _c.POINTER(_Dataset), _c.POINTER(_Config),
                               _c.POINTER(_Result)]
_lib.ib_attack_result_free.argtypes = [_c.POINTER(_Result)]


def _choice(table, value, what):
    if value not in table:
        raise ArgError(f"attack: unknown {what} {value!r} ({', '.join(table)})", -1)
    return table[value]


def attack(checkpoint, kind="pgd", *, norm=None, eps=None, steps=None, step_size=None, restarts=1,
           random_start=True, loss=None, targeted=False, targets=None, eot=None, mean_path=True, kappa=0.0,
           search_steps=9, c0=None, limit=1000, seed=1, dataset=None, split="test", data_dir=None, batch_size=100,
           weights="default", keep_images=False, skip_checksums=False, skip_hash=False):
    """`ibnet attack CHECKPOINT --attack KIND` as a call.  kind: "fgsm",
    "pgd" or "cw"; norm "linf" | "l2" (default linf; cw: l2); eps: radii in
    pixel units (default 0.1, 0.2, 0.3; cw: one unbounded row); steps,
    step_size, restarts, random_start, loss ("ce" | "margin" | "both"),
    targeted (targets: (n) classes, else drawn by the seed), eot (S of the
    S-sample average; default the run's evaluation samples), mean_path (also
    attack through z = mu), kappa, search_steps, c0 (CW); limit: the first N
    examples (0: all); dataset: a name (default the run's) or an
    ibnet.Dataset; weights "default" | "raw" (--no-ema) | "ema".

    Returns a dict: n, classes, stochastic, samples, eot_samples,
    clean_acc, clean_pred (int32 (n)), targets (int32 (n) or None),
    seconds, and rows: one dict per eps with eps (inf: CW unbounded),
    robust_acc, success_rate, mean_l2, mean_linf, robust_acc_u8,
    success_rate_u8, fooled, fooled_u8 (as `ibnet attack --json`), pred
    (int32 (n)) and with keep_images images (float32 (n, C, H, W) pixels in
    [0, 1]) and images_u8 (uint8, rounded)."""
    cfg = _lib.ib_attack_config_default(_choice(_KIND, kind, "attack"))
    if norm is not None:
        cfg.norm = _choice(_NORM, norm, "norm")
    if loss is not None:
        cfg.loss = _choice(_LOSS, loss, "loss")
    if eps is not None:
        eps = [eps] if np.isscalar(eps) else list(eps)
        if not 1 <= len(eps) <= MAX_EPS:
            raise ArgError(f"attack: 1..{MAX_EPS} eps values, not {len(eps)}", -1)
        cfg.n_eps = len(eps)
        for k, e in enumerate(eps):
            cfg.eps[k] = e
    if steps is not None:
        cfg.steps = steps
    if step_size is not None:
        cfg.step_size = step_size
    cfg.restarts, cfg.random_start, cfg.targeted = restarts, random_start, targeted
    cfg.mean_path, cfg.cw_search_steps, cfg.cw_kappa = mean_path, search_steps, kappa
    if c0 is not None:
        cfg.cw_c0 = c0
    cfg.keep_images, cfg.seed = keep_images, seed
    if eot is not None:
        cfg.eot_samples = eot
    if limit < 0 or batch_size < 1:
        raise ArgError("attack: limit >= 0 and batch_size >= 1", -1)
    _check(_lib.ib_attack_config_check(_c.byref(cfg)))

    o = _lib.ib_net_options_default()
    o.batch_size, o.weights, o.input = batch_size, _WEIGHTS[weights], 0
    o.input_grad, o.defer_compile, o.skip_checksums = True, True, skip_checksums
    net = _c.c_void_p()
    _check(_lib.ib_net_open(_s(checkpoint), _c.byref(o), _c.byref(net)))
    d = None
    r = _Result()
    try:
        head = _Head()
        _check(_lib.ib_attack_head_build(_lib.ib_net_graph(net), _lib.ib_net_input(net), _lib.ib_net_logits(net),
                                         _c.byref(head)))
        _check(_lib.ib_net_compile(net))
        # the network's own cross-entropy node reads labels: keep them valid
        _c.memset(_lib.ib_node_labels(_lib.ib_net_labels(net)), 0, batch_size * 4)
        if eot is None:
            S = _lib.ib_net_eval_samples(net)
            cfg.eot_samples = S if S > 0 else 12
        chw = _c.c_int(), _c.c_int(), _c.c_int()
        _lib.ib_model_input_shape(_lib.ib_net_model(net), *map(_c.byref, chw))
        pn = _PixelNorm()
        _check(_lib.ib_pixel_norm_from(_lib.ib_net_batcher_config(net), chw[0].value, _c.byref(pn)))
        if isinstance(dataset, Dataset):
            from . import data as _data
            ds = dataset
            if limit and limit < len(ds):
                ds = Dataset(ds.images[:limit], ds.labels[:limit], ds.classes, ds.name)
            d = _data._to_c(ds)
        else:
            if dataset is None:
                from . import safetensors as _st
                import json
                dataset = json.loads(_st.read_header(str(checkpoint))[1].get("ibnet", "{}")).get("dataset") or ""
            d = _open_c(dataset, split, data_dir, 1, skip_hash, limit)
        n = d.contents.n
        keep_targets = None
        if targets is not None:
            keep_targets = np.ascontiguousarray(targets, dtype=np.int32)
            if keep_targets.shape != (n,):
                raise ArgError(f"attack: targets must be ({n},), not {keep_targets.shape}", -1)
            cfg.targets = keep_targets.ctypes.data_as(_c.POINTER(_c.c_int32))
        _check(_lib.ib_attack_run(_c.byref(head), _c.byref(pn), d, _c.byref(cfg), _c.byref(r)))
        return _report(r, cfg, d.contents)
    finally:
        _lib.ib_attack_result_free(_c.byref(r))
        if d is not None:
            _lib.ib_dataset_free(d)
        _lib.ib_net_close(net)


def _ints(p, n):
    return np.ctypeslib.as_array(p, shape=(n,)).copy() if p and n else None


def _report(r, cfg, d):
    n = r.n
    out = {"n": n, "classes": r.classes, "stochastic": bool(r.stochastic), "samples": r.samples,
           "eot_samples": cfg.eot_samples, "clean_acc": r.clean_acc, "clean_pred": _ints(r.clean_pred, n),
           "targets": _ints(r.targets, n), "seconds": r.seconds, "rows": []}
    def llround(x):
        return int(math.floor(x + 0.5))

    denom = n if cfg.targeted else llround(r.clean_acc * n)  # as the CLI counts "fooled"
    shape = (n, d.c, d.h, d.w)
    size = int(np.prod(shape))
    for k in range(r.n_rows):
        row = r.rows[k]
        e = float(row.eps)
        # the float32 radius as its shortest decimal (0.1, not 0.10000000149), as the CLI prints it
        item = {"eps": math.inf if math.isinf(e) else float(str(np.float32(e)))}
        for f in ("robust_acc", "success_rate", "mean_l2", "mean_linf", "robust_acc_u8", "success_rate_u8"):
            item[f] = getattr(row, f)
        item["fooled"] = llround(row.success_rate * denom)
        item["fooled_u8"] = llround(row.success_rate_u8 * denom)
        item["pred"] = _ints(row.pred, n)
        if row.images:
            item["images"] = np.ctypeslib.as_array(row.images, shape=(size,)).reshape(shape).copy()
        if row.images_u8:
            item["images_u8"] = np.ctypeslib.as_array(row.images_u8, shape=(size,)).reshape(shape).copy()
        out["rows"].append(item)
    return out
