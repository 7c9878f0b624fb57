"""Write tests/fixtures/mi_small.npz and mi_small_compressed.npz, read by
tests/test_info.c and `ibnet mi` in the tests: archives written by NumPy
itself (numpy.savez and savez_compressed, which use zip64 headers), so the
.npz reader is checked against the real writer, not against our idea of it.

Run with /usr/bin/python3 (Debian's python3-numpy); the values are
arange-based so the C test can recompute them.
"""
import os

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "fixtures")
arrays = dict(
    x=(np.arange(12, dtype=np.float32).reshape(6, 2) / 4),  # x[i, j] = (2 i + j) / 4
    y=np.array([0, 1, 0, 1, 2, 2], dtype=np.int64),
    x64=np.arange(6, dtype=np.float64) * 0.5,
    y32=np.array([3, 3, 1, 1, 2, 2], dtype=np.int32),
)
np.savez(os.path.join(out, "mi_small.npz"), **arrays)
np.savez_compressed(os.path.join(out, "mi_small_compressed.npz"), **arrays)
print("wrote mi_small.npz, mi_small_compressed.npz")
