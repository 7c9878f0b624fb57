#!/usr/bin/env python3
"""Tables (Markdown) of the noisy-label grid (scripts/experiments/noisy_labels.sh):
for every noise setting and model, over the seeds present (mean +- sample standard
deviation when there are several):
  1. clean test accuracy of the last epoch (the headline), of the epoch chosen on the clean
     validation split, and of the best epoch on the test set (an oracle, named as such);
  2. end-of-run memorisation (summary.json, eval mode on the whole noisy training set):
     the share of noisy-label examples predicted as their noisy label and as their clean
     label, and the share of the labels the noise changed.
Run directories are ROOT/<model>-<kind><rate>-s<seed>.

    python3 scripts/experiments/collect_noisy_labels.py runs/noisy-mnist-e10-n3000
"""
import glob
import json
import os
import re
import statistics
import sys

NAME = re.compile(r"^(?P<model>.+)-(?P<kind>symmetric|pair)(?P<rate>[0-9.]+)-s(?P<seed>\d+)$")


def load(run):
    with open(os.path.join(run, "summary.json")) as fh:
        summary = json.load(fh)
    epochs = []
    with open(os.path.join(run, "metrics.jsonl")) as fh:
        for line in fh:
            line = line.strip()
            if line:
                epochs.append(json.loads(line))
    by_epoch = {e["epoch"]: e for e in epochs if "test_acc_avg" in e}
    mem = summary.get("memorisation", {})
    changed = mem.get("noisy_examples", 0) / max(1, mem.get("noisy_examples", 0) + mem.get("clean_examples", 0))
    return {
        "last": summary["test_acc_avg"],
        "selected": by_epoch[summary["best_epoch"]]["test_acc_avg"] if summary.get("best_epoch") in by_epoch else None,
        "selected_epoch": summary.get("best_epoch"),
        "oracle": max(e["test_acc_avg"] for e in by_epoch.values()),
        "oracle_epoch": max(by_epoch.values(), key=lambda e: e["test_acc_avg"])["epoch"],
        "epochs": summary.get("epochs_done"),
        "mem_noisy": mem.get("noisy_predicted_as_noisy_label"),
        "mem_clean": mem.get("noisy_predicted_as_clean_label"),
        "clean_fit": mem.get("clean_predicted_as_label"),
        "changed": changed,
    }


def fmt(values, scale=100.0, digits=1):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    m = statistics.mean(values) * scale
    if len(values) == 1:
        return "%.*f" % (digits, m)
    return "%.*f ± %.*f" % (digits, m, digits, statistics.stdev(values) * scale)


def main(root):
    runs = {}
    seeds = set()
    for d in sorted(glob.glob(os.path.join(root, "*"))):
        m = NAME.match(os.path.basename(d))
        if not m or not os.path.isfile(os.path.join(d, "summary.json")):
            continue
        key = (m["kind"], m["rate"])
        runs.setdefault(key, {}).setdefault(m["model"], []).append(load(d))
        seeds.add(int(m["seed"]))
    if not runs:
        sys.exit("no finished runs under %s" % root)
    models = []
    for per in runs.values():
        for model in per:
            if model not in models:
                models.append(model)
    models.sort(key=lambda s: (len(s), s))
    order = sorted(runs, key=lambda k: (k[0] != "symmetric", float(k[1])))
    print("Seeds: %s. Clean test accuracy, %%: last epoch / epoch chosen on the clean validation split"
          " / best epoch on the test set (oracle).\n" % ", ".join(map(str, sorted(seeds))))
    print("| noise | labels changed | " + " | ".join("%s: last / val-chosen / oracle" % m for m in models) + " |")
    print("|---|---:|" + "---:|" * len(models))
    for key in order:
        per = runs[key]
        changed = [r["changed"] for rs in per.values() for r in rs]
        cells = []
        for m in models:
            rs = per.get(m, [])
            cells.append("%s / %s / %s (n=%d)" % (fmt([r["last"] for r in rs]), fmt([r["selected"] for r in rs]),
                                                  fmt([r["oracle"] for r in rs]), len(rs)) if rs else "–")
        print("| %s %s | %.1f %% | %s |" % (key[0], key[1], 100 * statistics.mean(changed), " | ".join(cells)))
    print()
    print("End-of-run memorisation (eval mode, whole noisy training set), %: noisy-label examples predicted"
          " as their noisy label / as their clean label; clean examples predicted as their label.\n")
    print("| noise | " + " | ".join("%s: noisy→noisy / noisy→clean / clean" % m for m in models) + " |")
    print("|---|" + "---:|" * len(models))
    for key in order:
        per = runs[key]
        cells = []
        for m in models:
            rs = per.get(m, [])
            cells.append("%s / %s / %s" % (fmt([r["mem_noisy"] for r in rs]), fmt([r["mem_clean"] for r in rs]),
                                           fmt([r["clean_fit"] for r in rs])) if rs else "–")
        print("| %s %s | %s |" % (key[0], key[1], " | ".join(cells)))
    print()
    print("Oracle epoch / val-chosen epoch (seed by seed):\n")
    for key in order:
        per = runs[key]
        print("- %s %s: " % key + "; ".join(
            "%s %s" % (m, " ".join("%s/%s" % (r["oracle_epoch"], r["selected_epoch"]) for r in per.get(m, [])))
            for m in models))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
