"""ibnet checkpoints (safetensors, docs/checkpoints.md) read and written with
numpy alone: no torch and no shared library needed.

read(path) -> (tensors, metadata): tensors a dict name -> float32 array (C
order, a copy), metadata a dict of strings; the "ibnet.crc32" checksums are
verified when the file has them (verify=False skips them).

write(path, tensors, metadata): float32 tensors in the given order, with
"ibnet.crc32" computed, written atomically (a temporary file renamed over
path), so ibnet's loader verifies what it reads.
"""
import json
import os
import struct
import zlib

import numpy as np

CRC_KEY = "ibnet.crc32"
_DTYPES = {"F32": "<f4", "I32": "<i4", "F64": "<f8", "I64": "<i8", "F16": "<f2", "U8": "u1"}


class SafetensorsError(ValueError):
    """A file that is not a well-formed safetensors checkpoint, or a tensor
    that does not match its checksum."""


def read_header(path):
    """The header (dict, "__metadata__" popped) and metadata of path, and the
    offset of the data."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise SafetensorsError(f"{path}: not a safetensors file (shorter than 8 bytes)")
        (n,) = struct.unpack("<Q", head)
        size = os.fstat(f.fileno()).st_size
        if n > size - 8 or n > (100 << 20):
            raise SafetensorsError(f"{path}: header length {n} does not fit the file of {size} bytes")
        try:
            header = json.loads(f.read(n))
        except ValueError as e:
            raise SafetensorsError(f"{path}: damaged header ({e})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: the header is not a JSON object")
    meta = header.pop("__metadata__", {}) or {}
    return header, meta, 8 + n


def read(path, verify=True):
    """(tensors, metadata) of path; see the module's text."""
    header, meta, start = read_header(path)
    crcs = json.loads(meta[CRC_KEY]) if verify and CRC_KEY in meta else {}
    out = {}
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    for name, t in header.items():
        dtype = _DTYPES.get(t.get("dtype"))
        b, e = t.get("data_offsets", (0, -1))
        if dtype is None or not (0 <= b <= e <= len(data)):
            raise SafetensorsError(f"{path}: tensor {name!r}: unsupported dtype or offsets out of the data")
        raw = data[b:e]
        if name in crcs and zlib.crc32(raw) != int(crcs[name], 16):
            raise SafetensorsError(f'damaged checkpoint: tensor "{name}" does not match its checksum ({path})')
        a = np.frombuffer(raw, dtype=dtype)
        shape = tuple(int(d) for d in t.get("shape", ()))
        if a.size != int(np.prod(shape, dtype=np.int64)):
            raise SafetensorsError(f"{path}: tensor {name!r}: {a.size} values for shape {shape}")
        out[name] = a.reshape(shape).astype(a.dtype.newbyteorder("="), copy=True)
    return out, meta


def write(path, tensors, metadata=None):
    """Write tensors (name -> array-like, stored as little-endian float32)
    and metadata (name -> str) to path atomically, with ibnet.crc32."""
    header, chunks, crcs, off = {}, [], {}, 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(np.asarray(a), dtype="<f4")
        raw = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        crcs[name] = "%08x" % zlib.crc32(raw)
        chunks.append(raw)
        off += len(raw)
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta[CRC_KEY] = json.dumps(crcs, separators=(",", ":"))
    header = {"__metadata__": meta, **header}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text)
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
