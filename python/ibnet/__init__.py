"""Python binding of libibnet over ctypes, with numpy arrays.

The shared library is found through $IBNET_LIBRARY (a path), else as
libibnet.so.0 on the loader's path.  Its ib_version() must have the major.minor
this binding was written for: public structs are passed by value until 1.0,
so another minor version may have another layout (docs/packaging.md).

Every call that returns a non-OK ib_status raises the exception class of that
status (ArgError, IOError_, FormatError, ...; all IbnetError) with
ib_last_error()'s message.

The PyTorch interop is the submodule ibnet.torch (imported on first use, so
this package works without torch); ibnet.safetensors reads and writes
checkpoints with numpy alone.
"""
import ctypes
import json
import os

import numpy as np

__all__ = [
    "IbnetError", "ArgError", "ShapeError", "NoMemoryError", "IOError_", "FormatError",
    "MismatchError", "StateError", "NumericError", "UnsupportedError",
    "version", "Model", "Layer", "Net", "Dataset", "open_dataset", "train", "TrainProgress", "EpochReport",
    "data", "attack", "mi", "info", "activations", "Activations",
]

ABI_VERSION = (0, 1)  # the major.minor whose struct layouts this file mirrors


def _load():
    path = os.environ.get("IBNET_LIBRARY") or "libibnet.so.0"
    try:
        return ctypes.CDLL(path)
    except OSError as e:
        raise ImportError(f"ibnet: cannot load the shared library {path!r} ({e}); "
                          "install ibnet or set IBNET_LIBRARY to libibnet.so") from e


_lib = _load()
_c = ctypes
_lib.ib_version.restype = _c.c_char_p
_lib.ib_last_error.restype = _c.c_char_p
_lib.ib_strerror.restype = _c.c_char_p
_lib.ib_strerror.argtypes = [_c.c_int]


def version():
    """The library's version string (ib_version)."""
    return _lib.ib_version().decode()


def _check_version():
    v = version()
    try:
        major_minor = tuple(int(x) for x in v.split(".")[:2])
    except ValueError:
        major_minor = None
    if major_minor != ABI_VERSION:
        raise ImportError(f"ibnet: the library is version {v}, this binding needs "
                          f"{ABI_VERSION[0]}.{ABI_VERSION[1]}.x (its struct layouts differ)")


_check_version()


class IbnetError(Exception):
    """A non-OK ib_status: .status is the code, the message ib_last_error()'s."""
    status = None

    def __init__(self, message, status=None):
        super().__init__(message)
        if status is not None:
            self.status = status


class ArgError(IbnetError, ValueError):
    status = -1


class ShapeError(IbnetError, ValueError):
    status = -2


class NoMemoryError(IbnetError, MemoryError):
    status = -3


class IOError_(IbnetError, OSError):
    status = -4


class FormatError(IbnetError, ValueError):
    status = -5


class MismatchError(IbnetError, ValueError):
    status = -6


class StateError(IbnetError, RuntimeError):
    status = -7


class NumericError(IbnetError, ArithmeticError):
    status = -8


class UnsupportedError(IbnetError, NotImplementedError):
    status = -9


_BY_STATUS = {cls.status: cls for cls in (ArgError, ShapeError, NoMemoryError, IOError_, FormatError,
                                          MismatchError, StateError, NumericError, UnsupportedError)}


def _check(status):
    if status == 0:
        return
    msg = _lib.ib_last_error().decode(errors="replace")
    if not msg:
        msg = _lib.ib_strerror(status).decode(errors="replace")
    cls = _BY_STATUS.get(status, IbnetError)
    raise cls(msg, status)


def _s(text):
    return None if text is None else os.fsencode(text) if isinstance(text, os.PathLike) else str(text).encode()


