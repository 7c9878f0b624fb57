#!/usr/bin/env python3
"""Tables of cifar_vub_attack.sh (docs/results.md, "CIFAR-10: VUB and
adversarial robustness (short budget)"): one row per finished run (the
plain resnet20 and resnet20-vibcells of BASE first) with the last epoch's
test accuracy (12-sample average, 1 sample, mean path z = mu), test KL (the
rate, nats per example; the sum over the cells for resnet20-vibcells), the
training softmax entropy (the logged "entropy" term, nats), the run's wall
time (sum of its epochs) and CPU time; then the FGSM / PGD-40 robust
accuracy of every attack report found.

    python3 scripts/experiments/collect_cifar_vub_attack.py [ROOT] [BASE] [--epochs 3]
"""
import glob
import json
import os
import re
import sys


def last_metrics(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    return lines


def cpu_of(path):
    """user seconds from a `/usr/bin/time -f "%e s wall %U s user"` file."""
    try:
        m = re.search(r"([0-9.]+) s user", open(path).read())
        return "%.0f" % float(m.group(1)) if m else "-"
    except OSError:
        return "-"


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    epochs = 3
    if "--epochs" in sys.argv:
        epochs = int(sys.argv[sys.argv.index("--epochs") + 1])
    root = args[0] if len(args) > 0 else "runs/cifar-vub-e%d-n10000" % epochs
    base = args[1] if len(args) > 1 else "runs/info-cells-cifar-e%d-n10000" % epochs
    runs = [(n, os.path.join(base, n + "-binning-s1"), os.path.join(base, n + "-binning-s1.train_time"))
            for n in ("resnet20", "resnet20-vibcells")]

    def order(name):
        m = re.match(r"(head-)?(vib|vub)-b([0-9.]+e-?[0-9]+)", name)
        return (m.group(1) is not None, m.group(2), float(m.group(3))) if m else (False, "", 0.0)

    mine = [os.path.basename(r) for r in glob.glob(os.path.join(root, "*-s1")) if os.path.isdir(r)]
    runs += [(re.sub(r"-s1$", "", n), os.path.join(root, n), os.path.join(root, n + ".train_time"))
             for n in sorted(mine, key=order)]
    print("| run | acc avg-12 (%) | acc 1-shot (%) | acc mean path (%) | test KL (nats) | train H (nats) "
          "| wall s | CPU s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, run, tfile in runs:
        try:
            with open(os.path.join(run, "summary.json")) as f:
                if json.load(f).get("epochs_done") != epochs:
                    continue
            lines = last_metrics(run)
        except OSError:
            continue
        m = lines[-1]
        kl = "%.1f" % sum(m["test_kl"]) if m.get("test_kl") else "-"
        wall = sum(l.get("seconds", 0) for l in lines)
        print("| %s | %.1f | %.1f | %.1f | %s | %.3f | %.0f | %s |" % (
            name, 100 * m["test_acc_avg"], 100 * m["test_acc_1shot"], 100 * m["test_acc_mean"], kl,
            m["train_terms"].get("entropy", float("nan")), wall, cpu_of(tfile)))

    print()
    print("| network | attack | N | clean | 2/255 | 4/255 | 8/255 | wall s | CPU s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    names = [n for n, _, _ in runs]

    def aorder(p):
        net, kind = os.path.basename(p)[:-5].rsplit("-", 1)
        net = re.sub(r"-s1$", "", net)
        return ({"fgsm": 0, "fgsmp": 1, "pgd": 2}.get(kind, 3), names.index(net) if net in names else 99)

    reports = [p for p in glob.glob(os.path.join(root, "*-s1-*.json")) if ".part" not in p]
    for path in sorted(reports, key=aorder):
        with open(path) as f:
            rows = json.load(f)
        net, kind = os.path.basename(path)[:-5].rsplit("-", 1)
        by_eps = {round(r["eps"] * 255): r for r in rows}
        tfile = path[:-5] + ".time"
        wall = "-"
        if os.path.exists(tfile):
            wall = "%.0f" % float(open(tfile).read().split()[0])
        print("| %s | %s | %d | %.1f | %s | %s | %s | %s | %s |" % (
            re.sub(r"-s1$", "", net), {"fgsm": "FGSM", "fgsmp": "FGSM", "pgd": "PGD-40"}.get(kind, kind), rows[0]["n"],
            100 * rows[0]["clean_acc"],
            *["%.1f" % (100 * by_eps[e]["robust_acc"]) if e in by_eps else "-" for e in (2, 4, 8)],
            wall, cpu_of(tfile)))


if __name__ == "__main__":
    main()
