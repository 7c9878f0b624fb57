#!/usr/bin/env python3
"""Table of test accuracy per model and corruption from the JSON files
scripts/experiments/cifar_robustness.sh writes (ROOT/<run>/<corruption>.json):
the stochastic models' 12-sample average, the plain model's only figure.

    python3 scripts/experiments/collect_robustness.py runs/cifar10-robustness-s3
"""
import json
import os
import sys


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "runs/cifar10-robustness-s3"
    runs = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    table = {}
    names = []
    for r in runs:
        for f in sorted(os.listdir(os.path.join(root, r))):
            if not f.endswith(".json"):
                continue
            c = f[:-5]
            with open(os.path.join(root, r, f)) as fh:
                table[(r, c)] = json.load(fh)["acc_avg"]
            if c not in names:
                names.append(c)
    names = ["clean"] + sorted(n for n in names if n != "clean")
    print("| corruption | " + " | ".join(runs) + " |")
    print("|---|" + "---:|" * len(runs))
    for c in names:
        cells = ["%.2f" % (100 * table[(r, c)]) if (r, c) in table else "–" for r in runs]
        print("| %s | %s |" % (c, " | ".join(cells)))
    means = []
    for r in runs:
        v = [table[(r, c)] for c in names if c != "clean" and (r, c) in table]
        means.append("%.2f (%d)" % (100 * sum(v) / len(v), len(v)) if v else "–")
    print("| **mean over corruptions** (count) | %s |" % " | ".join(means))


if __name__ == "__main__":
    main()