# ---- models -----------------------------------------------------------------
_lib.ib_model_load.argtypes = [_c.c_char_p, _c.POINTER(_c.c_void_p)]
_lib.ib_model_parse.argtypes = [_c.c_char_p, _c.c_char_p, _c.POINTER(_c.c_void_p)]
_lib.ib_model_free.argtypes = [_c.c_void_p]
_lib.ib_model_text.argtypes = [_c.c_void_p]
_lib.ib_model_text.restype = _c.c_char_p
_lib.ib_model_name.argtypes = [_c.c_void_p]
_lib.ib_model_name.restype = _c.c_char_p
_lib.ib_model_summary.argtypes = [_c.c_void_p]
_lib.ib_model_summary.restype = _c.c_void_p  # malloc'd: freed with libc free
_lib.ib_model_builtin_count.restype = _c.c_int
_lib.ib_model_layer_count.argtypes = [_c.c_void_p]
_lib.ib_model_input_shape.argtypes = [_c.c_void_p] + [_c.POINTER(_c.c_int)] * 3
_lib.ib_model_classes.argtypes = [_c.c_void_p]
_lib.ib_model_param_count.argtypes = [_c.c_void_p]
_lib.ib_model_param_count.restype = _c.c_int64
_lib.ib_model_bottleneck_count.argtypes = [_c.c_void_p]
_lib.ib_model_paths.argtypes = [_c.c_void_p]
_lib.ib_model_paths.restype = _c.c_int64
_lib.ib_model_builtin_name.argtypes = [_c.c_int]
_lib.ib_model_builtin_name.restype = _c.c_char_p


class _LayerInfo(_c.Structure):  # ib_model_layer_info
    _fields_ = [("name", _c.c_char_p), ("kind", _c.c_char_p), ("depth", _c.c_int), ("arg", _c.c_int64),
                ("n_options", _c.c_int), ("n_tensors", _c.c_int), ("in_ndim", _c.c_int), ("out_ndim", _c.c_int),
                ("in_", _c.c_int64 * 3), ("out", _c.c_int64 * 3), ("params", _c.c_int64),
                ("bottleneck", _c.c_bool)]


class _Tensor(_c.Structure):  # ib_model_tensor
    _fields_ = [("name", _c.c_char * 128), ("ndim", _c.c_int), ("shape", _c.c_int64 * 4), ("trainable", _c.c_bool)]


_lib.ib_model_layer.argtypes = [_c.c_void_p, _c.c_int, _c.POINTER(_LayerInfo)]
_lib.ib_model_layer_option.argtypes = [_c.c_void_p, _c.c_int, _c.c_int, _c.POINTER(_c.c_char_p), _c.c_char_p,
                                       _c.c_size_t]
_lib.ib_model_layer_tensor.argtypes = [_c.c_void_p, _c.c_int, _c.c_int, _c.POINTER(_Tensor)]


def _option_value(text):
    """An option as the canonical text writes it, typed: "2" -> 2, "0.5" ->
    0.5, "true" -> True, "1000,500" -> (1000, 500), a word stays a str."""
    if text in ("true", "false"):
        return text == "true"
    parts = text.split(",")
    try:
        if len(parts) > 1:
            return tuple(int(p) for p in parts)
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


class Layer:
    """One item of a model's structured listing (ib_model_layer): a layer or
    a group.  .name (full dotted name, the prefix of its parameters), .kind
    ("conv", "vib", ..., or "group"), .depth, .arg (the positional argument,
    0 when none), .options (dict key -> int/float/bool/str/tuple, as the
    canonical text writes them, name= excluded), .in_shape/.out_shape (per
    example; () for a group), .params (trainable scalars), .bottleneck,
    .tensors (list of (name, shape, trainable) in the order ibnet creates
    them)."""

    __slots__ = ("name", "kind", "depth", "arg", "options", "in_shape", "out_shape", "params", "bottleneck",
                 "tensors")

    def __repr__(self):
        opts = "".join(f" {k}={v}" for k, v in self.options.items())
        return f"Layer({self.name!r}: {self.kind}{' %d' % self.arg if self.arg else ''}{opts}, " \
               f"{self.in_shape} -> {self.out_shape})"


_libc = ctypes.CDLL(None)
_libc.free.argtypes = [_c.c_void_p]


