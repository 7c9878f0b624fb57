#!/usr/bin/env python3
"""Tables of the VUB comparison on MNIST (vub_mnist.sh, vub_head_mnist.sh,
attack_vub_mnist.sh): one row per set-up (network, objective, beta) with
the mean +- standard deviation over the finished seeds of the last epoch's
test accuracy (12-sample average, 1 sample, mean path z = mu), test KL (the
rate, nats per example) and training softmax entropy (nats, the logged
"entropy" term), then FGSM / PGD robust accuracy of the seed-1 networks.

    python3 scripts/experiments/collect_vub_mnist.py [ROOT] [--epochs 3]
"""
import glob
import json
import os
import re
import statistics
import sys


def last_metrics(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    return lines[-1] if lines else None


def ms(xs, scale=1.0, nd=2):
    xs = [x * scale for x in xs if x is not None]
    if not xs:
        return "-"
    if len(xs) == 1:
        return "%.*f" % (nd, xs[0])
    return "%.*f ± %.*f" % (nd, statistics.mean(xs), nd, statistics.stdev(xs))


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    epochs = 3
    if "--epochs" in sys.argv:
        epochs = int(sys.argv[sys.argv.index("--epochs") + 1])
    root = args[0] if args else "runs/vub-mnist-e%d" % epochs
    groups = {}
    for run in sorted(glob.glob(os.path.join(root, "*-s[0-9]*"))):
        if not os.path.isdir(run):
            continue
        name = os.path.basename(run)
        try:
            with open(os.path.join(run, "summary.json")) as f:
                if json.load(f).get("epochs_done") != epochs:
                    continue
        except OSError:
            continue
        key = re.sub(r"-s\d+$", "", name)
        groups.setdefault(key, []).append((name, last_metrics(run)))

    def order(k):
        m = re.match(r"(head-)?(mlp|vib|vub)(?:-b([0-9e.-]+))?", k)
        head, obj, beta = m.group(1) or "", m.group(2), float(m.group(3) or 0)
        return (head != "", {"mlp": 0, "vib": 1, "vub": 2}[obj] if not head else 0, beta,
                {"mlp": 0, "vib": 1, "vub": 2}[obj])

    print("| set-up | seeds | acc avg-12 (%) | acc 1-shot (%) | acc mean path (%) | test KL (nats) | train H (nats) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for k in sorted(groups, key=order):
        rows = [m for _, m in groups[k] if m]
        kl = [m["test_kl"][0] if m.get("test_kl") else None for m in rows]
        print("| %s | %d | %s | %s | %s | %s | %s |" % (
            k, len(rows), ms([m["test_acc_avg"] for m in rows], 100), ms([m["test_acc_1shot"] for m in rows], 100),
            ms([m["test_acc_mean"] for m in rows], 100), ms(kl, 1, 1),
            ms([m["train_terms"].get("entropy") for m in rows], 1, 3)))

    print()
    print("| network (seed 1) | attack | N | clean | eps 0.1 | eps 0.2 | eps 0.3 | wall s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for path in sorted(glob.glob(os.path.join(root, "*-s1-*.json")), key=lambda p: (
            "pgd" in p, order(re.sub(r"-s1-.*$", "", os.path.basename(p))))):
        with open(path) as f:
            rows = json.load(f)
        name = os.path.basename(path)[:-5]
        net, kind = name.rsplit("-", 1)
        by_eps = {round(r["eps"], 3): r for r in rows}
        t = open(path[:-5] + ".time").read().split()[0] if os.path.exists(path[:-5] + ".time") else "-"
        print("| %s | %s | %d | %.1f | %s | %s | %s | %s |" % (
            net, kind.upper() + ("-40" if kind == "pgd" else ""), rows[0]["n"], 100 * rows[0]["clean_acc"],
            *["%.1f" % (100 * by_eps[e]["robust_acc"]) if e in by_eps else "-" for e in (0.1, 0.2, 0.3)], t))


if __name__ == "__main__":
    main()
