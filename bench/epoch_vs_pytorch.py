#!/usr/bin/python3
"""epoch_vs_pytorch.py — whole epochs, as users see them: `ibnet train
--recipe R --epochs 1` against the same epoch written in PyTorch
(bench/torch_epoch.py), each a whole process, alternating, side by side.

    /usr/bin/python3 bench/epoch_vs_pytorch.py                       # deep-vib and cifar-resnet, 2 threads
    /usr/bin/python3 bench/epoch_vs_pytorch.py --recipes deep-vib --reps 3 --json run.json

Every child gets OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS
equal to its thread count.  The figure is the process's wall time (start-up,
reading the data, the training epoch, the test evaluation, ibnet's
checkpoint writes; PyTorch's import); the phases are reported beside it.
ibnet's training and evaluation phases come from its metrics.jsonl (the
epoch's seconds and training samples/s).  As bench/vs_pytorch.py, it refuses
a busy machine (1-minute load above 0.25 per core at the start) unless
--allow-loaded, and it measures the other work during every run (the
machine's busy CPU time minus the child's own): a run that shared the cores
marks the result invalid.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from machine_load import (FOREIGN_LIMIT_CORES, LOAD_LIMIT_PER_CORE, busy_now, busy_seconds, children_seconds,
                          thread_env)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = "/usr/bin/python3"
def timed(cmd, threads, cwd=None):
    env = dict(os.environ)
    for k in ("OMP_WAIT_POLICY", "IBNET_THREADS"):
        env.pop(k, None)
    env.update(thread_env(threads))
    b0, c0, t0 = busy_seconds(), children_seconds(), time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    wall = time.perf_counter() - t0
    b1, c1 = busy_seconds(), children_seconds()
    foreign = max(0.0, ((b1 - b0) - (c1 - c0)) / wall)
    if p.returncode != 0:
        sys.exit("epoch_vs_pytorch: %s failed (%d): %s" % (cmd[0], p.returncode, (p.stderr or p.stdout)[-600:]))
    return p, wall, foreign, c1 - c0


def ibnet_epoch(exe, recipe, threads, data, limit):
    out = tempfile.mkdtemp(prefix="ibnet-epoch-")
    try:
        _, wall, foreign, cpu = timed([exe, "train", "--recipe", recipe, "--epochs", "1", "--threads", str(threads),
                                       "--data", data, "--out", os.path.join(out, "run")] +
                                      (["--train-limit", str(limit), "--test-limit", str(limit)] if limit else []),
                                      threads)
        with open(os.path.join(out, "run", "metrics.jsonl")) as f:
            m = json.loads(f.readline())
        with open(os.path.join(out, "run", "summary.json")) as f:
            s = json.load(f)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    samples = m["train_batches"] * (100 if recipe == "deep-vib" else 128)
    train_s = samples / m["samples_per_s"]
    acc = {k[len("test_acc_"):]: v for k, v in s.items() if k.startswith("test_acc_")}
    return {"impl": "ibnet", "wall_s": wall, "train_s": train_s, "eval_s": m["seconds"] - train_s,
            "train_samples_per_s": m["samples_per_s"], "test_acc": acc, "foreign_cores": foreign, "cpu_s": cpu}


def torch_epoch(recipe, threads, data, workers, limit):
    p, wall, foreign, cpu = timed([PY, os.path.join(HERE, "torch_epoch.py"), "--recipe", recipe, "--threads",
                                   str(threads), "--workers", str(workers), "--data", data, "--limit", str(limit)], threads)
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r.update({"wall_s": wall, "inner_wall_s": r["wall_s"], "foreign_cores": foreign, "cpu_s": cpu})
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipes", default="deep-vib,cifar-resnet")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="PyTorch DataLoader workers for cifar-resnet")
    ap.add_argument("--reps", type=int, default=2, help="runs of each side, alternating")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--data", default=os.environ.get("IBNET_DATA", os.path.join(ROOT, "..", "shared", "data")))
    ap.add_argument("--json", default=None)
    ap.add_argument("--allow-loaded", action="store_true")
    ap.add_argument("--limit", type=int, default=0, help="first N training and test images only (a smoke test)")
    a = ap.parse_args()
    exe = os.path.join(a.build, "ibnet")
    if not os.path.exists(exe):
        sys.exit("epoch_vs_pytorch: no %s; build first" % exe)
    limit = LOAD_LIMIT_PER_CORE * os.cpu_count()
    load0 = os.getloadavg()[0]
    busy0 = busy_now()
    if busy0 > limit and not a.allow_loaded:
        sys.exit("epoch_vs_pytorch: %.2f cores are busy (load average %.2f): the machine is busy (wait, or "
                 "--allow-loaded to keep a run marked invalid)" % (busy0, load0))
    runs = []
    for recipe in [r for r in a.recipes.split(",") if r]:
        for rep in range(a.reps):
            for impl in ("ibnet", "pytorch"):
                r = (ibnet_epoch(exe, recipe, a.threads, a.data, a.limit) if impl == "ibnet"
                     else torch_epoch(recipe, a.threads, a.data, a.workers, a.limit))
                r.update({"recipe": recipe, "threads": a.threads, "rep": rep})
                runs.append(r)
                print("  %-13s %-7s wall %7.1f s  train %7.1f s (%7.0f samples/s)  eval %5.1f s  cpu %6.1f s  "
                      "other work %.2f cores  acc %s" %
                      (recipe, impl, r["wall_s"], r["train_s"], r["train_samples_per_s"], r["eval_s"], r["cpu_s"],
                       r["foreign_cores"], json.dumps(r["test_acc"])), flush=True)
    peak_foreign = max(r["foreign_cores"] for r in runs)
    valid = busy0 <= limit and peak_foreign <= FOREIGN_LIMIT_CORES
    rows = []
    print("\n| recipe (1 epoch, %d threads) | ibnet wall s | PyTorch wall s | ratio | ibnet train samples/s | "
          "PyTorch train samples/s | ibnet eval s | PyTorch eval s |" % a.threads)
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for recipe in [r for r in a.recipes.split(",") if r]:
        med = {}
        for impl in ("ibnet", "pytorch"):
            rs = [r for r in runs if r["recipe"] == recipe and r["impl"] == impl]
            med[impl] = {k: statistics.median(r[k] for r in rs) for k in ("wall_s", "train_s", "eval_s",
                                                                         "train_samples_per_s")}
        row = {"recipe": recipe, "ibnet": med["ibnet"], "pytorch": med["pytorch"],
               "ratio": med["pytorch"]["wall_s"] / med["ibnet"]["wall_s"]}
        rows.append(row)
        print("| %s | %.1f | %.1f | %.2f | %.0f | %.0f | %.1f | %.1f |" %
              (recipe, med["ibnet"]["wall_s"], med["pytorch"]["wall_s"], row["ratio"],
               med["ibnet"]["train_samples_per_s"], med["pytorch"]["train_samples_per_s"],
               med["ibnet"]["eval_s"], med["pytorch"]["eval_s"]))
    print("\n%.2f cores busy at start (load average %.2f); other work during a run at most %.2f cores%s" %
          (busy0, load0, peak_foreign, "" if valid else "  -- LOADED MACHINE: wall-clock figures are not valid"))
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%d %H:%M:%S"), "cores": os.cpu_count(), "load_start": load0, "busy_start_cores": busy0,
                       "foreign_peak_cores": peak_foreign, "valid": valid, "threads": a.threads,
                       "workers": a.workers, "rows": rows, "runs": runs}, f, indent=1)
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
