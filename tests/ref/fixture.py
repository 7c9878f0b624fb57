"""Write reference tensors for the C tests (tests/fixtures/*.txt).

Format: blocks of `tensor NAME NDIM D0 D1 ...` followed by the values,
%.9g each (enough digits to round-trip float32). Read by
ib_fixture_load() in tests/testlib.c.
"""
import numpy as np


def write_fixture(path, tensors, comment=""):
    with open(path, "w") as f:
        if comment:
            for line in comment.strip().splitlines():
                f.write("# " + line + "\n")
        for name, t in tensors.items():
            a = np.asarray(t.detach().cpu().numpy() if hasattr(t, "detach") else t, dtype=np.float32)
            f.write("tensor %s %d %s\n" % (name, a.ndim, " ".join(str(d) for d in a.shape)))
            flat = a.reshape(-1)
            for i in range(0, flat.size, 8):
                f.write(" ".join("%.9g" % v for v in flat[i:i + 8]) + "\n")