class Model:
    """A model description (ib_model): Model("mlp"), Model("path/net.ibm") or
    Model.parse(text)."""

    def __init__(self, name_or_path=None, _handle=None):
        self._h = _c.c_void_p()
        if _handle is not None:
            self._h = _handle
        else:
            _check(_lib.ib_model_load(_s(name_or_path), _c.byref(self._h)))

    @classmethod
    def parse(cls, text, source=None):
        h = _c.c_void_p()
        _check(_lib.ib_model_parse(_s(text), _s(source), _c.byref(h)))
        return cls(_handle=h)

    @staticmethod
    def builtins():
        return [_lib.ib_model_builtin_name(i).decode() for i in range(_lib.ib_model_builtin_count())]

    @property
    def name(self):
        return _lib.ib_model_name(self._h).decode()

    @property
    def text(self):
        """The canonical text (ib_model_text)."""
        return _lib.ib_model_text(self._h).decode()

    def summary(self):
        """The layer table (ib_model_summary)."""
        p = _lib.ib_model_summary(self._h)
        if not p:
            raise NoMemoryError("ib_model_summary returned NULL", -3)
        try:
            return _c.string_at(p).decode()
        finally:
            _libc.free(p)

    @property
    def input_shape(self):
        """(C, H, W) of one example."""
        c, h, w = _c.c_int(), _c.c_int(), _c.c_int()
        _lib.ib_model_input_shape(self._h, _c.byref(c), _c.byref(h), _c.byref(w))
        return (c.value, h.value, w.value)

    @property
    def classes(self):
        return _lib.ib_model_classes(self._h)

    @property
    def param_count(self):
        """Trainable scalars (buffers excluded)."""
        return _lib.ib_model_param_count(self._h)

    @property
    def bottleneck_count(self):
        """Gaussian bottlenecks (vib, vibcell, vsdhead), in depth order."""
        return _lib.ib_model_bottleneck_count(self._h)

    @property
    def paths(self):
        """Particle paths per example (the product of particles=)."""
        return _lib.ib_model_paths(self._h)

    def layers(self):
        """The structured listing (ib_model_layer...): a list of Layer, the
        layer and group lines of the canonical text in order."""
        out = []
        info, t, key = _LayerInfo(), _Tensor(), _c.c_char_p()
        value = _c.create_string_buffer(256)
        for i in range(_lib.ib_model_layer_count(self._h)):
            _check(_lib.ib_model_layer(self._h, i, _c.byref(info)))
            L = Layer()
            L.name, L.kind, L.depth, L.arg = info.name.decode(), info.kind.decode(), info.depth, info.arg
            L.in_shape = tuple(info.in_[:info.in_ndim])
            L.out_shape = tuple(info.out[:info.out_ndim])
            L.params, L.bottleneck = info.params, bool(info.bottleneck)
            L.options = {}
            for j in range(info.n_options):
                _check(_lib.ib_model_layer_option(self._h, i, j, _c.byref(key), value, len(value)))
                L.options[key.value.decode()] = _option_value(value.value.decode())
            L.tensors = []
            for j in range(info.n_tensors):
                _check(_lib.ib_model_layer_tensor(self._h, i, j, _c.byref(t)))
                L.tensors.append((t.name.decode(), tuple(t.shape[:t.ndim]), bool(t.trainable)))
            out.append(L)
        return out

    def __del__(self):
        if getattr(self, "_h", None):
            _lib.ib_model_free(self._h)
            self._h = None


# ---- checkpoints as runnable networks (ib_net_open) ---------------------------
class _NetOptions(_c.Structure):  # ib_net_options
    _fields_ = [("batch_size", _c.c_int64), ("weights", _c.c_int), ("input", _c.c_int), ("input_grad", _c.c_bool),
                ("samples", _c.c_int), ("mean_path", _c.c_bool), ("defer_compile", _c.c_bool),
                ("skip_checksums", _c.c_bool), ("scope", _c.c_char_p), ("given_noise", _c.c_bool)]


_lib.ib_net_options_default.restype = _NetOptions
_lib.ib_net_open.argtypes = [_c.c_char_p, _c.POINTER(_NetOptions), _c.POINTER(_c.c_void_p)]
_lib.ib_net_close.argtypes = [_c.c_void_p]
for _f in ("ib_net_graph", "ib_net_input", "ib_net_logits", "ib_net_log_probs", "ib_net_model"):
    getattr(_lib, _f).argtypes = [_c.c_void_p]
    getattr(_lib, _f).restype = _c.c_void_p
for _f in ("ib_net_labels", "ib_net_loss"):
    getattr(_lib, _f).argtypes = [_c.c_void_p]
    getattr(_lib, _f).restype = _c.c_void_p
