#!/usr/bin/env python3
"""Table of the VUB cap sweep (scripts/experiments/vub_cap_sweep.sh).

For each run directory under ROOT (default runs/vub-sweep): lambda and
H_max from config.json, the last epoch's test accuracy (S-sample average,
1-shot, mean path z = mu) and test KL (the rate, nats), and the training
entropy term of the last epoch.  The trainer does not log the entropy yet;
with lambda > 0 it follows from the logged terms, which are epoch means of
per-step values and so add up exactly as the loss does:
    train_loss = train_ce + sum_l beta_l * train_kl_l - lambda * B,
    B = mean over the epoch's steps of min(H, H_max) (H itself uncapped).
For plain VIB (lambda = 0) the entropy is not recoverable: "-".

    python3 scripts/experiments/collect_vub.py [ROOT] [--markdown]
"""
import json
import os
import sys

ORDER = ["vib", "vub-cap-0.5", "vub-cap-1", "vub-cap-1.5", "vub-cap-ln10",
         "svib-lam-0.5", "svib-lam-1", "svib-lam-2", "svib-lam-3"]


def find(cfg, key):
    """A key anywhere in the (possibly nested) config."""
    if isinstance(cfg, dict):
        if key in cfg:
            return cfg[key]
        for v in cfg.values():
            r = find(v, key)
            if r is not None:
                return r
    return None


def row(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    lines = [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl")) if l.strip()]
    last = lines[-1]
    lam = float(find(cfg, "entropy_weight") or 0)
    cap = float(find(cfg, "entropy_cap") or 0)
    bonus = None
    if lam != 0:
        rate = sum(b * k for b, k in zip(last["beta"], last["train_kl"]))
        bonus = (last["train_ce"] + rate - last["train_loss"]) / lam
    wall = sum(l.get("seconds", 0) for l in lines)
    return {
        "run": os.path.basename(d), "lambda": lam, "cap": cap if cap > 0 else None,
        "epochs": last["epoch"], "avg": last["test_acc_avg"], "one": last["test_acc_1shot"],
        "mean": last["test_acc_mean"], "kl": last["test_kl"][0], "train_kl": last["train_kl"][0],
        "train_ce": last["train_ce"], "entropy": bonus, "wall": wall,
    }


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    md = "--markdown" in sys.argv
    root = args[0] if args else "runs/vub-sweep"
    names = [n for n in ORDER if os.path.isfile(os.path.join(root, n, "summary.json"))]
    names += sorted(n for n in os.listdir(root) if n not in ORDER and
                    os.path.isfile(os.path.join(root, n, "summary.json")))
    rows = [row(os.path.join(root, n)) for n in names]
    head = ["run", "lambda", "H_max", "ep", "acc avg-12", "acc 1-shot", "acc mean", "test KL", "train CE",
            "train min(H,Hmax)", "wall s"]
    out = []
    for r in rows:
        out.append([r["run"], "%g" % r["lambda"], "%.4g" % r["cap"] if r["cap"] else "none", str(r["epochs"]),
                    "%.2f" % (100 * r["avg"]), "%.2f" % (100 * r["one"]), "%.2f" % (100 * r["mean"]),
                    "%.1f" % r["kl"], "%.4f" % r["train_ce"],
                    "-" if r["entropy"] is None else "%.4f" % r["entropy"], "%.0f" % r["wall"]])
    if md:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join("---" for _ in head) + "|")
        for o in out:
            print("| " + " | ".join(o) + " |")
    else:
        w = [max(len(h), *(len(o[i]) for o in out)) if out else len(h) for i, h in enumerate(head)]
        print("  ".join(h.ljust(w[i]) for i, h in enumerate(head)))
        for o in out:
            print("  ".join(c.ljust(w[i]) for i, c in enumerate(o)))
    missing = [n for n in ORDER if n not in names]
    if missing:
        print("not finished: " + ", ".join(missing), file=sys.stderr)


if __name__ == "__main__":
    main()
