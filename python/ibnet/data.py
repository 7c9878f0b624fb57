"""Data sets as numpy arrays: the library's derived sets (label noise,
common corruptions, rotations, Rotated MNIST domains, two-view sets) on any
ibnet.Dataset, so Python sees exactly the images and labels the C side (the
trainer, `ibnet eval --corruption`, `--dataset rotated-mnist:K`) sees.

Every call copies the Dataset into a C ib_dataset, runs the library call and
copies the result back (numpy arrays owned by Python; the C sets are freed).
"""
import ctypes as _c

import numpy as np

from . import (_lib, _libc, _check, _s, _Dataset, ArgError, NoMemoryError)

__all__ = ["corruptions", "noise_kinds", "rotated_mnist_angle", "rotated_mnist_domains", "leave_one_out",
           "rotated_mnist_split", "noisy_mnist_two_view", "color_grey_two_view", "dataset_views",
           "ROTATED_MNIST_DOMAINS", "ROTATED_MNIST_SEED"]

ROTATED_MNIST_DOMAINS = 6  # IB_ROTATED_MNIST_DOMAINS
ROTATED_MNIST_SEED = 0     # IB_ROTATED_MNIST_SEED: the key of the domains `rotated-mnist:K` cuts

_P = _c.POINTER(_Dataset)
_lib.ib_dataset_new.argtypes = [_c.c_char_p, _c.c_int64, _c.c_int, _c.c_int, _c.c_int, _c.c_int]
_lib.ib_dataset_new.restype = _P
_lib.ib_dataset_set_class_names.argtypes = [_P, _c.POINTER(_c.c_char_p), _c.c_int]
_lib.ib_label_noise_apply.argtypes = [_P, _c.c_int, _c.c_double, _c.c_uint64, _c.POINTER(_c.c_double)]
_lib.ib_label_noise_pair_target.argtypes = [_P, _c.c_int, _c.c_int]
_lib.ib_corruption_name.argtypes = [_c.c_int]
_lib.ib_corruption_name.restype = _c.c_char_p
_lib.ib_corruption_parse.argtypes = [_c.c_char_p, _c.POINTER(_c.c_int)]
_lib.ib_dataset_corrupt.argtypes = [_P, _c.c_int, _c.c_int, _c.c_uint64, _c.POINTER(_P)]
_lib.ib_dataset_rotate.argtypes = [_P, _c.c_float, _c.POINTER(_P)]
_lib.ib_rotated_mnist_angle.argtypes = [_c.c_int]
_lib.ib_rotated_mnist_angle.restype = _c.c_float
_lib.ib_rotated_mnist_domains.argtypes = [_P, _c.POINTER(_c.c_float), _c.c_int, _c.c_bool, _c.c_uint64, _c.POINTER(_P)]
_lib.ib_domains_leave_one_out.argtypes = [_c.POINTER(_P), _c.c_int, _c.c_int, _c.POINTER(_P)]
_lib.ib_rotated_mnist_split.argtypes = [_P, _c.POINTER(_c.c_float), _c.c_int, _c.c_uint64, _c.c_bool, _c.POINTER(_P)]
_lib.ib_noisy_mnist_two_view.argtypes = [_P, _c.c_uint64, _c.POINTER(_P), _c.POINTER(_P), _c.POINTER(_c.c_int64)]
_lib.ib_color_grey_two_view.argtypes = [_P, _c.c_float, _c.c_uint64, _c.POINTER(_P), _c.POINTER(_P)]
_lib.ib_dataset_spec_views.argtypes = [_c.c_char_p]
_libc.malloc.argtypes = [_c.c_size_t]
_libc.malloc.restype = _c.c_void_p

# ib_noise_kind, as config.json's noise_kind spells it
_NOISE = {"symmetric": 0, "pair": 1, "pair-cifar10": 2, "pair-next": 3}


def noise_kinds():
    """The label-noise kinds: symmetric, pair, pair-cifar10, pair-next."""
    return list(_NOISE)


def corruptions():
    """The corruption names (ib_corruption_name), in the library's order;
    the first 14 are the benchmark's (docs/corruptions.md)."""
    out, i = [], 0
    while True:
        name = _lib.ib_corruption_name(i)
        if not name:
            return out
        out.append(name.decode())
        i += 1