_lib.ib_node_labels.argtypes = [_c.c_void_p]
_lib.ib_node_labels.restype = _c.POINTER(_c.c_int32)
_lib.ib_node_grad.argtypes = [_c.c_void_p]
_lib.ib_node_grad.restype = _c.POINTER(_c.c_float)
_lib.ib_node_scalar.argtypes = [_c.c_void_p]
_lib.ib_node_scalar.restype = _c.c_float
_lib.ib_graph_backward.argtypes = [_c.c_void_p, _c.c_void_p]
_lib.ib_net_noise_count.argtypes = [_c.c_void_p]
_lib.ib_net_noise.argtypes = [_c.c_void_p, _c.c_int]
_lib.ib_net_noise.restype = _c.c_void_p
_lib.ib_net_used_ema.argtypes = [_c.c_void_p]
_lib.ib_net_used_ema.restype = _c.c_bool
_lib.ib_graph_forward.argtypes = [_c.c_void_p]
_lib.ib_graph_error.argtypes = [_c.c_void_p]
_lib.ib_graph_error.restype = _c.c_char_p
_lib.ib_node_data.argtypes = [_c.c_void_p]
_lib.ib_node_data.restype = _c.POINTER(_c.c_float)
_lib.ib_node_ndim.argtypes = [_c.c_void_p]
_lib.ib_node_dim.argtypes = [_c.c_void_p, _c.c_int]
_lib.ib_node_dim.restype = _c.c_int64
_lib.ib_node_name.argtypes = [_c.c_void_p]
_lib.ib_node_name.restype = _c.c_char_p

_WEIGHTS = {"default": 0, "raw": 1, "ema": 2}
_CALIBRATION_BINS = 15  # IB_CALIBRATION_BINS


class _Calibration(_c.Structure):  # ib_calibration
    _fields_ = [("ece", _c.c_double), ("brier", _c.c_double), ("entropy", _c.c_double),
                ("bin_count", _c.c_int64 * _CALIBRATION_BINS), ("bin_conf", _c.c_double * _CALIBRATION_BINS),
                ("bin_acc", _c.c_double * _CALIBRATION_BINS)]


class _EvalResult(_c.Structure):  # ib_eval_result
    _fields_ = [("n", _c.c_int64), ("classes", _c.c_int), ("acc_1shot", _c.c_double), ("acc_avg", _c.c_double),
                ("acc_mean", _c.c_double), ("nll_avg", _c.c_double), ("nll_mean", _c.c_double),
                ("ce_samples", _c.c_double), ("kl", _c.c_double * 32), ("n_kl", _c.c_int),
                ("confusion", _c.POINTER(_c.c_int64)), ("calib", _Calibration), ("calib_mean", _Calibration)]


for _f in ("ib_net_kl", "ib_net_batcher_config"):
    getattr(_lib, _f).argtypes = [_c.c_void_p]
    getattr(_lib, _f).restype = _c.c_void_p
_lib.ib_net_eval_samples.argtypes = [_c.c_void_p]
_lib.ib_net_eval_seed.argtypes = [_c.c_void_p]
_lib.ib_net_eval_seed.restype = _c.c_uint64
_lib.ib_eval_result_free.argtypes = [_c.POINTER(_EvalResult)]


def _node_array(node):
    """A numpy view (no copy) of a float node's buffer."""
    shape = tuple(_lib.ib_node_dim(node, a) for a in range(_lib.ib_node_ndim(node)))
    return np.ctypeslib.as_array(_lib.ib_node_data(node), shape=shape)


