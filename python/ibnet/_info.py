"""Information estimators (src/info/; docs/information.md): the library
calls behind `ibnet mi` and `ibnet info`, numpy in and out.

- mi(a, b): I(A;B) from n paired rows of two arrays (floating: continuous,
  integer: discrete, each distinct row one symbol); b None: I(X;T) from T.
- activations(checkpoint, layers): the layers' outputs over a data set as
  (n, D) float32 arrays with the labels (ib_net_activations).
- info(checkpoint): I(X;T) and I(T;Y) of a network's layers, or a Gaussian
  bottleneck's variational bounds (ib_net_variational).

Every result is a dict with the keys `ibnet mi --json` / `ibnet info --json`
print (estimator, method, quantity, nats, bits, kind: "estimate" | "lower" |
"upper", n and the settings), the same numbers.
"""
import ctypes as _c
import json

import numpy as np

from . import (_lib, _libc, _check, _s, _Dataset, _WEIGHTS, _open_c, Dataset, ArgError, NoMemoryError)

__all__ = ["mi", "activations", "info", "Activations"]

_MAX_BOTTLENECKS = 32  # IB_MAX_BOTTLENECKS


class _Var(_c.Structure):  # ib_mi_var
    _fields_ = [("n", _c.c_int64), ("d", _c.c_int64), ("f", _c.POINTER(_c.c_float)), ("i", _c.POINTER(_c.c_int64))]


class _Options(_c.Structure):  # ib_mi_options
    _fields_ = [("method", _c.c_int), ("bins", _c.c_int), ("fixed_range", _c.c_bool), ("lo", _c.c_double),
                ("hi", _c.c_double), ("width", _c.c_double), ("sigma2", _c.c_double), ("seed", _c.c_uint64),
                ("seeds", _c.c_int), ("steps", _c.c_int), ("batch", _c.c_int), ("hidden", _c.c_int),
                ("embed", _c.c_int), ("lr", _c.c_double), ("test_share", _c.c_double), ("ema_rate", _c.c_double)]


class _Result(_c.Structure):  # ib_mi_result
    _fields_ = [("estimator", _c.c_char * 96), ("method", _c.c_int), ("kind", _c.c_int), ("quantity", _c.c_char * 16),
                ("nats", _c.c_double), ("bits", _c.c_double), ("n", _c.c_int64), ("n_train", _c.c_int64),
                ("bins", _c.c_int), ("lo", _c.c_double), ("hi", _c.c_double), ("width", _c.c_double),
                ("saturated", _c.c_double), ("states", _c.c_int64), ("sigma2", _c.c_double),
                ("cap_nats", _c.c_double), ("spread_nats", _c.c_double), ("seeds", _c.c_int), ("steps", _c.c_int),
                ("batch", _c.c_int), ("hidden", _c.c_int), ("embed", _c.c_int), ("seed", _c.c_uint64),
                ("samples", _c.c_int), ("label_entropy", _c.c_double), ("ce_nats", _c.c_double)]


class _Activations(_c.Structure):  # ib_activations
    _fields_ = [("n_layers", _c.c_int), ("n", _c.c_int64), ("classes", _c.c_int),
                ("names", _c.POINTER(_c.c_char_p)), ("nodes", _c.POINTER(_c.c_char_p)),
                ("dims", _c.POINTER(_c.c_int64)), ("values", _c.POINTER(_c.POINTER(_c.c_float))),
                ("labels", _c.POINTER(_c.c_int64))]


class _Bottleneck(_c.Structure):  # ib_bottleneck
    _fields_ = [("z", _c.c_void_p), ("mu", _c.c_void_p), ("sigma", _c.c_void_p), ("kl", _c.c_void_p)]


class _ModelOutHead(_c.Structure):  # the leading fields of ib_model_out (read through a pointer only)
    _fields_ = [("logits", _c.c_void_p), ("n_bottlenecks", _c.c_int), ("bn", _Bottleneck * _MAX_BOTTLENECKS),
                ("bn_name", (_c.c_char * 64) * _MAX_BOTTLENECKS)]


class _DecoderData(_c.Structure):  # ib_decoder_data
    _fields_ = [("n", _c.c_int64), ("c", _c.c_int), ("h", _c.c_int), ("w", _c.c_int),
                ("images", _c.POINTER(_c.c_uint8)), ("cond_ndim", _c.c_int), ("cond_shape", _c.c_int64 * 3),
                ("cond", _c.POINTER(_c.c_float))]


