"""Python binding of libibnet over ctypes, with numpy arrays.

The shared library is found through $IBNET_LIBRARY (a path), else as
libibnet.so.0 on the loader's path.  Its ib_version() must have the major.minor
this binding was written for: public structs are passed by value until 1.0,
so another minor version may have another layout (docs/packaging.md).

Every call that returns a non-OK ib_status raises the exception class of that
status (ArgError, IOError_, FormatError, ...; all IbnetError) with
ib_last_error()'s message.
"""
import ctypes
import json
import os

import numpy as np

__all__ = [
    "IbnetError", "ArgError", "ShapeError", "NoMemoryError", "IOError_", "FormatError",
    "MismatchError", "StateError", "NumericError", "UnsupportedError",
    "version", "Model", "open_dataset", "train", "TrainProgress", "EpochReport",
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
_lib.ib_model_builtin_name.argtypes = [_c.c_int]
_lib.ib_model_builtin_name.restype = _c.c_char_p
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

    def __del__(self):
        if getattr(self, "_h", None):
            _lib.ib_model_free(self._h)
            self._h = None


# ---- data sets --------------------------------------------------------------
class _Dataset(_c.Structure):
    _fields_ = [("name", _c.c_char * 64), ("n", _c.c_int64), ("c", _c.c_int), ("h", _c.c_int),
                ("w", _c.c_int), ("classes", _c.c_int), ("images", _c.POINTER(_c.c_uint8)),
                ("labels", _c.POINTER(_c.c_int32)), ("clean_labels", _c.POINTER(_c.c_int32)),
                ("class_names", _c.POINTER(_c.c_char_p))]


_lib.ib_dataset_open.argtypes = [_c.c_char_p, _c.c_char_p, _c.c_char_p, _c.c_void_p, _c.POINTER(_c.POINTER(_Dataset))]
_lib.ib_dataset_free.argtypes = [_c.POINTER(_Dataset)]


class Dataset:
    """A data set as numpy arrays (copies; the C data set is freed):
    images uint8 (n, c, h, w), labels int32 (n), clean_labels or None,
    class_names list or None."""

    def __init__(self, name, images, labels, clean_labels, classes, class_names):
        self.name, self.images, self.labels = name, images, labels
        self.clean_labels, self.classes, self.class_names = clean_labels, classes, class_names

    def __len__(self):
        return len(self.labels)


def open_dataset(spec, split="train", data_dir=None):
    """ib_dataset_open: "mnist", "cifar10", "idx:DIR", "folder:ROOT"...; split
    "train" or "test"; data_dir None searches as the library does."""
    p = _c.POINTER(_Dataset)()
    _check(_lib.ib_dataset_open(_s(spec), _s(split), _s(data_dir), None, _c.byref(p)))
    try:
        d = p.contents
        shape = (d.n, d.c, d.h, d.w)
        images = np.ctypeslib.as_array(d.images, shape=(int(np.prod(shape)),)).reshape(shape).copy()
        labels = np.ctypeslib.as_array(d.labels, shape=(d.n,)).copy()
        clean = np.ctypeslib.as_array(d.clean_labels, shape=(d.n,)).copy() if d.clean_labels else None
        names = [d.class_names[i].decode() for i in range(d.classes)] if d.class_names else None
        return Dataset(d.name.decode(), images, labels, clean, d.classes, names)
    finally:
        _lib.ib_dataset_free(p)


# ---- training -----------------------------------------------------------------
class TrainProgress(_c.Structure):
    """ib_train_progress, given to the progress callback after each step."""
    _fields_ = [("epoch", _c.c_int64), ("epochs", _c.c_int64), ("batch", _c.c_int64), ("batches", _c.c_int64),
                ("samples_per_s", _c.c_double), ("eta_s", _c.c_double), ("loss", _c.c_double),
                ("ce", _c.c_double), ("kl_total", _c.c_double)]


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
