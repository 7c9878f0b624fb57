#!/usr/bin/env python3
"""Tables (Markdown) from scripts/experiments/robustness_mnist.sh's root:
corruption errors and mCE per model (ROOT/robustness-<model>-s<seed>/robustness.json),
calibration on clean data and at severities 3 and 5 (mean over the corruptions), and the
Rotated MNIST leave-one-domain-out accuracies (ROOT/rot<K>-<model>-s<seed>/summary.json).
With --png DIR, a reliability diagram per model from `ibnet eval --json` output files
ROOT/eval-<model>-s<seed>.json, if present (python3-matplotlib).

    python3 scripts/experiments/collect_robustness_mnist.py runs/robustness-mnist-e2-n10000
"""
import glob
import json
import os
import re
import statistics
import sys

MODELS = ["lenet", "lenet-vib", "lenet-vibcells"]


def pct(v):
    return "–" if v is None else "%.2f" % (100 * v)


def corruption_tables(root):
    reps = {}
    for m in MODELS:
        for f in sorted(glob.glob(os.path.join(root, "robustness-%s-s*" % m, "robustness.json"))):
            with open(f) as fh:
                o = json.load(fh)
            if o.get("complete"):
                reps.setdefault(m, []).append(o)
    if not reps:
        return
    print("| model | clean err | mean corr. err | mCE | rel. mCE | mean path: mean err | mCE |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for m, rs in reps.items():
        for o in rs:
            print("| %s | %s | %s | %s | %s | %s | %s |" % (
                m, pct(o["clean_error"]), pct(o["mean_error"]), pct(o["mce"]), pct(o["relative_mce"]),
                pct(o["mean_error_mean_path"]), pct(o["mce_mean_path"])))
    print()
    first = {m: rs[0] for m, rs in reps.items()}
    names = [c["corruption"] for c in next(iter(first.values()))["corruptions"]]
    print("| corruption | " + " | ".join("%s err (CE)" % m for m in first) + " |")
    print("|---|" + "---:|" * len(first))
    for i, n in enumerate(names):
        cells = []
        for m, o in first.items():
            c = o["corruptions"][i]
            cells.append("%s (%s)" % (pct(c["mean_error"]), pct(c["ce"])))
        print("| %s | %s |" % (n, " | ".join(cells)))
    print()
    # calibration: clean and mean over corruptions at severities 3 and 5
    print("| model | ECE clean | ECE s3 | ECE s5 | NLL clean | NLL s3 | NLL s5 | Brier clean | Brier s5 | "
          "entropy clean | entropy s5 |")
    print("|---|" + "---:|" * 10)
    for m, o in first.items():
        cells = [c for c in o["cells"] if c["model"] == "model"]

        def mean(key, sev):
            v = [c[key] for c in cells if c["severity"] == sev and c[key] is not None]
            return sum(v) / len(v) if v else None
        print("| %s | %.4f | %.4f | %.4f | %.3f | %.3f | %.3f | %.4f | %.4f | %.3f | %.3f |" % (
            m, mean("ece", 0), mean("ece", 3), mean("ece", 5), mean("nll_avg", 0), mean("nll_avg", 3),
            mean("nll_avg", 5), mean("brier", 0), mean("brier", 5), mean("entropy", 0), mean("entropy", 5)))
    print()


def domain_table(root):
    """Accuracy per held-out domain (mean +- sample std over the seeds present) and the mean over
    the domains every model has, taken per seed, then over the seeds."""
    acc = {}
    for f in glob.glob(os.path.join(root, "rot*-*-s*", "summary.json")):
        d = os.path.basename(os.path.dirname(f))
        k, m, s = re.match(r"rot(\d)-(.*)-s(\d+)$", d).groups()
        with open(f) as fh:
            o = json.load(fh)
        acc.setdefault((m, int(k)), {})[int(s)] = o["test_acc_avg"]
    if not acc:
        return
    ks = sorted({k for _, k in acc})
    # the mean only over the domains every model has, so the rows compare
    common = [k for k in ks if all((m, k) in acc for m in MODELS)]

    def cell(v):
        if not v:
            return "–"
        if len(v) == 1:
            return "%.2f (1 seed)" % (100 * v[0])
        return "%.2f ± %.2f (%d)" % (100 * statistics.mean(v), 100 * statistics.stdev(v), len(v))

    print("| model | " + " | ".join("held out %d°" % (15 * k) for k in ks) +
          " | mean over %s |" % ", ".join("%d°" % (15 * k) for k in common))
    print("|---|" + "---:|" * (len(ks) + 1))
    for m in MODELS:
        row = [cell(list(acc.get((m, k), {}).values())) for k in ks]
        seeds = set.intersection(*(set(acc[(m, k)]) for k in common)) if common else set()
        per_seed = [statistics.mean(acc[(m, k)][sd] for k in common) for sd in sorted(seeds)]
        print("| %s | %s | %s |" % (m, " | ".join(row), cell(per_seed)))
    print()


def reliability_png(root, out_dir):
    """One reliability diagram per eval-*.json (bins of `ibnet eval --json`), where matplotlib is installed."""
    files = sorted(glob.glob(os.path.join(root, "eval-*.json")))
    if not files:
        return
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no reliability diagram)", file=sys.stderr)
        return
    os.makedirs(out_dir, exist_ok=True)
    fig, axes = plt.subplots(1, len(files), figsize=(4 * len(files), 4), squeeze=False)
    for ax, f in zip(axes[0], files):
        with open(f) as fh:
            o = json.load(fh)
        bins = o["reliability"]
        mid = [(b["lo"] + b["hi"]) / 2 for b in bins]
        ax.bar(mid, [b["acc"] for b in bins], width=1 / len(bins), edgecolor="k", label="accuracy")
        ax.plot([0, 1], [0, 1], "r--", label="calibrated")
        ax.set_title("%s: ECE %.3f" % (os.path.basename(f)[5:-5], o["ece"]))
        ax.set_xlabel("confidence")
        ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "reliability-mnist.png"), dpi=100)


def main():
    args = sys.argv[1:]
    png = None
    if "--png" in args:
        i = args.index("--png")
        png = args[i + 1]
        del args[i:i + 2]
    root = args[0] if args else "runs/robustness-mnist-e2-n10000"
    corruption_tables(root)
    domain_table(root)
    if png:
        reliability_png(root, png)


if __name__ == "__main__":
    main()
