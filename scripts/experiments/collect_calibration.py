#!/usr/bin/env python3
"""Calibration table (Markdown) from `ibnet robustness` reports: for each report, on the
clean images and averaged over the corruptions at severities 3 and 5, the averaged
prediction's ECE (15 bins), NLL (nats), Brier score and mean predictive entropy (nats),
and the mean path's ECE beside them for stochastic networks.

    python3 scripts/experiments/collect_calibration.py LABEL=DIR/robustness.json ...
"""
import json
import sys


def mean(cells, key, severity):
    v = [c[key] for c in cells if c["severity"] == severity and c.get(key) is not None]
    return sum(v) / len(v) if v else None


def f(v, digits):
    return "–" if v is None else "%.*f" % (digits, v)


def main(args):
    print("| model | ECE clean | ECE s3 | ECE s5 | NLL clean | NLL s3 | NLL s5 | Brier clean | Brier s3 | Brier s5 "
          "| entropy clean | entropy s3 | entropy s5 | mean path ECE clean / s3 / s5 |")
    print("|---|" + "---:|" * 13)
    for arg in args:
        label, _, path = arg.partition("=")
        with open(path) as fh:
            o = json.load(fh)
        cells = [c for c in o["cells"] if c["model"] == "model"]
        row = [label]
        for key, digits in (("ece", 3), ("nll_avg", 3), ("brier", 3), ("entropy", 3)):
            row += [f(mean(cells, key, s), digits) for s in (0, 3, 5)]
        mp = [f(mean(cells, "ece_mean_path", s), 3) for s in (0, 3, 5)] if o.get("stochastic") else ["–"]
        row.append(" / ".join(mp))
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