class Net:
    """A training checkpoint opened as a runnable network (ib_net_open):
    Net("run/best.safetensors", batch_size=64).  Options as ib_net_options:
    weights "default" | "raw" | "ema"; pixels=True takes pixels in [0, 1]
    (the run's normalisation then runs inside the graph), else the model's
    own (normalised) input; samples S >= 1 repeats each example S times;
    mean_path: stochastic layers take their mean; given_noise: each Gaussian
    bottleneck takes the noise passed to forward (zeros when none is passed).

    forward(x) takes float32 (n, C, H, W) with n <= batch_size and returns
    the logits (n * max(S, 1) * ..., classes): a view of the graph's buffer
    (no copy), valid until the next forward.  Each forward advances the
    graph's step, so sampled (keyed) noise differs from call to call."""

    def __init__(self, path, batch_size=1, weights="default", pixels=False, samples=0, mean_path=False,
                 given_noise=False, skip_checksums=False, scope=None, input_grad=False):
        o = _lib.ib_net_options_default()
        o.input_grad = input_grad
        o.batch_size, o.weights, o.input = batch_size, _WEIGHTS[weights], 1 if pixels else 0
        o.samples, o.mean_path, o.given_noise = samples, mean_path, given_noise
        o.skip_checksums, o.scope = skip_checksums, _s(scope)
        self._h = _c.c_void_p()
        _check(_lib.ib_net_open(_s(path), _c.byref(o), _c.byref(self._h)))
        self.path, self.batch_size, self.samples = str(path), batch_size, samples
        self.model = Model.parse(_lib.ib_model_text(_lib.ib_net_model(self._h)).decode())
        self._x = _node_array(_lib.ib_net_input(self._h))
        self._noise = [_lib.ib_net_noise(self._h, i) for i in range(_lib.ib_net_noise_count(self._h))]
        self.used_ema = bool(_lib.ib_net_used_ema(self._h))

    @property
    def noise_shapes(self):
        """With given_noise: (layer name, shape for the whole batch) of each
        Gaussian bottleneck's noise input, in depth order."""
        return [(_lib.ib_node_name(n).decode()[len("noise."):], _node_array(n).shape) for n in self._noise]

    def forward(self, x, noise=None):
        """Logits for x (see the class text); noise: with given_noise, one
        array per bottleneck whose rows cover the n examples given (rows per
        example as in noise_shapes)."""
        x = np.asarray(x, dtype=np.float32)
        n = x.shape[0]
        if x.shape[1:] != self._x.shape[1:] or not 1 <= n <= self.batch_size:
            raise ArgError(f"Net.forward: x must be (n, {', '.join(map(str, self._x.shape[1:]))}) with 1 <= n <= "
                           f"{self.batch_size}, not {x.shape}", -1)
        self._x[:n] = x
        self._x[n:] = 0
        if noise is not None and not self._noise:
            raise ArgError("Net.forward: noise given to a network opened without given_noise=True", -1)
        if self._noise:
            if noise is not None and len(noise) != len(self._noise):
                raise ArgError(f"Net.forward: {len(noise)} noise arrays for {len(self._noise)} bottlenecks", -1)
            for i, node in enumerate(self._noise):
                buf = _node_array(node)
                per = buf.shape[0] // self.batch_size
                buf[:] = 0
                if noise is not None:
                    e = np.asarray(noise[i], dtype=np.float32)
                    if e.shape != (n * per,) + buf.shape[1:]:
                        raise ArgError(f"Net.forward: noise {i} must be {(n * per,) + buf.shape[1:]}, not {e.shape}",
                                       -1)
                    buf[:n * per] = e
        g = _lib.ib_net_graph(self._h)
        _check(_lib.ib_graph_forward(g))
        logits = _node_array(_lib.ib_net_logits(self._h))
        per = logits.shape[0] // self.batch_size
        return logits[:n * per]

    __call__ = forward

    def loss_grad(self, x, labels, noise=None):
        """With input_grad=True: the mean cross-entropy of the batch (of the
        S-sample mean prediction with samples S) and its gradient dL/dx, a
        view (batch_size, C, H, W) valid until the next call: the step
        attacks take (pixel units with pixels=True).  x holds exactly
        batch_size examples."""
        if not _lib.ib_net_loss(self._h):
            raise StateError("Net.loss_grad: open the network with input_grad=True", -7)
        x = np.asarray(x, dtype=np.float32)
        if x.shape[0] != self.batch_size:
            raise ArgError(f"Net.loss_grad: x must hold batch_size = {self.batch_size} examples, not {x.shape[0]}", -1)
        y = np.asarray(labels, dtype=np.int32)
        if y.shape != (self.batch_size,):
            raise ArgError(f"Net.loss_grad: labels must be ({self.batch_size},), not {y.shape}", -1)
        yn = _lib.ib_net_labels(self._h)
        np.ctypeslib.as_array(_lib.ib_node_labels(yn), shape=(self.batch_size,))[:] = y
        self.forward(x, noise)
        loss = _lib.ib_net_loss(self._h)
        _check(_lib.ib_graph_backward(_lib.ib_net_graph(self._h), loss))
        g = _lib.ib_net_input(self._h)
        shape = self._x.shape
        return float(_lib.ib_node_scalar(loss)), np.ctypeslib.as_array(_lib.ib_node_grad(g), shape=shape)

    def evaluate(self, dataset=None, split="test", samples=None, seed=None, data_dir=None, limit=0, corruption=None,
                 severity=3, corruption_seed=1, view=1, skip_hash=False):
        """ib_evaluate on a data set, as `ibnet eval` does: a dict with n,
        classes, acc_1shot, acc_avg (S-sample mean of the softmax), acc_mean
        (the mean path), nll_avg, nll_mean, ce_samples, kl (per bottleneck),
        confusion (classes x classes), ece, brier, entropy (of the averaged
        prediction) and ece_mean, brier_mean.  dataset: a name as --dataset
        takes (default: the run's) or an ibnet.Dataset; samples: S (default
        the run's); seed: the noise key (default the run's evaluation seed,
        so the figures are `ibnet eval`'s with --batch-size equal to this
        network's batch_size); limit: the first N examples (--limit);
        corruption, severity, corruption_seed: a corrupted copy
        (--corruption, --severity, --seed; after the limit, as the CLI);
        view: 2 for view 2 of a two-view set (--view)."""
        if self._noise or self.samples:
            raise ArgError("Net.evaluate: open the network without given_noise and samples", -1)
        from . import data as _data
        if isinstance(dataset, Dataset):
            ds = dataset if not limit else Dataset(dataset.images[:limit], dataset.labels[:limit], dataset.classes,
                                                    dataset.name, None if dataset.clean_labels is None else
                                                    dataset.clean_labels[:limit], dataset.class_names)
            d = _data._to_c(ds)
        else:
            if dataset is None:
                from . import safetensors as _st
                dataset = json.loads(_st.read_header(self.path)[1].get("ibnet", "{}")).get("dataset") or ""
            d = _open_c(dataset, split, data_dir, view, skip_hash, limit)
        if corruption is not None:
            cd = _c.POINTER(_Dataset)()
            try:
                _check(_lib.ib_dataset_corrupt(d, _data._corruption(corruption), severity, corruption_seed,
                                               _c.byref(cd)))
            finally:
                _lib.ib_dataset_free(d)
            d = cd
        r = _EvalResult()
        try:
            h = self._h
            S = _lib.ib_net_eval_samples(h) if samples is None else samples
            key = _lib.ib_net_eval_seed(h) if seed is None else seed
            _check(_lib.ib_evaluate(_lib.ib_net_graph(h), _lib.ib_net_input(h), _lib.ib_net_logits(h),
                                    self.model.bottleneck_count, _lib.ib_net_kl(h), d,
                                    _lib.ib_net_batcher_config(h), S, key, _c.byref(r)))
            k = r.classes
            out = {f: getattr(r, f) for f in ("n", "classes", "acc_1shot", "acc_avg", "acc_mean", "nll_avg",
                                                "nll_mean", "ce_samples")}
            out["kl"] = list(r.kl[:r.n_kl])
            out["confusion"] = (np.ctypeslib.as_array(r.confusion, shape=(k * k,)).reshape(k, k).copy()
                                if r.confusion else None)
            for suffix, c in (("", r.calib), ("_mean", r.calib_mean)):
                out["ece" + suffix], out["brier" + suffix], out["entropy" + suffix] = c.ece, c.brier, c.entropy
            return out
        finally:
            _lib.ib_eval_result_free(_c.byref(r))
            _lib.ib_dataset_free(d)

    @property
    def log_probs(self):
        """(batch_size, classes) of the last forward: log softmax, or the log of
        the S-sample mean of the softmax (a view)."""
        return _node_array(_lib.ib_net_log_probs(self._h))

    def close(self):
        if getattr(self, "_h", None):
            _lib.ib_net_close(self._h)
            self._h = None

    __del__ = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- data sets --------------------------------------------------------------
