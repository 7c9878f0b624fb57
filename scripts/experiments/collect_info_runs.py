#!/usr/bin/env python3
"""Tables of docs/results.md for the information runs of issue-style
results 2 and 3 (standard library only):

  collect_info_runs.py cells runs/info-cells-mnist-e4-n5000
      per epoch and layer: binning and KDE I(X;T) / I(T;Y) in bits (from
      each run's info.jsonl), the cells' rates (test_kl of metrics.jsonl, in
      bits) and the test error.
  collect_info_runs.py sweep runs/info-vib-sweep-e10-n10000
      per beta: the variational bounds (summary.json), binning at 30 bins,
      KDE at each sigma^2, InfoNCE (info-final.jsonl), in bits.
"""
import glob
import json
import math
import os
import sys

LN2 = math.log(2)


def lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def fmt(x, nd=2):
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def label_entropy(n, data="../shared/data/mnist/t10k-labels-idx1-ubyte.gz"):
    """H(Y) in nats of the first n MNIST test labels (the decoder bound's H(Y))."""
    import gzip
    with gzip.open(data) as f:
        y = f.read()[8:8 + n]
    c = [y.count(k) for k in range(10)]
    return -sum(k / n * math.log(k / n) for k in c if k)


def cells(root):
    runs = sorted(d for d in glob.glob(os.path.join(root, "*")) if os.path.isdir(d))
    by_model = {}
    for d in runs:
        name = os.path.basename(d)
        model, est = name.rsplit("-", 1)[0].rsplit("-", 1)  # MODEL-EST-sSEED
        metrics = lines(os.path.join(d, "metrics.jsonl"))
        info = lines(os.path.join(d, "info.jsonl")) if os.path.exists(os.path.join(d, "info.jsonl")) else []
        m = by_model.setdefault(model, {"metrics": metrics, "est": {}})
        m["est"][est] = {l["epoch"]: {x["layer"]: x for x in l["layers"]} for l in info}
        m.setdefault("identical", []).append([{k: v for k, v in l.items() if k not in ("seconds", "samples_per_s", "data_wait_s")} for l in metrics])
    for model, m in by_model.items():
        same = all(x == m["identical"][0] for x in m["identical"])
        note = f" (the runs' metrics.jsonl less timings identical: {same})" if len(m["identical"]) > 1 else ""
        print(f"### {model}{note}\n")
        ests = sorted(m["est"])
        layers = []
        for e in ests:
            for ep in m["est"][e].values():
                for k in ep:
                    if k not in layers:
                        layers.append(k)
        cfg = json.load(open(os.path.join(runs[0], "config.json")))
        hy = label_entropy(cfg["test_limit"] or 10000)
        head = "| epoch | test error | " + " | ".join(f"{l} {e}" for l in layers for e in ests) + " | rates (bits) | I(Z;Y) ≥ (bits) |"
        print(head)
        print("|" + "---:|" * (2 + len(layers) * len(ests) + 2))
        for met in m["metrics"]:
            ep = met["epoch"]
            row = [str(ep), f"{100 * met.get('test_error_avg', float('nan')):.1f} %"]
            for l in layers:
                for e in ests:
                    x = m["est"][e].get(ep, {}).get(l)
                    row.append(f"{fmt(x['ixt']['bits'])} / {fmt(x['ity']['bits'])}" if x else "—")
            kl = met.get("test_kl", [])
            row.append(", ".join(f"{k / LN2:.0f}" for k in kl) if kl else "—")
            row.append(fmt((hy - met["test_ce_samples"]) / LN2) if kl else "—")
            print("| " + " | ".join(row) + " |")
        print()
        for d in runs:
            f = os.path.join(d, "kde-final.jsonl")
            if os.path.basename(d).startswith(model + "-binning") and os.path.exists(f):
                rows = lines(f)
                s2s = sorted({r["sigma2"] for r in rows})
                print("| σ² | " + " | ".join(layers) + " |")
                print("|" + "---:|" * (1 + len(layers)))
                for v in s2s:
                    cell = {}
                    for r in rows:
                        if r["sigma2"] == v:
                            cell.setdefault(r["layer"], {})[r["quantity"]] = r["bits"]
                    print(f"| {v:g} | " + " | ".join(f"{fmt(cell[l]['I(X;T)'])} / {fmt(cell[l]['I(T;Y)'])}" if l in cell else "—" for l in layers) + " |")
                print()


def sweep(root):
    runs = sorted(glob.glob(os.path.join(root, "beta=*")), key=lambda d: float(d.split("=")[1]))
    print("| β | test error | rate I(X;Z) ≤ | I(Z;Y) ≥ | binning:30 μ | KDE μ, σ² = 1e-3 | 1e-2 | 1e-1 | 1 | InfoNCE (x, z) ≥ | InfoNCE (z, y) ≥ |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for d in runs:
        s = json.load(open(os.path.join(d, "summary.json")))
        beta = float(d.split("=")[1])
        rows = lines(os.path.join(d, "info-final.jsonl")) if os.path.exists(os.path.join(d, "info-final.jsonl")) else []
        def pick(est, q, **kw):
            for r in rows:
                if r["method"] == est and r["quantity"] == q and all(abs(r.get(k, -1) - v) <= 1e-6 * abs(v) for k, v in kw.items()):
                    return r
            return None
        def pair(est, **kw):
            a, b = pick(est, "I(X;T)", **kw), pick(est, "I(T;Y)", **kw)
            return f"{fmt(a['bits'] if a else None)} / {fmt(b['bits'] if b else None)}"
        nce_x, nce_y = pick("infonce", "I(X;T)"), pick("infonce", "I(T;Y)")
        row = [f"{beta:g}", f"{100 * s['test_error_avg']:.2f} %", fmt(sum(s.get("test_ixz_upper_bits", [float("nan")]))),
               fmt(s.get("test_izy_lower_bits")), pair("binning", bins=30)]
        row += [pair("kde", sigma2=v) for v in (1e-3, 1e-2, 1e-1, 1.0)]
        row += [fmt(nce_x["bits"] if nce_x else None), fmt(nce_y["bits"] if nce_y else None)]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("cells", "sweep"):
        sys.exit(__doc__)
    (cells if sys.argv[1] == "cells" else sweep)(sys.argv[2])