def _corruption(name):
    t = _c.c_int()
    _check(_lib.ib_corruption_parse(_s(name), _c.byref(t)))
    return t.value


def dataset_views(spec):
    """Views of a data-set name: 2 for noisy-mnist-2view and cifar10-2view, else 1."""
    return _lib.ib_dataset_spec_views(_s(spec))


def _to_c(ds):
    """A new C ib_dataset holding a copy of ds (free with ib_dataset_free)."""
    images = np.ascontiguousarray(ds.images, dtype=np.uint8)
    if images.ndim != 4:
        raise ArgError(f"Dataset: images must be (n, c, h, w) uint8, not {images.shape}", -1)
    n, c, h, w = images.shape
    labels = np.ascontiguousarray(ds.labels, dtype=np.int32)
    if labels.shape != (n,):
        raise ArgError(f"Dataset: labels must be ({n},), not {labels.shape}", -1)
    p = _lib.ib_dataset_new(_s(ds.name), n, c, h, w, int(ds.classes))
    if not p:
        raise ArgError(_lib.ib_last_error().decode(errors="replace"), -1)
    d = p.contents
    _c.memmove(d.images, images.ctypes.data, images.nbytes)
    _c.memmove(d.labels, labels.ctypes.data, labels.nbytes)
    if ds.clean_labels is not None:
        clean = np.ascontiguousarray(ds.clean_labels, dtype=np.int32)
        mem = _libc.malloc(max(1, clean.nbytes))  # ib_dataset_free frees it with free()
        if not mem:
            _lib.ib_dataset_free(p)
            raise NoMemoryError("Dataset: out of memory", -3)
        _c.memmove(mem, clean.ctypes.data, clean.nbytes)
        d.clean_labels = _c.cast(mem, _c.POINTER(_c.c_int32))
    if ds.class_names:
        names = (_c.c_char_p * len(ds.class_names))(*[_s(x) for x in ds.class_names])
        status = _lib.ib_dataset_set_class_names(p, names, len(ds.class_names))
        if status:
            _lib.ib_dataset_free(p)
            _check(status)
    return p


def _from_c(p):
    """A Dataset copied from a C one, which is freed."""
    from . import _dataset_from_c
    try:
        return _dataset_from_c(p)
    finally:
        _lib.ib_dataset_free(p)


def _derive(fn, ds, *args):
    """fn(src, *args, &out) on a C copy of ds: the result as a Dataset."""
    src = _to_c(ds)
    out = _P()
    try:
        _check(fn(src, *args, _c.byref(out)))
    finally:
        _lib.ib_dataset_free(src)
    return _from_c(out)


def with_label_noise(ds, kind="symmetric", rate=0.2, seed=0):
    """ib_label_noise_apply on a copy: labels corrupted (the draw for example
    i keyed by (seed, i)), clean_labels the original ones (or ds's clean
    labels when ds was already noisy: the noise is re-drawn from them);
    .actual_rate the fraction changed.  kind: symmetric, pair (cifar10 pairs
    when the name starts with "cifar10", else c -> c+1), pair-cifar10,
    pair-next."""
    if kind not in _NOISE:
        raise ArgError(f"with_label_noise: unknown kind {kind!r} ({', '.join(_NOISE)})", -1)
    p = _to_c(ds)
    actual = _c.c_double()
    try:
        _check(_lib.ib_label_noise_apply(p, _NOISE[kind], rate, seed, _c.byref(actual)))
        out = _from_c(p)
    except BaseException:
        _lib.ib_dataset_free(p)
        raise
    out.actual_rate = actual.value
    return out


def pair_target(ds, kind, c):
    """The class pair noise of this kind sends c to (c itself if none)."""
    p = _to_c(ds)
    try:
        return _lib.ib_label_noise_pair_target(p, _NOISE[kind], c)
    finally:
        _lib.ib_dataset_free(p)