class _Dataset(_c.Structure):
    _fields_ = [("name", _c.c_char * 64), ("n", _c.c_int64), ("c", _c.c_int), ("h", _c.c_int),
                ("w", _c.c_int), ("classes", _c.c_int), ("images", _c.POINTER(_c.c_uint8)),
                ("labels", _c.POINTER(_c.c_int32)), ("clean_labels", _c.POINTER(_c.c_int32)),
                ("class_names", _c.POINTER(_c.c_char_p))]


_lib.ib_dataset_open.argtypes = [_c.c_char_p, _c.c_char_p, _c.c_char_p, _c.c_void_p, _c.POINTER(_c.POINTER(_Dataset))]
_lib.ib_dataset_free.argtypes = [_c.POINTER(_Dataset)]
_lib.ib_evaluate.argtypes = [_c.c_void_p, _c.c_void_p, _c.c_void_p, _c.c_int, _c.c_void_p, _c.POINTER(_Dataset),
                             _c.c_void_p, _c.c_int, _c.c_uint64, _c.POINTER(_EvalResult)]


class _LoadOptions(_c.Structure):  # ib_load_options
    _fields_ = [("skip_hash", _c.c_bool)]


_lib.ib_dataset_open_view.argtypes = [_c.c_char_p, _c.c_char_p, _c.c_int, _c.c_char_p, _c.c_void_p,
                                      _c.POINTER(_c.POINTER(_Dataset))]