_IB_MI_VARIATIONAL, _IB_MI_DECODER = 6, 7
_CRITICS = (3, 4, 5)  # infonce, nwj, mine
_lib.ib_mi_parse.argtypes = [_c.c_char_p, _c.POINTER(_Options)]
_lib.ib_mi_estimate.argtypes = [_c.POINTER(_Var), _c.POINTER(_Var), _c.POINTER(_Options), _c.POINTER(_Result)]
_lib.ib_mi_sweep.argtypes = [_c.POINTER(_Var), _c.POINTER(_Var), _c.POINTER(_Options), _c.POINTER(_Result), _c.c_int,
                             _c.POINTER(_c.c_int)]
_lib.ib_mi_result_json.argtypes = [_c.POINTER(_Result)]
_lib.ib_mi_result_json.restype = _c.c_void_p  # malloc'd
_lib.ib_net_activations.argtypes = [_c.c_void_p, _c.POINTER(_Dataset), _c.POINTER(_c.c_char_p), _c.c_int,
                                    _c.c_int64, _c.c_bool, _c.POINTER(_Activations)]
_lib.ib_activations_free.argtypes = [_c.POINTER(_Activations)]
_lib.ib_net_variational.argtypes = [_c.c_void_p, _c.POINTER(_Dataset), _c.c_int64, _c.c_int, _c.c_uint64,
                                    _c.POINTER(_Result), _c.c_int, _c.POINTER(_c.c_int)]
_lib.ib_net_outputs.argtypes = [_c.c_void_p]
_lib.ib_net_outputs.restype = _c.POINTER(_ModelOutHead)
_lib.ib_decoder_mi.argtypes = [_c.POINTER(_DecoderData), _c.c_int, _c.POINTER(_Options), _c.POINTER(_Result),
                               _c.c_void_p]
_lib.ib_graph_find.argtypes = [_c.c_void_p, _c.c_char_p]
_lib.ib_graph_find.restype = _c.c_void_p
_lib.ib_node_numel.argtypes = [_c.c_void_p]
_lib.ib_node_numel.restype = _c.c_int64


def _var(x, what):
    """An ib_mi_var over a numpy array (n rows; the rest flattened): float
    arrays as float32 (continuous), integer and bool arrays as int64
    (discrete).  Returns (var, the array it borrows)."""
    a = np.asarray(x)
    if a.ndim == 0 or a.shape[0] < 1:
        raise ArgError(f"mi: {what} must have rows, not shape {a.shape}", -1)
    a = a.reshape(a.shape[0], -1)
    if np.issubdtype(a.dtype, np.floating):
        a = np.ascontiguousarray(a, dtype=np.float32)
        return _Var(a.shape[0], a.shape[1], a.ctypes.data_as(_c.POINTER(_c.c_float)), None), a
    if np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_:
        a = np.ascontiguousarray(a, dtype=np.int64)
        return _Var(a.shape[0], a.shape[1], None, a.ctypes.data_as(_c.POINTER(_c.c_int64))), a
    raise ArgError(f"mi: {what} has dtype {a.dtype}; floating (continuous) or integer (discrete) arrays only", -1)


def _options(estimator, seed, seeds, steps):
    o = _Options()
    _check(_lib.ib_mi_parse(_s(estimator), _c.byref(o)))
    if seed is not None:
        o.seed = seed
    if seeds:
        o.seeds = seeds
    if steps:
        o.steps = steps
    return o


def _result_dict(r):
    """ib_mi_result_json's object: the keys and the numbers of --json."""
    p = _lib.ib_mi_result_json(_c.byref(r))
    if not p:
        raise NoMemoryError("ib_mi_result_json: out of memory", -3)
    try:
        return json.loads(_c.string_at(p).decode())
    finally:
        _libc.free(p)


def _estimate(a, b, o, sweep):
    """ib_mi_estimate (a dict) or ib_mi_sweep (a list of dicts)."""
    if sweep:
        r = (_Result * 16)()
        count = _c.c_int()
        _check(_lib.ib_mi_sweep(_c.byref(a), _c.byref(b) if b is not None else None, _c.byref(o), r, 16,
                                _c.byref(count)))
        return [_result_dict(r[k]) for k in range(count.value)]
    r = _Result()
    _check(_lib.ib_mi_estimate(_c.byref(a), _c.byref(b) if b is not None else None, _c.byref(o), _c.byref(r)))
    return _result_dict(r)


def mi(a, b=None, estimator="binning:30", seed=0, seeds=None, steps=None, sweep=False):
    """`ibnet mi --x A --y B --estimator SPEC` as a call: I(A;B) from the
    rows of two numpy arrays (same number of rows).  estimator: binning:BINS,
    binning:BINS:LO:HI, binning:width=W, kde:SIGMA2, kde-lower:SIGMA2,
    infonce, nwj, mine; seed, seeds, steps: the critics'.  b None: I(X;T)
    with T = a (binning: H(T); KDE: bounds).  A dict as --json prints it;
    sweep=True: the list over bins 10..100 or sigma^2 1e-3..1."""
    o = _options(estimator, seed, seeds, steps)
    va, keep_a = _var(a, "a")
    vb, keep_b = _var(b, "b") if b is not None else (None, None)
    return _estimate(va, vb, o, sweep)