def corrupt(ds, corruption, severity=3, seed=0):
    """ib_dataset_corrupt: a corrupted copy (image i keyed by (seed,
    corruption, i)), named "<name>-<corruption>-<severity>"; what `ibnet
    corrupt --seed S` writes and `ibnet eval --corruption` evaluates."""
    return _derive(_lib.ib_dataset_corrupt, ds, _corruption(corruption), severity, seed)


def rotate(ds, degrees):
    """ib_dataset_rotate: every image rotated counter-clockwise about its
    centre (bilinear, zero fill); 0 degrees copies exactly."""
    return _derive(_lib.ib_dataset_rotate, ds, float(degrees))


def rotated_mnist_angle(d):
    """DomainBed's angle of domain d: 0, 15, ..., 75 degrees."""
    return float(_lib.ib_rotated_mnist_angle(d))


def _angles(angles, n):
    if angles is None:
        return None
    a = list(angles)
    if len(a) != n:
        raise ArgError(f"{n} domains need {n} angles, not {len(a)}", -1)
    return (_c.c_float * n)(*a)


def rotated_mnist_domains(ds, angles=None, n_domains=ROTATED_MNIST_DOMAINS, disjoint=True, seed=ROTATED_MNIST_SEED):
    """ib_rotated_mnist_domains: a list of n_domains Datasets, domain k the
    images rotated by angles[k] (None: DomainBed's 0, 15, ..., 75).
    disjoint: the examples shuffled by seed and dealt out, so the domains
    share no image; else every domain holds all of ds."""
    if angles is not None:
        n_domains = len(angles)
    out = (_P * n_domains)()
    src = _to_c(ds)
    try:
        _check(_lib.ib_rotated_mnist_domains(src, _angles(angles, n_domains), n_domains, disjoint, seed, out))
    finally:
        _lib.ib_dataset_free(src)
    return [_from_c(out[k]) for k in range(n_domains)]


def leave_one_out(domains, held_out):
    """ib_domains_leave_one_out: every domain but held_out, concatenated in
    order (the held-out test set is domains[held_out])."""
    ps = (_P * len(domains))()
    try:
        for k, d in enumerate(domains):
            ps[k] = _to_c(d)
        out = _P()
        _check(_lib.ib_domains_leave_one_out(ps, len(domains), held_out, _c.byref(out)))
        return _from_c(out)
    finally:
        for k in range(len(domains)):
            _lib.ib_dataset_free(ps[k])


def rotated_mnist_split(ds, held_out, train=True, angles=None, seed=ROTATED_MNIST_SEED):
    """ib_rotated_mnist_split, the set `--dataset rotated-mnist:K` names: ds
    cut into the six disjoint domains; train: the five other domains
    interleaved one example of each in turn; else domain held_out."""
    return _derive(lambda s, *a: _lib.ib_rotated_mnist_split(s, _angles(angles, ROTATED_MNIST_DOMAINS), *a), ds,
                   held_out, seed, train)


def noisy_mnist_two_view(ds, seed=0):
    """ib_noisy_mnist_two_view: (view1, view2, partner).  view1[i] = ds[i]
    rotated by an angle uniform in [-45, 45]; view2[i] = ds[partner[i]] (another
    example of the same class) plus uniform noise; both carry ds's labels."""
    src = _to_c(ds)
    v1, v2 = _P(), _P()
    partner = np.zeros(len(ds), dtype=np.int64)
    try:
        _check(_lib.ib_noisy_mnist_two_view(src, seed, _c.byref(v1), _c.byref(v2),
                                            partner.ctypes.data_as(_c.POINTER(_c.c_int64))))
    finally:
        _lib.ib_dataset_free(src)
    return _from_c(v1), _from_c(v2), partner


def color_grey_two_view(ds, noise_std=0.1, seed=0):
    """ib_color_grey_two_view: (view1, view2); view1 the colour images,
    view2 their grey level in three channels plus Gaussian noise."""
    src = _to_c(ds)
    v1, v2 = _P(), _P()
    try:
        _check(_lib.ib_color_grey_two_view(src, noise_std, seed, _c.byref(v1), _c.byref(v2)))
    finally:
        _lib.ib_dataset_free(src)
    return _from_c(v1), _from_c(v2)
