"""Independent check of an ibnet checkpoint: read it without ibnet and load
it into PyTorch.

    /usr/bin/python3 tests/ref/check_safetensors.py FILE

Reads the safetensors layout by hand with numpy (8-byte little-endian header
length, JSON header, little-endian C-order data), checks the layout rules
(offsets inside the data, sizes matching shape * dtype, no overlap, no hole,
header padded to 8 bytes), cross-checks with the `safetensors` package when
it is installed, then builds a torch.nn.Module whose parameters carry the
checkpoint's model tensor names and loads them with
load_state_dict(strict=True).  Prints every tensor with its sum and first
value, and the metadata.  Exits non-zero on any problem.  Not a CI test (CI
has no PyTorch).
"""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
          "I8": "i1", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "?",
          # no numpy type: kept as raw bits of the right width
          "BF16": "<u2", "F8_E5M2": "u1", "F8_E4M3": "u1"}


def read_by_hand(path):
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError("header length %d larger than the file" % n)
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    if (8 + n) % 8:
        print("note: header not padded to 8 bytes")
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors, spans = {}, []
    for name, e in header.items():
        dt = np.dtype(DTYPES[e["dtype"]])
        shape = tuple(e["shape"])
        b, end = e["data_offsets"]
        if not (0 <= b <= end <= len(data)):
            raise ValueError("%s: offsets %r outside the data" % (name, (b, end)))
        if end - b != int(np.prod(shape, dtype=np.int64)) * dt.itemsize:
            raise ValueError("%s: %d bytes for shape %r" % (name, end - b, shape))
        spans.append((b, end, name))
        tensors[name] = np.frombuffer(data, dtype=dt, count=(end - b) // dt.itemsize, offset=b).reshape(shape)
    at = 0
    for b, end, name in sorted(spans):
        if b != at:
            raise ValueError("%s starts at %d, expected %d (overlap or hole)" % (name, b, at))
        at = end
    if at != len(data):
        raise ValueError("tensors cover %d of %d data bytes" % (at, len(data)))
    return tensors, meta


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    tensors, meta = read_by_hand(path)
    print("%d tensors, metadata keys: %s" % (len(tensors), sorted(meta)))
    for k in sorted(meta):
        print("  meta %-14s = %s" % (k, meta[k]))
    if "ibnet" in meta:
        json.loads(meta["ibnet"])  # the caller's metadata must be a JSON object text
    try:
        from safetensors.numpy import load_file  # optional cross-check
        lib = load_file(path)
        assert sorted(lib) == sorted(tensors)
        for k in tensors:
            assert np.array_equal(lib[k], tensors[k])
        print("safetensors package agrees")
    except ImportError:
        print("safetensors package not installed: numpy reader only")

    import torch
    # ibnet model tensors are F32; anything else is listed, not loaded
    model_names = [k for k in tensors if not k.startswith(("optim.", "ema.")) and tensors[k].dtype == np.float32]
    root = torch.nn.Module()
    for name in model_names:
        parts = name.split(".")
        mod = root
        for p in parts[:-1]:
            if not hasattr(mod, p):
                mod.add_module(p, torch.nn.Module())
            mod = getattr(mod, p)
        blank = torch.zeros(tensors[name].shape, dtype=torch.float32)
        if "running_" in parts[-1]:
            mod.register_buffer(parts[-1], blank)
        else:
            mod.register_parameter(parts[-1], torch.nn.Parameter(blank))
    state = {k: torch.from_numpy(np.array(tensors[k])) for k in model_names}
    root.load_state_dict(state, strict=True)
    loaded = root.state_dict()
    for k in sorted(tensors):
        t = tensors[k]
        src = "torch" if k in loaded else "numpy"
        v = loaded[k].numpy() if k in loaded else np.array(t)
        first = float(v.reshape(-1)[0]) if v.size else float("nan")
        print("%-32s %-5s %-8s %-10s sum %.9g first %.9g" % (k, src, t.dtype.str, tuple(v.shape),
                                                               float(v.astype(np.float64).sum()), first))
    print("OK: load_state_dict(strict=True) took %d model tensors" % len(model_names))


if __name__ == "__main__":
    main()
