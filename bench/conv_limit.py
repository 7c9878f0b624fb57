#!/usr/bin/python3
"""conv_limit.py — how far the convolutional workloads' ratio against PyTorch can go.

ibnet and Debian's PyTorch run their convolutions through the same library (oneDNN 2.6.3,
the same JIT kernels for this CPU).  This driver measures, in one run and alternating,
for each convolutional workload and thread count:
  - each side's training step (bench_train_step and bench/torch_step.py, median of windows);
  - with ONEDNN_VERBOSE=1, each side's time per step inside oneDNN's convolution primitives
    (forward, backward-data, backward-weights) and inside its reorders (layout changes of
    activations, gradients and weights), summed from the primitives' own execution times.
The limit of a ratio is PyTorch's step over ibnet's convolution primitives alone: what
ibnet would reach if everything else in its step (reorders, batch norm, ReLU, the VIB
cells, the optimizer) took no time at all.

    /usr/bin/python3 bench/conv_limit.py --json bench/conv-limit.json

Every thread variable of both sides is set to the thread count (bench/machine_load.py);
ibnet runs with its own wait policy, PyTorch with the better of OMP_WAIT_POLICY=ACTIVE and
PASSIVE (as vs_pytorch.py's "PyTorch best").  The run is refused when other work keeps the cores
busy (--allow-loaded keeps it, marked).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine_load  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, env_extra, verbose):
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    env.update(env_extra)
    if verbose:
        env["ONEDNN_VERBOSE"] = "1"
    else:
        env.pop("ONEDNN_VERBOSE", None)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    summary, prims = None, {"conv": 0.0, "reorder": 0.0, "other": 0.0}
    for line in out.splitlines():
        if line.startswith("{"):
            summary = json.loads(line)
        elif line.startswith("onednn_verbose,exec,"):
            f = line.split(",")
            kind = "conv" if f[3] == "convolution" else "reorder" if f[3] == "reorder" else "other"
            prims[kind] += float(f[-1])
    if summary is None:
        raise RuntimeError("no JSON from %s" % " ".join(cmd))
    return summary, prims


def measure(side, build, workload, threads, seconds):
    env = machine_load.thread_env(threads)
    if side == "ibnet":
        base = [os.path.join(build, "bench_train_step"), "--workload", workload, "--mode", "train",
                "--threads", str(threads)]
        timed = base + ["--seconds", str(seconds), "--windows", "5", "--warmup", "2"]
        traced = base + ["--steps", "8", "--warmup", "2"]
    else:
        base = ["/usr/bin/python3", os.path.join(HERE, "torch_step.py"), "--workload", workload, "--mode", "train",
                "--threads", str(threads)]
        timed = base + ["--seconds", str(seconds), "--windows", "5", "--warmup", "2"]
        traced = base + ["--seconds", "3", "--windows", "1", "--warmup", "0.5"]
    start = machine_load.busy_seconds()
    if side == "ibnet":  # its own wait policy (IBNET_WAIT=auto), as a user runs it
        summary, _ = run(timed, env, False)
        policy = "ibnet default"
    else:  # PyTorch's better of libgomp's two wait policies, as bench/vs_pytorch.py takes it
        best = None
        for policy_try in ("ACTIVE", "PASSIVE"):
            got, _ = run(timed, dict(env, OMP_WAIT_POLICY=policy_try), False)
            if best is None or got["samples_per_s"] > best[0]["samples_per_s"]:
                best = (got, policy_try)
        summary, policy = best
        env = dict(env, OMP_WAIT_POLICY=policy)
    busy = machine_load.busy_seconds()
    tsum, prims = run(traced, env, True)
    steps = max(1, int(tsum["steps"]))
    batch = summary["batch"]
    windows = summary.get("windows") or [summary["samples_per_s"]]
    return {
        "samples_per_s": summary["samples_per_s"],
        "windows": windows,
        "step_ms": 1000.0 * batch / summary["samples_per_s"],
        "step_ms_range": [1000.0 * batch / max(windows), 1000.0 * batch / min(windows)],
        "conv_ms": prims["conv"] / steps,
        "reorder_ms": prims["reorder"] / steps,
        "other_onednn_ms": prims["other"] / steps,
        "traced_steps": steps,
        "wait_policy": policy,
        "busy_cpu_s": None if start is None or busy is None else round(busy - start, 2),
        "run_s": summary.get("run_s"),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--workloads", default="lenet,lenet-vibcells,resnet20,resnet20-vibcells")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--json", default="")
    ap.add_argument("--allow-loaded", action="store_true")
    a = ap.parse_args()

    busy = machine_load.busy_now()
    loaded = busy is not None and busy > machine_load.LOAD_LIMIT_PER_CORE * os.cpu_count()
    if loaded and not a.allow_loaded:
        sys.exit("conv_limit: other work keeps %.2f cores busy; rerun on an idle machine (or --allow-loaded)" % busy)
    rows = []
    for w in a.workloads.split(","):
        for th in (int(t) for t in a.threads.split(",")):
            r = {"workload": w, "threads": th}
            for side in ("ibnet", "pytorch"):
                r[side] = measure(side, a.build, w, th, a.seconds)
            i, p = r["ibnet"], r["pytorch"]
            r["ratio"] = p["step_ms"] / i["step_ms"]
            r["ratio_limit"] = p["step_ms"] / i["conv_ms"] if i["conv_ms"] > 0 else None
            rows.append(r)
            print("%-18s %d thr: ibnet %.1f ms (conv %.1f, reorders %.1f) | PyTorch %.1f ms (conv %.1f, reorders %.1f)"
                  " | ratio %.2f, limit %.2f" % (w, th, i["step_ms"], i["conv_ms"], i["reorder_ms"], p["step_ms"],
                                                 p["conv_ms"], p["reorder_ms"], r["ratio"], r["ratio_limit"] or 0),
                  flush=True)
    print()
    print("| workload | threads | ibnet step ms | ibnet conv primitives ms | ibnet reorders ms | PyTorch step ms "
          "| PyTorch conv primitives ms | PyTorch reorders ms | ratio | limit of the ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        i, p = r["ibnet"], r["pytorch"]
        print("| %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f |" % (
            r["workload"], r["threads"], i["step_ms"], i["conv_ms"], i["reorder_ms"], p["step_ms"], p["conv_ms"],
            p["reorder_ms"], r["ratio"], r["ratio_limit"] or 0))
    if a.json:
        doc = {"loaded_at_start": loaded, "busy_cores_at_start": busy, "rows": rows,
               "median_ratio": statistics.median(r["ratio"] for r in rows)}
        tmp = a.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(doc, fh, indent=1)
        os.replace(tmp, a.json)


if __name__ == "__main__":
    main()