_lib.ib_dataset_slice.argtypes = [_c.POINTER(_Dataset), _c.c_int64, _c.c_int64, _c.POINTER(_c.POINTER(_Dataset))]


class Dataset:
    """A data set as numpy arrays (copies; the C data set is freed):
    images uint8 (n, c, h, w), labels int32 (n), clean_labels int32 (n) or
    None (the original labels of a set with label noise), classes,
    class_names list or None.  Dataset(images, labels, classes=None) makes
    one from arrays (classes: max label + 1 by default).  The library's
    derived sets are methods: with_label_noise, corrupt, rotate (and the
    functions of ibnet.data)."""

    def __init__(self, images, labels, classes=None, name="numpy", clean_labels=None, class_names=None):
        self.images = np.ascontiguousarray(images, dtype=np.uint8)
        self.labels = np.ascontiguousarray(labels, dtype=np.int32)
        if self.images.ndim != 4 or self.labels.shape != self.images.shape[:1]:
            raise ArgError(f"Dataset: images (n, c, h, w) and labels (n,), not {self.images.shape} and "
                           f"{self.labels.shape}", -1)
        self.name = name
        self.classes = int(classes) if classes is not None else int(self.labels.max(initial=-1)) + 1
        self.clean_labels = None if clean_labels is None else np.ascontiguousarray(clean_labels, dtype=np.int32)
        self.class_names = class_names

    def __len__(self):
        return len(self.labels)

    def __repr__(self):
        return f"Dataset({self.name!r}, {self.images.shape}, {self.classes} classes)"

    def with_label_noise(self, kind="symmetric", rate=0.2, seed=0):
        from . import data
        return data.with_label_noise(self, kind, rate, seed)

    def corrupt(self, corruption, severity=3, seed=0):
        from . import data
        return data.corrupt(self, corruption, severity, seed)

    def rotate(self, degrees):
        from . import data
        return data.rotate(self, degrees)


def _dataset_from_c(p):
    """A Dataset copied from a C ib_dataset (not freed)."""
    d = p.contents
    shape = (d.n, d.c, d.h, d.w)
    images = np.ctypeslib.as_array(d.images, shape=(int(np.prod(shape)),)).reshape(shape).copy() if d.n else \
        np.zeros(shape, np.uint8)
    labels = np.ctypeslib.as_array(d.labels, shape=(d.n,)).copy() if d.n else np.zeros(0, np.int32)
    clean = np.ctypeslib.as_array(d.clean_labels, shape=(d.n,)).copy() if d.clean_labels and d.n else None
    names = [d.class_names[i].decode() for i in range(d.classes)] if d.class_names else None
    return Dataset(images, labels, d.classes, d.name.decode(), clean, names)


def _open_c(spec, split, data_dir, view, skip_hash, limit=0):
    """The C ib_dataset of a data-set name (the caller frees it)."""
    p = _c.POINTER(_Dataset)()
    lo = _LoadOptions(skip_hash)
    _check(_lib.ib_dataset_open_view(_s(spec), _s(split), view - 1, _s(data_dir), _c.byref(lo), _c.byref(p)))
    if limit and limit < p.contents.n:
        part = _c.POINTER(_Dataset)()
        s = _lib.ib_dataset_slice(p, 0, limit, _c.byref(part))
        _lib.ib_dataset_free(p)
        _check(s)
        p = part
    return p


def open_dataset(spec, split="train", data_dir=None, view=1, skip_hash=False):
    """ib_dataset_open: any name --dataset takes ("mnist", "cifar10",
    "idx:DIR", "folder:ROOT", "rotated-mnist:K", "noisy-mnist-2view",
    "cifar10-2view"...); split "train" or "test"; data_dir None searches as
    the library does; view 2 of a two-view set (ib_dataset_open_view; 1 is
    what ib_dataset_open gives); skip_hash: no sha256 of the files."""
    p = _open_c(spec, split, data_dir, view, skip_hash)
    try:
        return _dataset_from_c(p)
    finally:
        _lib.ib_dataset_free(p)


