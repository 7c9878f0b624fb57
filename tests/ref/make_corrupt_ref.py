"""Reference outputs for the deterministic corruptions that PIL and numpy
define exactly (tests/fixtures/corrupt.txt, read by tests/test_corrupt.c):
pixelate (PIL BOX down then up, as CIFAR-10-C), JPEG (PIL at the
severity's quality) and contrast, on a 32x32 RGB noise image plus a smooth
ramp, and the grey (L) versions of pixelate and JPEG.  Parameters are the
CIFAR-10-C ones (Hendrycks & Dietterich 2019).

Run: /usr/bin/python3 tests/ref/make_corrupt_ref.py
"""
import io
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from fixture import write_fixture  # noqa: E402

PIXELATE = [0.95, 0.9, 0.85, 0.75, 0.65]
QUALITY = [80, 65, 58, 50, 40]
CONTRAST = [0.75, 0.5, 0.4, 0.3, 0.15]


def chw(a):
    return a.transpose(2, 0, 1) if a.ndim == 3 else a[None]


def main():
    rng = np.random.RandomState(7)
    noise = (rng.rand(32, 32, 3) * 255).astype(np.uint8)
    yy, xx = np.mgrid[0:32, 0:32]
    ramp = np.stack([40 + 5 * xx, 60 + 4 * yy, 200 - 3 * (xx + yy)], -1).clip(0, 255).astype(np.uint8)
    img = np.concatenate([noise[:16], ramp[16:]], axis=0)  # half noise, half smooth
    grey = img[..., 1].copy()
    t = {"input": chw(img), "input_grey": chw(grey)}
    for s in range(1, 6):
        for name, x in (("", img), ("_grey", grey)):
            pim = Image.fromarray(x)
            side = int(32 * PIXELATE[s - 1])
            t["pixelate%s_%d" % (name, s)] = chw(np.array(pim.resize((side, side), Image.BOX).resize((32, 32), Image.BOX)))
            buf = io.BytesIO()
            pim.save(buf, "JPEG", quality=QUALITY[s - 1])
            t["jpeg%s_%d" % (name, s)] = chw(np.array(Image.open(buf)))
        f = img / 255.0
        m = f.mean(axis=(0, 1), keepdims=True)
        t["contrast_%d" % s] = chw(np.clip((f - m) * CONTRAST[s - 1] + m, 0, 1) * 255)  # unrounded
    here = os.path.dirname(os.path.abspath(__file__))
    write_fixture(os.path.join(here, "..", "fixtures", "corrupt.txt"), t,
                  "pixelate / JPEG (PIL %s) / contrast references, CIFAR-10-C parameters" % Image.__version__)


if __name__ == "__main__":
    main()
