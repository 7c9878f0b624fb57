#!/usr/bin/python3
"""Writes the small seed inputs of fuzz/fuzz_idx.c, fuzz_cifar.c and
fuzz_png.c (the byte layouts are described at the top of each target).
Run from the repository root: /usr/bin/python3 fuzz/corpus/make_seeds.py"""
import io, os, struct, zlib

def out(kind, name, data):
    os.makedirs(f"fuzz/corpus/{kind}", exist_ok=True)
    with open(f"fuzz/corpus/{kind}/{name}", "wb") as f:
        f.write(data)

# IDX: mode, split (LE16), images file, labels file
def idx_images(n, h, w, magic=0x803):
    return struct.pack(">IIII", magic, n, h, w) + bytes((7 * i + p) % 256 for i in range(n) for p in range(h * w))
def idx_labels(labels):
    return struct.pack(">II", 0x801, len(labels)) + bytes(labels)
for name, mode, img, lab in [
    ("plain", 0, idx_images(3, 4, 4), idx_labels([1, 0, 9])),
    ("gz_both", 3, idx_images(2, 5, 3), idx_labels([4, 2])),
    ("classes5", 5 << 2, idx_images(2, 2, 2), idx_labels([4, 3])),
    ("mismatch", 0, idx_images(2, 2, 2), idx_labels([1, 2, 3])),
    ("empty", 0, idx_images(0, 28, 28), idx_labels([])),
]:
    out("idx", name, bytes([mode]) + struct.pack("<H", len(img)) + img + lab)
# also a self-gzipped images part (zlib detects the stream by itself)
img = zlib.compress(idx_images(1, 3, 3), 9, wbits=31)
out("idx", "selfgz", bytes([0]) + struct.pack("<H", len(img)) + img + idx_labels([7]))

# CIFAR: mode, split (LE16), classes, records
def rec(lb, label, seed):
    head = bytes([label]) if lb == 1 else bytes([label // 5, label])
    return head + bytes((seed * 31 + p * 7) % 256 for p in range(3072))
r10 = rec(1, 3, 0)
out("cifar", "one10", bytes([0]) + struct.pack("<H", 0) + bytes([10]) + r10)
out("cifar", "two_files", bytes([4]) + struct.pack("<H", len(r10)) + bytes([10]) + r10 + rec(1, 9, 1))
out("cifar", "c100_gz", bytes([3]) + struct.pack("<H", 0) + bytes([100]) + rec(2, 57, 2))
out("cifar", "partial", bytes([0]) + struct.pack("<H", 0) + bytes([10]) + r10[:1000])

# PNG: mode, split (LE16), png file(s); made with Pillow in several formats
from PIL import Image
def png(mode, size, **kw):
    im = Image.new(mode, size)
    px = im.load()
    for y in range(size[1]):
        for x in range(size[0]):
            v = (x * 37 + y * 11) % 256
            px[x, y] = {"L": v, "RGB": (v, 255 - v, x * 9), "RGBA": (v, v, 0, 128 + y), "P": v % 4,
                        "1": v & 1, "I;16": v * 200, "LA": (v, 200)}[mode]
    b = io.BytesIO()
    im.save(b, "PNG", **kw)
    return b.getvalue()
for name, data in [("gray", png("L", (4, 3))), ("rgb", png("RGB", (5, 4))), ("rgba", png("RGBA", (3, 3))),
                   ("palette", png("P", (4, 4))), ("bilevel", png("1", (8, 2))), ("gray16", png("I;16", (3, 2))),
                   ("graya", png("LA", (2, 2))), ("rgb6x5", png("RGB", (6, 5)))]:
    out("png", name, bytes([0]) + struct.pack("<H", 0) + data)
a, b = png("L", (4, 3)), png("L", (4, 3))
out("png", "two_same", bytes([1]) + struct.pack("<H", len(a)) + a + b)
c = png("L", (3, 4))
out("png", "two_differ", bytes([1]) + struct.pack("<H", len(a)) + a + c)