# ---- training -----------------------------------------------------------------
_MAX_TERMS = 40  # IB_MAX_TERMS


class TrainProgress(_c.Structure):
    """ib_train_progress, given to the progress callback after each step;
    .terms: the method's named terms (means over the epoch so far) as a dict."""
    _fields_ = [("epoch", _c.c_int64), ("epochs", _c.c_int64), ("batch", _c.c_int64), ("batches", _c.c_int64),
                ("samples_per_s", _c.c_double), ("eta_s", _c.c_double), ("loss", _c.c_double),
                ("ce", _c.c_double), ("kl_total", _c.c_double), ("n_terms", _c.c_int),
                ("term_name", _c.c_char_p * _MAX_TERMS), ("term", _c.c_double * _MAX_TERMS)]

    @property
    def terms(self):
        return {self.term_name[k].decode(): self.term[k] for k in range(self.n_terms) if self.term_name[k]}


class EpochReport(_c.Structure):
    """The leading fields of ib_epoch_report, given to the epoch callback."""
    _fields_ = [("epoch", _c.c_int64), ("epochs", _c.c_int64), ("step", _c.c_int64), ("seconds", _c.c_double),
                ("samples_per_s", _c.c_double), ("data_wait_s", _c.c_double), ("lr", _c.c_float),
                ("loss", _c.c_double), ("ce", _c.c_double)]


_PROGRESS_FN = _c.CFUNCTYPE(None, _c.c_void_p, _c.POINTER(TrainProgress))
_EPOCH_FN = _c.CFUNCTYPE(None, _c.c_void_p, _c.POINTER(EpochReport))


class _Callbacks(_c.Structure):
    _fields_ = [("ctx", _c.c_void_p), ("progress", _PROGRESS_FN), ("epoch_end", _EPOCH_FN),
                ("stop", _c.POINTER(_c.c_int)), ("note", _c.c_void_p)]


# ib_train_config is used only through pointers (filled by
# ib_train_config_from_json), so a buffer larger than the struct is enough and
# its layout never has to be mirrored here.
_CONFIG_BYTES = 1 << 16
_lib.ib_train_config_from_json.argtypes = [_c.c_char_p, _c.c_void_p]
_lib.ib_train_config_check.argtypes = [_c.c_void_p]
_lib.ib_train.argtypes = [_c.c_void_p, _c.POINTER(_Callbacks)]


def train(config, progress=None, epoch_end=None):
    """Train a run (ib_train).  config: a dict of config.json's keys (the
    rest are the defaults), e.g. {"model": "mlp", "dataset": "idx:DIR",
    "out_dir": "run", "epochs": 1}.  progress(p: TrainProgress) is called after
    each step and epoch_end(r: EpochReport) after each epoch; either may return
    True to stop training after that step (the run is saved and can be resumed).
    An exception raised in a callback stops training and is raised again."""
    buf = _c.create_string_buffer(_CONFIG_BYTES)
    _check(_lib.ib_train_config_from_json(json.dumps(config).encode(), buf))
    _check(_lib.ib_train_config_check(buf))
    stop = _c.c_int(0)
    failure = []

    def wrap(fn):
        def call(_ctx, p):
            if failure:
                return
            try:
                if fn(p.contents):
                    stop.value = 1
            except BaseException as e:  # noqa: B902 -- carried across the C frames
                failure.append(e)
                stop.value = 1
        return call

    cb = _Callbacks(None, _PROGRESS_FN(wrap(progress)) if progress else _PROGRESS_FN(),
                    _EPOCH_FN(wrap(epoch_end)) if epoch_end else _EPOCH_FN(), _c.pointer(stop))
    status = _lib.ib_train(buf, _c.byref(cb))
    if failure:
        raise failure[0]
    _check(status)
    return stop.value == 0


# the library's further calls, each in its own module (they use the above)
from . import data  # noqa: E402
from ._attack import attack  # noqa: E402
from ._info import mi, info, activations, Activations  # noqa: E402


def __getattr__(name):
    """ibnet.torch on first use (it imports torch; the rest of the package
    does not need it)."""
    if name == "torch":
        import importlib
        return importlib.import_module(".torch", __name__)
    if name == "safetensors":
        import importlib
        return importlib.import_module(".safetensors", __name__)
    raise AttributeError(f"module 'ibnet' has no attribute {name!r}")