class Activations:
    """Layer outputs over a data set: .values {name: float32 (n, D)} in the
    order asked, .nodes {name: the graph node read ("vib" reads "vib.z")},
    .labels int64 (n), .classes."""

    def __init__(self, values, nodes, labels, classes):
        self.values, self.nodes, self.labels, self.classes = values, nodes, labels, classes

    def __getitem__(self, name):
        return self.values[name]


def _eval_batch(path):
    """The run's evaluation batch size (500 when the file does not say), as
    `ibnet info` takes it: the sampled noise is keyed per batch."""
    from . import safetensors as _st
    try:
        cfg = json.loads(_st.read_header(str(path))[1].get("ibnet", "{}")).get("config") or {}
    except (OSError, ValueError):
        return 500  # ib_net_open reports the problem
    b = cfg.get("eval_batch_size")
    return int(b) if isinstance(b, (int, float)) and 1 <= b <= 100000 else 500


def _run_dataset(path):
    from . import safetensors as _st
    return json.loads(_st.read_header(str(path))[1].get("ibnet", "{}")).get("dataset") or ""


def _open(checkpoint, batch_size, weights, mean_path, skip_checksums):
    L = _lib
    o = L.ib_net_options_default()
    o.batch_size = batch_size or _eval_batch(checkpoint)
    o.weights, o.mean_path, o.defer_compile, o.skip_checksums = _WEIGHTS[weights], mean_path, True, skip_checksums
    net = _c.c_void_p()
    _check(L.ib_net_open(_s(checkpoint), _c.byref(o), _c.byref(net)))
    return net


def _data(checkpoint, dataset, split, data_dir, skip_hash):
    if isinstance(dataset, Dataset):
        from . import data as _d
        return _d._to_c(dataset)
    return _open_c(dataset if dataset is not None else _run_dataset(checkpoint), split, data_dir, 1, skip_hash)


def _activations(net, d, names, limit, mean_path):
    arr = (_c.c_char_p * len(names))(*[_s(x) for x in names])
    a = _Activations()
    _check(_lib.ib_net_activations(net, d, arr, len(names), limit, mean_path, _c.byref(a)))
    try:
        n = a.n
        values, nodes = {}, {}
        for k in range(a.n_layers):
            D = a.dims[k]
            values[names[k]] = np.ctypeslib.as_array(a.values[k], shape=(n * D,)).reshape(n, D).copy() if n * D \
                else np.zeros((n, D), np.float32)
            nodes[names[k]] = a.nodes[k].decode()
        labels = np.ctypeslib.as_array(a.labels, shape=(n,)).copy()
        return Activations(values, nodes, labels, a.classes)
    finally:
        _lib.ib_activations_free(_c.byref(a))


def activations(checkpoint, layers, dataset=None, split="test", data_dir=None, limit=0, mean_path=True,
                batch_size=None, weights="default", skip_checksums=False, skip_hash=False):
    """ib_net_activations: the outputs of the named layers (graph nodes named
    as the layer: "fc1", "layer1.2", "vib.mu"; "x" the input as fed; a
    bottleneck's name reads its sample NAME.z) over the first `limit`
    examples (0: all) of a data set (default the run's test split; or an
    ibnet.Dataset).  mean_path: stochastic layers take their mean; else one
    draw keyed by the run's evaluation seed and the batch.  batch_size:
    default the run's evaluation batch size.  An Activations."""
    names = [layers] if isinstance(layers, str) else list(layers)
    net = _open(checkpoint, batch_size, weights, mean_path, skip_checksums)
    d = None
    try:
        d = _data(checkpoint, dataset, split, data_dir, skip_hash)
        return _activations(net, d, names, limit, mean_path)
    finally:
        _lib.ib_dataset_free(d)
        _lib.ib_net_close(net)


