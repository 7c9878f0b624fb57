#!/usr/bin/env python3
"""Tables of imb_more.sh (docs/results.md, "IMB / PIB"): the MNIST networks
over seeds (mean +- sample std), the FGSM / PGD rows with EOT over the
particles, and the CIFAR-10 particle runs beside the plain and cells runs.

    python3 scripts/experiments/collect_imb.py seeds DIR...      # NAME-sSEED/summary.json
    python3 scripts/experiments/collect_imb.py attack DIR        # *-fgsm.json, *-pgd40.json
    python3 scripts/experiments/collect_imb.py cifar RUN...      # run directories
A (network, seed) found in several DIRs is taken from the first.
"""
import glob
import json
import os
import statistics
import sys

NAMES = [("imb", "IMB `imb-mlp`, γ = (1, 0.8, 1), β = (1e-4, 1e-4)"),
         ("mle", "MLE `imb-mlp`, γ = (1, 0, 0), β = 0"),
         ("vib-mlp", "Deep VIB `vib-mlp`, β = 1e-3 (12 samples)"),
         ("mlp", "plain `mlp`")]


def load(path):
    with open(path) as f:
        return json.load(f)


def times(path):
    """(wall, user) seconds from a /usr/bin/time file beside a run, or None."""
    try:
        with open(path) as f:
            w = f.read().split()
        return float(w[0]), float(w[3])
    except (OSError, IndexError, ValueError):
        return None


def ms(xs, scale=100.0, fmt="%.2f"):
    xs = [scale * x for x in xs]
    if len(xs) == 1:
        return fmt % xs[0]
    return (fmt + " ± " + fmt) % (statistics.mean(xs), statistics.stdev(xs))


def seeds(dirs):
    runs = {}
    for d in dirs:
        for p in sorted(glob.glob(os.path.join(d, "*-s*", "summary.json"))):
            run = os.path.basename(os.path.dirname(p))
            name, seed = run.rsplit("-s", 1)
            runs.setdefault((name, int(seed)), (p, times(os.path.dirname(p) + ".time")))
    print("| network | seeds | val acc | test error, particle mean / avg (%) | test error, deterministic twin "
          "/ mean path (%) | per seed (avg) | CPU s per run (user) |")
    print("|---|---|---:|---:|---:|---|---:|")
    for name, label in NAMES:
        got = sorted((s, v) for (n, s), v in runs.items() if n == name)
        if not got:
            continue
        sums = [load(p) for _, (p, _) in got]
        cpu = [t[1] for _, (_, t) in got if t]
        print("| %s | %s | %s %% | %s | %s | %s | %s |" % (
            label, ",".join(str(s) for s, _ in got), ms([x["best_accuracy"] for x in sums], fmt="%.1f"),
            ms([x["test_error_avg"] for x in sums]), ms([1 - x["test_acc_mean"] for x in sums]),
            " / ".join("%.2f" % (100 * x["test_error_avg"]) for x in sums),
            ("%.0f" % statistics.mean(cpu)) + (" (%d runs)" % len(cpu)) if cpu else "-"))


def attack(d):
    """One row per network and attack; the PGD radii of one network may
    come from one report (NAME-pgd40.json) or one per radius
    (NAME-pgd40-epsE.json, run side by side), CPU time then summed."""
    print("| network (seed 1) | attack | N | clean | ε = 0.1 | ε = 0.2 | ε = 0.3 | wall s / CPU s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    order = {n: i for i, (n, _) in enumerate(NAMES)}
    groups = {}
    for p in glob.glob(os.path.join(d, "*-fgsm.json")) + glob.glob(os.path.join(d, "*-pgd40*.json")):
        base = os.path.basename(p)[: -len(".json")]
        name, what = (base.split("-fgsm")[0], "fgsm") if "-fgsm" in base else (base.split("-pgd40")[0], "pgd")
        groups.setdefault((order.get(name, 9), name, what), []).append(p)
    for (_, name, _), paths in sorted(groups.items()):
        rows = sorted((r for p in paths for r in load(p)), key=lambda r: r["eps"])
        r0 = rows[0]
        what = r0["attack"].upper() + ("-%d" % r0["steps"] if r0["attack"] == "pgd" else "")
        if r0["stochastic"]:
            what += " (EOT-%d%s)" % (r0["samples"], " + mean path" if r0["mean_path"] else "")
        if len(paths) > 1:
            what += ", each ε alone"
        ts = [t for t in (times(p[: -len(".json")] + ".time") for p in paths) if t]
        print("| %s | %s | %d | %.1f | %s | %s |" % (
            name, what, r0["n"], 100 * r0["clean_acc"], " | ".join("%.1f" % (100 * r["robust_acc"]) for r in rows),
            "%.0f / %.0f" % (max(t[0] for t in ts), sum(t[1] for t in ts)) if ts else "-"))


def dry_run(run):
    """(paths, MiB) from the --dry-run line imb_more.sh keeps beside a run."""
    import re
    name = os.path.basename(run.rstrip("/")).rsplit("-s", 1)[0]
    try:
        with open(os.path.join(os.path.dirname(run.rstrip("/")), name + ".dry-run.txt")) as f:
            text = f.read()
    except OSError:
        return "?", "?"
    p = re.search(r"(\d+) particle paths per example", text)
    m = re.search(r"training graph memory ([0-9.]+) MiB", text)
    return (p.group(1) if p else "1"), (m.group(1) + " MiB" if m else "?")


def cifar(runs):
    print("| network | seed | paths per example | test acc, avg / 1 draw / mean path (%) | training samples/s "
          "(mean of epochs) | training graph memory (batch 128) | wall s / CPU s (whole run) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        s = load(os.path.join(r, "summary.json"))
        m = [json.loads(l) for l in open(os.path.join(r, "metrics.jsonl")) if l.strip()]
        sps = [e["samples_per_s"] for e in m if "samples_per_s" in e]
        t = times(r.rstrip("/") + ".time")
        paths, mem = dry_run(r)
        print("| %s | %s | %s | %.1f / %.1f / %.1f | %.1f | %s | %s |" % (
            s["model"], r.rstrip("/").rsplit("-s", 1)[1], paths, 100 * s["test_acc_avg"], 100 * s["test_acc_1shot"], 100 * s["test_acc_mean"],
            statistics.mean(sps) if sps else float("nan"), mem, "%.0f / %.0f" % t if t else "-"))


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("seeds", "attack", "cifar"):
        sys.exit(__doc__)
    {"seeds": seeds, "attack": lambda a: attack(a[0]), "cifar": cifar}[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
