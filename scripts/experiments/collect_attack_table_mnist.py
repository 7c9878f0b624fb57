#!/usr/bin/env python3
"""The MNIST adversarial table of docs/results.md: every `ibnet attack --json`
report of the seed-1 MNIST networks (attack_mnist.sh, attack_vub_mnist.sh,
attack_more_mnist.sh), merged into one summary table (one row per network,
each cell with its N) and one list of every report of those networks.

    python3 scripts/experiments/collect_attack_table_mnist.py [DIR ...]

DIRs default to the committed run records under docs/runs/. A network is
named by its checkpoint's run directory; attack_mnist.sh's `mlp` and
`vib-mlp` are the same networks as vub_mnist.sh's `mlp-s1` and
`vib-b1e-3-s1` (same recipe and seed; their metrics agree to the last digit),
so their reports count for those.
"""
import glob
import json
import os
import sys

DIRS = ["docs/runs/vub-mnist-e3", "docs/runs/attack-mnist-e3-s1", "docs/runs/attack-more-mnist",
        "docs/runs/attack-lenet-mnist-e2-n10000"]
NETS = [("mlp-s1", "`mlp`"), ("vib-b1e-3-s1", "Deep VIB β = 1e-3"), ("vib-b1e-2-s1", "Deep VIB β = 1e-2"),
        ("vib-b1e-1-s1", "Deep VIB β = 1e-1"), ("lenet-s1", "`lenet`"), ("lenet-vibcells-s1", "`lenet-vibcells`"),
        ("vub-b1e-3-s1", "VUB β = 1e-3 (beside)"), ("lenet-vibcells-vub-s1", "`lenet-vibcells` + VUB (beside)")]
SAME = {"mlp": "mlp-s1", "vib-mlp": "vib-b1e-3-s1"}
CW_RADII = (1.0, 1.5, 2.0)
# the N of the summary table per attack: the most images every network could be given
SUMMARY_N = {"fgsm": 1000, "pgd": 200, "cw": 20, "cw-targeted": 20}


def network(report):
    run = os.path.basename(os.path.dirname(report[0]["checkpoint"]))
    return SAME.get(run, run)


def kind(r):
    if r["attack"] == "cw":
        return "cw-targeted" if r["targeted"] else "cw"
    return r["attack"]


def cpu_seconds(path):
    """user + sys from the .time file beside a report (older ones: wall only)."""
    try:
        with open(path[: -len(".json")] + ".time") as f:
            words = f.read().replace(",", " ").split()
    except OSError:
        return None
    if "user" not in words:
        return None
    return float(words[words.index("user") - 2]) + float(words[words.index("sys") - 2])


def load(dirs):
    """{(network, kind, n): (path, rows sorted by eps)}; the first dir wins."""
    reports = {}
    for d in dirs:
        for p in sorted(glob.glob(os.path.join(d, "*.json"))):
            try:
                with open(p) as f:
                    rows = json.load(f)
            except (OSError, ValueError):
                continue
            if not isinstance(rows, list) or not rows or "attack" not in rows[0]:
                continue
            rows = sorted(rows, key=lambda r: r["eps"])
            key = (network(rows), kind(rows[0]), rows[0]["n"])
            reports.setdefault(key, (p, rows))
    return reports


def pct(x):
    return "%.1f" % (100.0 * x)


def cell(rows, what):
    by = {r["eps"]: r for r in rows}
    if what == "cw":
        vals = [pct(by[e]["robust_acc"]) if e in by else "-" for e in CW_RADII]
        return " / ".join(vals) + "; %.2f" % rows[-1]["mean_l2"]
    if what == "cw-targeted":
        vals = [pct(by[e]["success_rate"]) if e in by else "-" for e in CW_RADII]
        return " / ".join(vals) + "; %.2f" % rows[-1]["mean_l2"]
    return " / ".join(pct(r["robust_acc"]) for r in rows)


def summary(reports):
    kinds = ["fgsm", "pgd", "cw", "cw-targeted"]
    # per attack one N for every network (SUMMARY_N); one that lacks it shows its largest below
    print("| network (seed 1) | clean, FGSM's N | FGSM ε 0.1 / 0.2 / 0.3 | PGD-40 ε 0.1 / 0.2 / 0.3 "
          "| CW untargeted: robust at L2 1 / 1.5 / 2; mean L2 | CW targeted: success at L2 1 / 1.5 / 2; mean L2 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, label in NETS:
        cells = []
        clean = "-"
        for k in kinds:
            ns = sorted(n for (net, kk, n) in reports if net == name and kk == k)
            if not ns:
                cells.append("not run")
                continue
            n = max([m for m in ns if m <= SUMMARY_N[k]] or ns)
            rows = reports[(name, k, n)][1]
            if k == "fgsm":
                clean = "%s (%d)" % (pct(rows[0]["clean_acc"]), n)
            cells.append("%s (N = %d)" % (cell(rows, k), n))
        print("| %s | %s | %s |" % (label, clean, " | ".join(cells)))


def listing(reports):
    print("| network (seed 1) | attack | N | clean | per radius | fooled, after 8-bit rounding "
          "| attack s | CPU s | report |")
    print("|---|---|---:|---:|---|---:|---:|---:|---|")
    order = {name: i for i, (name, _) in enumerate(NETS)}
    kinds = {"fgsm": 0, "pgd": 1, "cw": 2, "cw-targeted": 3}
    for key in sorted((k for k in reports if k[0] in order), key=lambda k: (kinds[k[1]], order[k[0]], k[2])):
        net, k, n = key
        p, rows = reports[key]
        r0 = rows[0]
        what = {"fgsm": "FGSM", "pgd": "PGD-%d" % r0["steps"], "cw": "CW-L2",
                "cw-targeted": "CW-L2 targeted"}[k]
        if r0["stochastic"]:
            what += " (EOT-%d%s)" % (r0["samples"], " + mean path" if r0["mean_path"] else "")
        cpu = cpu_seconds(p)
        u8 = rows[-1] if k.startswith("cw") else rows[0]  # CW unbounded; FGSM/PGD at the smallest eps
        print("| %s | %s | %d | %s | %s | %d/%d | %.0f | %s | `%s` |" % (
            net, what, n, pct(r0["clean_acc"]), cell(rows, k), u8["fooled_u8"], u8["fooled"], r0["seconds"],
            "%.0f" % cpu if cpu is not None else "-", p))


def check(reports):
    """The sanity rules of docs/attacks.md on every report: robust accuracy
    never rises with the radius, CW's success never falls, and PGD is never
    weaker than FGSM on the same images. Prints what breaks them."""
    bad = 0
    for (net, k, n), (p, rows) in sorted(reports.items()):
        acc = [r["robust_acc"] for r in rows]
        succ = [r["success_rate"] for r in rows]
        if any(b > a for a, b in zip(acc, acc[1:])) or any(b < a for a, b in zip(succ, succ[1:])):
            print("not monotone in eps: %s" % p, file=sys.stderr)
            bad += 1
        if k == "pgd" and (net, "fgsm", n) in reports:
            fg = reports[(net, "fgsm", n)][1]
            if any(a["robust_acc"] > b["robust_acc"] for a, b in zip(rows, fg) if a["eps"] == b["eps"]):
                print("PGD weaker than FGSM: %s" % p, file=sys.stderr)
                bad += 1
    print("%d reports checked, %d break a rule" % (len(reports), bad), file=sys.stderr)
    return bad


def main():
    reports = load(sys.argv[1:] or DIRS)
    check(reports)
    summary(reports)
    print()
    listing(reports)


if __name__ == "__main__":
    main()
