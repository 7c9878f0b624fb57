"""Tables of a cellVIB comparison (scripts/experiments/cellvib_mnist.sh):
one row per run, then the mean and spread per configuration over seeds.

    python3 scripts/experiments/collect_cellvib.py runs/cellvib-mnist-e8-n0.6
    python3 scripts/experiments/collect_cellvib.py DIR --best    # "BETA SCHED" of the best cell run

Accuracy is the clean test accuracy after the last epoch: the S-sample
average of probabilities for stochastic models (the deterministic models'
average equals their single pass).  "best" is the highest test accuracy
over the epochs, shown to expose how much the noisy labels pull the final
model down; it is not used to choose anything.  KL per cell is the test-set
mean KL to N(0, 1) in nats, an upper bound on the information the cell
passes.
"""
import json
import os
import statistics
import sys


def load(run):
    cfg = json.load(open(os.path.join(run, "config.json")))
    summ = json.load(open(os.path.join(run, "summary.json")))
    return cfg, summ


def config_key(cfg):
    model = os.path.basename(cfg["model"]).replace(".ibm", "")
    if "vibcells" in model:
        return "%s beta=%g %s" % (model, cfg["beta"], cfg["beta_schedule"])
    if "vib" in model:
        return "%s beta=%g" % (model, cfg["beta"])
    return model


def main():
    root = sys.argv[1]
    rows = []
    for name in sorted(os.listdir(root)):
        run = os.path.join(root, name)
        if not os.path.isfile(os.path.join(run, "summary.json")):
            continue
        cfg, s = load(run)
        rows.append((config_key(cfg), int(cfg["seed"]), 100 * s["test_acc_avg"], 100 * s["best_accuracy"],
                     s["best_epoch"], s.get("test_kl_nats", []), s["epochs_done"], cfg))
    if "--best" in sys.argv:
        cells = [r for r in rows if "vibcells" in r[0] and r[1] == 1]
        if not cells:
            sys.exit("no finished cell runs with seed 1 in " + root)
        best = max(cells, key=lambda r: r[2])
        print("%g %s" % (best[7]["beta"], best[7]["beta_schedule"]))
        return
    print("| configuration | seed | epochs | clean test accuracy, last epoch (%) | best epoch: accuracy (%) "
          "| test KL per cell (nats) |")
    print("|---|---:|---:|---:|---:|---|")
    for key, seed, acc, best, best_ep, kl, ep, _ in sorted(rows, key=lambda r: (r[0], r[1])):
        kls = ", ".join("%.0f" % k for k in kl) if kl else "–"
        print("| %s | %d | %d | %.2f | %d: %.2f | %s |" % (key, seed, ep, acc, best_ep, best, kls))
    groups = {}
    for r in rows:
        groups.setdefault(r[0], []).append(r[2])
    print()
    print("| configuration | seeds | mean accuracy (%) | min – max (%) |")
    print("|---|---:|---:|---|")
    for key in sorted(groups, key=lambda k: -statistics.mean(groups[k])):
        v = groups[key]
        print("| %s | %d | %.2f | %.2f – %.2f |" % (key, len(v), statistics.mean(v), min(v), max(v)))


if __name__ == "__main__":
    main()
