#!/usr/bin/env python3
"""Tables of attack_more_mnist.sh: CW-L2 (untargeted and targeted) and the
lenet family's FGSM / PGD rows, from the `ibnet attack --json` reports and
the .time files written beside them.

    python3 scripts/experiments/collect_attack_more_mnist.py [DIR ...]
"""
import glob
import json
import os
import sys


def wall(path):
    t = path[: -len(".json")] + ".time"
    try:
        with open(t) as f:
            return f.read().split()[0]
    except OSError:
        return "-"


def load(path):
    with open(path) as f:
        return json.load(f)


def pct(x):
    return "%.1f" % (100.0 * x)


def cw_table(paths):
    """Per L2 radius: robust accuracy / success rate (untargeted: fooled
    among the clean-correct; targeted: reached the target, of all)."""
    print("| network (seed 1) | CW | N | clean | ε = 1 | ε = 1.5 | ε = 2 | unbounded | mean L2 "
          "| fooled after 8-bit rounding | wall s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in paths:
        rows = load(p)
        by = {r["eps"]: r for r in rows}
        name = os.path.basename(p).split("-cw")[0]
        r0 = rows[0]
        unb = by.get(28.0) or rows[-1]
        kind = "targeted" if r0["targeted"] else "untargeted"
        cells = ["%s / %s" % (pct(by[e]["robust_acc"]), pct(by[e]["success_rate"])) if e in by else "-"
                 for e in (1.0, 1.5, 2.0, 28.0)]
        print("| %s | %s | %d | %s | %s | %.3f | %d/%d | %s |" % (
            name, kind, r0["n"], pct(r0["clean_acc"]), " | ".join(cells), unb["mean_l2"], unb["fooled_u8"],
            unb["fooled"], wall(p)))


def linf_table(paths):
    print("| network (seed 1) | attack | N | clean | ε = 0.1 | ε = 0.2 | ε = 0.3 | wall s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for p in paths:
        rows = sorted(load(p), key=lambda r: r["eps"])
        name = os.path.basename(p).rsplit("-", 1)[0]
        r0 = rows[0]
        what = r0["attack"].upper() + ("-%d" % r0["steps"] if r0["attack"] == "pgd" else "")
        if r0["stochastic"]:
            what += " (EOT-%d%s)" % (r0["samples"], " + mean path" if r0["mean_path"] else "")
        print("| %s | %s | %d | %s | %s | %s | %s | %s |" % (
            name, what, r0["n"], pct(r0["clean_acc"]), *[pct(r["robust_acc"]) for r in rows], wall(p)))


def main():
    dirs = sys.argv[1:] or ["runs/attack-more-mnist", "runs/attack-lenet-mnist-e2-n10000"]
    for d in dirs:
        cw = sorted(glob.glob(os.path.join(d, "*-cw*.json")))
        other = sorted(p for p in glob.glob(os.path.join(d, "*.json"))
                       if "-fgsm" in os.path.basename(p) or "-pgd" in os.path.basename(p))
        print("## %s\n" % d)
        if other:
            linf_table(other)
            print()
        if cw:
            cw_table(cw)
            print()


if __name__ == "__main__":
    main()
