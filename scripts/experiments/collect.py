"""Collect the summaries of a sweep of runs into a Markdown table and,
where matplotlib is installed, a PNG plot.

    python3 scripts/experiments/collect.py runs/beta-sweep-e200 [--plot docs/img/beta_sweep.png]

Each run directory's summary.json gives the test figures of its last
epoch (EMA weights when the run used an EMA).  I(Z;X) <= KL (the rate, in
bits); I(Z;Y) >= H(Y) - E_z[-log q(y|z)] (in bits, H(Y) = log2 of the
number of classes, the test set being balanced to within a few percent).
"""
import json
import math
import os
import sys


def beta_of(run):
    cfg = json.load(open(os.path.join(run, "config.json")))
    return cfg.get("beta", float("nan")), cfg


def main():
    root = sys.argv[1]
    plot = sys.argv[sys.argv.index("--plot") + 1] if "--plot" in sys.argv else None
    rows = []
    for name in sorted(os.listdir(root)):
        run = os.path.join(root, name)
        summ = os.path.join(run, "summary.json")
        if not os.path.isfile(summ):
            continue
        s = json.load(open(summ))
        beta, cfg = beta_of(run)
        kl_bits = sum(s.get("test_kl_nats", [])) / math.log(2)
        izy = math.log2(10) - s.get("test_ce_samples", float("nan")) / math.log(2)
        rows.append((beta, name, s["epochs_done"], 100 * (1 - s["test_acc_avg"]), 100 * (1 - s["test_acc_1shot"]),
                     100 * (1 - s["test_acc_mean"]), kl_bits, izy))
    rows.sort()
    print("| beta | run | epochs | error, S-sample avg (%) | error, 1 sample (%) | error, mean path (%) "
          "| I(Z;X) upper bound (bits) | I(Z;Y) lower bound (bits) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %g | %s | %d | %.2f | %.2f | %.2f | %.1f | %.2f |" % r)
    if plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("(matplotlib is not installed: apt-get install python3-matplotlib for the plot)", file=sys.stderr)
            return
        xs = [max(r[0], 1e-10) for r in rows]
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        # Both axes logarithmic, as in the Deep VIB paper's figure: the rate
        # spans four orders of magnitude, the error two.
        l1 = ax.loglog(xs, [r[3] for r in rows], "o-", label="test error, 12-sample avg (%)")
        l1 += ax.loglog(xs, [r[4] for r in rows], "^:", color="tab:blue", alpha=0.6, label="test error, 1 sample (%)")
        ax.set_xlabel("beta (0 plotted at 1e-10)")
        ax.set_ylabel("test error (%)")
        ax2 = ax.twinx()
        l2 = ax2.loglog(xs, [r[6] for r in rows], "s--", color="tab:red", label="I(Z;X) upper bound (bits)")
        ax2.axhline(math.log2(10), color="gray", lw=0.8, ls=":")
        ax2.set_ylabel("I(Z;X) upper bound (bits); dotted: log2 10")
        ax.legend(l1 + l2, [l.get_label() for l in l1 + l2], loc="center left", fontsize=8)
        epochs = sorted({r[2] for r in rows})
        ax.set_title("Deep VIB on MNIST, beta sweep (%s epochs)" % "/".join(str(e) for e in epochs), fontsize=10)
        fig.tight_layout()
        fig.savefig(plot, dpi=120)
        print("wrote", plot, file=sys.stderr)


if __name__ == "__main__":
    main()
