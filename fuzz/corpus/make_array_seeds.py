#!/usr/bin/python3
"""Writes the seed inputs of fuzz/fuzz_array.c (byte 0 = mode: 0 .npy
bytes, 1 .npy file, 2 CSV, 3 .npz with member x), from NumPy's own writer.
Run from the repository root: /usr/bin/python3 fuzz/corpus/make_array_seeds.py"""
import io
import os

import numpy as np

os.makedirs("fuzz/corpus/array", exist_ok=True)


def out(name, mode, data):
    with open(f"fuzz/corpus/array/{name}", "wb") as f:
        f.write(bytes([mode]) + data)


def npy(a):
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


out("f4_2d", 0, npy(np.arange(12, dtype="<f4").reshape(4, 3) / 3))
out("f8_1d", 1, npy(np.linspace(-1, 1, 7)))
out("i4", 0, npy(np.array([3, 1, 2, 2, 0], dtype="<i4")))
out("i8_3d", 1, npy(np.arange(24, dtype="<i8").reshape(2, 3, 4)))
out("scalar", 0, npy(np.float32(2.5)))
out("big_endian", 0, npy(np.arange(3, dtype=">f4")))
out("fortran", 0, npy(np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3))))
out("csv_int", 2, b"a,b\n1,2\n3,4\n5,6\n")
out("csv_float", 2, b"# c\n0.5, 1e-3\n-2,inf\n")
b = io.BytesIO()
np.savez(b, x=np.arange(8, dtype="<f4").reshape(4, 2), y=np.array([0, 1, 0, 1]))
out("npz", 3, b.getvalue())
b = io.BytesIO()
np.savez_compressed(b, x=np.arange(6, dtype="<i8"))
out("npz_deflate", 3, b.getvalue())