def info(checkpoint, layers=None, estimator="binning:30", dataset=None, split="test", data_dir=None, limit=0,
         sample=False, sweep=False, seed=None, seeds=None, steps=None, samples=None, batch_size=None,
         weights="default", skip_checksums=False, skip_hash=False):
    """`ibnet info CHECKPOINT` as a call: for each layer T (default: the
    Gaussian bottlenecks), I(X;T) then I(T;Y) over a data set, as a list of
    the dicts `ibnet info --json` prints (layer, dims, estimator, quantity,
    nats, bits, kind, n, settings; with sweep=True the sweep of each).
    estimator: binning, kde, kde-lower (I(X;T) from T alone), infonce, nwj,
    mine (critics between the input and T, T and the labels), variational (a
    Gaussian bottleneck's own bounds: the rate, an upper bound on I(X;Z),
    and H(Y) - E[-log q(y|z)], a lower bound on I(Z;Y); samples S, seed the
    noise key, default the run's).  sample: stochastic layers take one draw
    (default the mean path).  decoder[:CHANNELS[:LAYERS[:LEVELS]]]: PixelCNN
    decoders of the binarised images, one given each layer (a feature map
    keeps its shape) and one unconditional, trained on part of the examples:
    I(X;T) ~ H(X) - H(X|T) per layer (one dict each; one-channel images)."""
    o = _options(estimator, 0 if seed is None else seed, seeds, steps)
    if sweep and o.method not in (0, 1, 2):
        raise ArgError("info: sweep is for binning and kde", -1)
    names = [layers] if isinstance(layers, str) else list(layers) if layers else []
    net = _open(checkpoint, batch_size, weights, not sample, skip_checksums)
    d = None
    try:
        mo = _lib.ib_net_outputs(net).contents
        bn_names = [mo.bn_name[k].value.decode() for k in range(mo.n_bottlenecks)]
        if o.method == _IB_MI_VARIATIONAL:
            which = []
            for name in names or bn_names:
                if name not in bn_names:
                    raise ArgError(f"info: layer '{name}' is not a Gaussian bottleneck; the variational bounds exist "
                                   f"for {', '.join(bn_names) or 'none of this model layers'}", -1)
                which.append(bn_names.index(name))
            d = _data(checkpoint, dataset, split, data_dir, skip_hash)
            r = (_Result * (2 * _MAX_BOTTLENECKS))()
            count = _c.c_int()
            key = seed if seed is not None else _lib.ib_net_eval_seed(net)
            _check(_lib.ib_net_variational(net, d, limit, samples or 0, key, r, 2 * _MAX_BOTTLENECKS,
                                           _c.byref(count)))
            out = []
            for bl in which:
                mu = mo.bn[bl].mu
                dims = _lib.ib_node_numel(mu) // _lib.ib_node_dim(mu, 0)
                for q in range(2):
                    out.append({"layer": bn_names[bl], "dims": dims, **_result_dict(r[2 * bl + q])})
            return out
        if not names:
            names = bn_names
            if not names:
                raise ArgError(f"info: {checkpoint} has no Gaussian bottleneck: name the layers", -1)
        critic = o.method in _CRITICS
        d = _data(checkpoint, dataset, split, data_dir, skip_hash)
        if o.method == _IB_MI_DECODER:
            return _decoder(net, d.contents, _activations(net, d, names, limit, not sample), names, o)
        acts = _activations(net, d, names + (["x"] if critic else []), limit, not sample)
        x = _var(acts.values["x"], "x")[0] if critic else None
        y = _var(acts.labels[:, None], "labels")[0]
        out = []
        for name in names:
            t, keep = _var(acts.values[name], name)
            for q, quantity in enumerate(("I(X;T)", "I(T;Y)")):
                first, second = (x if critic else t, t if critic else None) if q == 0 else (t, y)
                res = _estimate(first, second, o, sweep)
                for r in (res if sweep else [res]):
                    r["quantity"] = quantity
                    out.append({"layer": name, "dims": acts.values[name].shape[1], **r})
        return out
    finally:
        _lib.ib_dataset_free(d)
        _lib.ib_net_close(net)


def _decoder(net, d, acts, names, o):
    """`ibnet info --estimator decoder` (cli/info_decoder.c): one
    conditional decoder per layer over the data set's own pixels."""
    if d.c != 1:
        raise ArgError(f"info: the decoder models binarised images of one channel; {d.name.decode()} has {d.c} "
                       "channels", -1)
    n = len(acts.labels)
    dd = (_DecoderData * len(names))()
    g = _lib.ib_net_graph(net)
    for k, name in enumerate(names):
        v = acts.values[name]
        dd[k].n, dd[k].c, dd[k].h, dd[k].w, dd[k].images = n, d.c, d.h, d.w, d.images
        dd[k].cond = v.ctypes.data_as(_c.POINTER(_c.c_float))  # acts keeps v alive
        node = _lib.ib_graph_find(g, _s(acts.nodes[name]))
        if node and _lib.ib_node_ndim(node) == 4:  # a feature map keeps its shape
            dd[k].cond_ndim = 3
            for j in range(3):
                dd[k].cond_shape[j] = _lib.ib_node_dim(node, j + 1)
        else:
            dd[k].cond_ndim, dd[k].cond_shape[0] = 1, v.shape[1]
    r = (_Result * len(names))()
    _check(_lib.ib_decoder_mi(dd, len(names), _c.byref(o), r, None))
    out = []
    for k, name in enumerate(names):
        r[k].quantity = b"I(X;T)"
        out.append({"layer": name, "dims": acts.values[name].shape[1], **_result_dict(r[k])})
    return out
