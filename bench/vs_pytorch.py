#!/usr/bin/python3
"""vs_pytorch.py — issue 8's side-by-side benchmark, one command:

    /usr/bin/python3 bench/vs_pytorch.py [--build build] [--quick] [--json out.json]

For every workload (vib-mlp, mlp, lenet, lenet-vibcells, resnet20,
resnet20-vibcells) and mode (train, infer) it runs, alternating,
    ibnet 1 thread, PyTorch 1 thread, ibnet 2 threads, PyTorch 2 threads,
    ibnet and PyTorch 2 threads with OMP_WAIT_POLICY=PASSIVE
each in its own process (bench_train_step / torch_step.py: warm-up, then
timed windows, median), and prints samples/s, peak RSS, GFLOP/s and the
ratios ibnet (2 threads, default wait policy) / PyTorch's best configuration.
Every child gets OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS
equal to its thread count (torch.set_num_threads does not reach the system
BLAS); the JSON records torch.__config__.show(), the BLAS each PyTorch
child mapped, every window (min-max beside the medians), and whether the
load average stayed low enough for the figures to be valid.  Then start-up
time (`ibnet --version` against `python3 -c "import torch"`) and the
machine's FP32 ceiling (bench_peak: AVX2 FMA loop and OpenBLAS sgemm).

--quick: a one-minute smoke run (2 threads only, short windows).
--threads 1: only that thread count (a comparison that a loaded machine
disturbs least; the 2-thread figures need an idle machine).
--blas pthread: run ibnet against OpenBLAS's pthread build instead of the
OpenMP one it links (LD_LIBRARY_PATH; for issue 2 item 7).
--markdown: also print the table as Markdown (for bench/README.md).
Only the standard library is needed here; PyTorch runs in the children.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from machine_load import (FOREIGN_LIMIT_CORES, LOAD_LIMIT_PER_CORE, THREAD_VARS, busy_now, busy_seconds,
                          children_seconds, thread_env)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = "/usr/bin/python3"
WORKLOADS = ["vib-mlp", "mlp", "lenet", "lenet-vibcells", "resnet20", "resnet20-vibcells"]
PTHREAD_BLAS = "/usr/lib/x86_64-linux-gnu/openblas-pthread"


def find_build(arg):
    cands = [arg] if arg else ["build", "build-perf", "build-release"]
    for c in cands:
        d = c if os.path.isabs(c) else os.path.join(ROOT, c)
        if os.path.exists(os.path.join(d, "bench_train_step")):
            return d
    sys.exit("vs_pytorch: no bench_train_step in %s; build first: cmake -S . -B build && "
             "cmake --build build -j2" % ", ".join(cands))


def run_json(cmd, env_extra=None, timeout=600):
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("IBNET_THREADS", None)
    for k in THREAD_VARS:
        env.pop(k, None)
    if env_extra:
        env.update(env_extra)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if p.returncode != 0:
        return {"error": (p.stderr or p.stdout).strip()[-400:]}
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": "no JSON line in output"}


def timing_args(wl, quick):
    if quick:
        return ["--seconds", "0.4", "--warmup", "0.1", "--windows", "2"]
    if wl.startswith("resnet"):
        return ["--seconds", "5", "--warmup", "1.5", "--windows", "5"]
    return ["--seconds", "3", "--warmup", "1", "--windows", "5"]


def startup(cmd, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def fmt(x, nd=0):
    return "-" if x is None else ("%.*f" % (nd, x))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=None, help="build directory holding bench_train_step (default: build)")
    ap.add_argument("--quick", action="store_true", help="one-minute smoke run")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--modes", default="train,infer")
    ap.add_argument("--threads", default=None, help="thread counts to run, e.g. 1 (default 1,2; --quick: 2)")
    ap.add_argument("--blas", choices=("openmp", "pthread"), default="openmp")
    ap.add_argument("--json", default=None, help="write every raw result here")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--allow-loaded", action="store_true",
                    help="run on a busy machine anyway; the JSON and the table are marked invalid")
    a = ap.parse_args()

    build = find_build(a.build)
    exe = os.path.join(build, "bench_train_step")
    ib_env = {"LD_LIBRARY_PATH": PTHREAD_BLAS} if a.blas == "pthread" else {}
    wls = [w for w in a.workloads.split(",") if w]
    modes = [m for m in a.modes.split(",") if m]
    threads = [int(t) for t in (a.threads or ("2" if a.quick else "1,2")).split(",")]
    configs = []
    for th in threads:
        configs += [("ibnet", th, None), ("pytorch", th, None)]
        if th > 1 and not a.quick:
            configs += [("ibnet", th, "PASSIVE"), ("pytorch", th, "PASSIVE")]
    load0 = os.getloadavg()[0]
    limit = LOAD_LIMIT_PER_CORE * os.cpu_count()
    busy0 = busy_now()
    if (busy0 if busy0 is not None else load0) > limit and not a.allow_loaded:
        sys.exit("vs_pytorch: %.2f cores are busy (load average %.2f), above %.2f: the timings would measure that "
                 "(wait, or pass --allow-loaded to keep a run marked invalid)" %
                 (busy0 if busy0 is not None else load0, load0, limit))
    torch_cfg = subprocess.run([PY, "-c", "import torch; print(torch.__version__); print(torch.__config__.show())"],
                               capture_output=True, text=True).stdout
    t_start = time.time()
    results = []
    print("ibnet vs PyTorch, %s, %d cores, load average %.2f at start%s" %
          (cpu_name(), os.cpu_count(), load0, " (quick)" if a.quick else ""), flush=True)
    for wl in wls:
        for mode in modes:
            for impl, th, policy in configs:
                targs = ["--workload", wl, "--mode", mode, "--threads", str(th)] + timing_args(wl, a.quick)
                env = dict(thread_env(th), **({"OMP_WAIT_POLICY": policy} if policy else {}))
                load_before = os.getloadavg()[0]
                b0, c0, t0 = busy_seconds(), children_seconds(), time.perf_counter()
                if impl == "ibnet":
                    r = run_json([exe] + targs, dict(ib_env, **env))
                else:
                    r = run_json([PY, os.path.join(HERE, "torch_step.py")] + targs, env)
                b1, c1, t1 = busy_seconds(), children_seconds(), time.perf_counter()
                foreign = None if b0 is None else max(0.0, ((b1 - b0) - (c1 - c0)) / (t1 - t0))
                r.update({"impl": impl, "workload": wl, "mode": mode, "threads": th, "policy": policy or "default",
                          "env": env, "load_before": load_before, "foreign_cores": foreign})
                if r.get("windows"):
                    r["min"], r["max"] = min(r["windows"]), max(r["windows"])
                results.append(r)
                print("  %-18s %-5s %-7s %d thr %-8s %9s samples/s (%s-%s)  rss %7s MiB%s" %
                      (wl, mode, impl, th, policy or "", fmt(r.get("samples_per_s"), 1), fmt(r.get("min")),
                       fmt(r.get("max")), fmt(r.get("peak_rss_mib"), 0),
                       "  ERROR " + r["error"] if "error" in r else ""), flush=True)

    # start-up and machine ceiling
    ibnet_cli = os.path.join(build, "ibnet")
    st_ib = startup([ibnet_cli, "--version"], 5 if a.quick else 20) if os.path.exists(ibnet_cli) else None
    st_pt = startup([PY, "-c", "import torch"], 1 if a.quick else 3)
    peak = {}
    peak_exe = os.path.join(build, "bench_peak")
    if os.path.exists(peak_exe):
        p = subprocess.run([peak_exe, "0.3" if a.quick else "1"], capture_output=True, text=True)
        for line in p.stdout.splitlines():
            d = json.loads(line)
            peak[(d["figure"], d["threads"])] = d["gflops"]
    # Where each training step's time goes (1 thread, ibnet's --profile): the
    # GEMM/conv ops are the limit the rest of the step is measured against.
    profiles = {}
    if "train" in modes:
        for wl in wls:
            r = run_json([exe, "--workload", wl, "--mode", "train", "--threads", "1", "--profile"] +
                         timing_args(wl, True), dict(ib_env, **thread_env(1)))
            if r.get("profile"):
                profiles[wl] = r["profile"]
    load1 = os.getloadavg()[0]

    def get(wl, mode, impl, th, policy="default"):
        for r in results:
            if (r["workload"], r["mode"], r["impl"], r["threads"], r["policy"]) == (wl, mode, impl, th, policy):
                return r if "error" not in r else None
        return None

    rows = []
    for wl in wls:
        for mode in modes:
            ib1, ib2 = get(wl, mode, "ibnet", 1), get(wl, mode, "ibnet", 2)
            ib2p = get(wl, mode, "ibnet", 2, "PASSIVE")
            pts = [r for r in (get(wl, mode, "pytorch", 1), get(wl, mode, "pytorch", 2),
                               get(wl, mode, "pytorch", 2, "PASSIVE")) if r]
            best = max(pts, key=lambda r: r["samples_per_s"]) if pts else None
            ibbest = ib2 or ib1
            ratio = ibbest["samples_per_s"] / best["samples_per_s"] if ibbest and best else None
            rss_ratio = ibbest["peak_rss_mib"] / best["peak_rss_mib"] if ibbest and best else None
            scaling = ib2["samples_per_s"] / ib1["samples_per_s"] if ib1 and ib2 else None
            rows.append({
                "workload": wl, "mode": mode,
                "ibnet_1t": ib1 and ib1["samples_per_s"], "ibnet_2t": ib2 and ib2["samples_per_s"],
                "ibnet_2t_passive": ib2p and ib2p["samples_per_s"],
                "pytorch": {"%s%s" % (r["threads"], "p" if r["policy"] == "PASSIVE" else ""): r["samples_per_s"]
                            for r in pts},
                "pytorch_best": best and best["samples_per_s"],
                "pytorch_best_range": best and [best.get("min"), best.get("max")],
                "ibnet_range": ibbest and [ibbest.get("min"), ibbest.get("max")],
                "ratio_range": ibbest and best and ibbest.get("min") and best.get("max") and
                [ibbest["min"] / best["max"], ibbest["max"] / best["min"]],
                "pytorch_best_cfg": best and ("%d thr%s" % (best["threads"],
                                                            " passive" if best["policy"] == "PASSIVE" else "")),
                "ratio": ratio, "scaling": scaling,
                "ibnet_rss": ibbest and ibbest["peak_rss_mib"], "pytorch_rss": best and best["peak_rss_mib"],
                "rss_ratio": rss_ratio, "ibnet_gflops": ibbest and ibbest.get("gflops"),
            })

    hdr = ("workload", "mode", "ibnet 1t", "ibnet 2t", "2t pass.", "PyTorch best", "(config)", "ratio", "2t/1t",
           "RSS ibnet", "RSS torch", "GFLOP/s")
    print()
    print("%-18s %-5s %9s %9s %9s %12s %-12s %6s %6s %9s %9s %8s" % hdr)
    for r in rows:
        print("%-18s %-5s %9s %9s %9s %12s %-12s %6s %6s %9s %9s %8s" % (
            r["workload"], r["mode"], fmt(r["ibnet_1t"]), fmt(r["ibnet_2t"]), fmt(r["ibnet_2t_passive"]),
            fmt(r["pytorch_best"]),
            r["pytorch_best_cfg"] or "-", fmt(r["ratio"], 2), fmt(r["scaling"], 2), fmt(r["ibnet_rss"]),
            fmt(r["pytorch_rss"]), fmt(r["ibnet_gflops"], 1)))
    print()
    print("start-up: ibnet --version %s ms, python3 -c 'import torch' %s ms" %
          (fmt(st_ib and st_ib * 1e3, 1), fmt(st_pt * 1e3, 0)))
    if peak:
        print("FP32 ceiling: AVX2 FMA loop %s / %s GFLOP/s (1 / 2 threads), OpenBLAS sgemm 1536^3 %s / %s GFLOP/s" %
              (peak.get(("fma_avx2", 1)), peak.get(("fma_avx2", 2)), peak.get(("sgemm_1536", 1)),
               peak.get(("sgemm_1536", 2))))
    peak_load = max([load0, load1] + [r.get("load_before", 0) for r in results])
    foreign = [r["foreign_cores"] for r in results if r.get("foreign_cores") is not None]
    peak_foreign = max(foreign) if foreign else None
    # Valid: idle at the start, and no measurement shared the cores with other
    # work (the load average during the run counts the benchmark's own children).
    valid = (busy0 if busy0 is not None else load0) <= limit and (peak_foreign is None or
                                                                    peak_foreign <= FOREIGN_LIMIT_CORES)
    print("load average %.2f at start, %.2f at end (the benchmark's own children included); other work "
          "during a measurement at most %s cores; %.0f s in all%s" %
          (load0, load1, fmt(peak_foreign, 2), time.time() - t_start,
           "" if valid else "  -- LOADED MACHINE: wall-clock figures are not valid"))
    print("ratio ranges (ibnet's slowest window / PyTorch's fastest .. fastest / slowest):")
    for r in rows:
        if r["ratio_range"]:
            print("  %-18s %-5s %.2f .. %.2f" % (r["workload"], r["mode"], r["ratio_range"][0], r["ratio_range"][1]))

    if a.markdown:
        print()
        print("| workload | mode | ibnet 1 thr | ibnet 2 thr | ibnet 2 thr passive | PyTorch best (config) | ratio "
              "| ibnet 2t/1t | peak RSS ibnet / PyTorch (MiB) | ibnet GFLOP/s |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print("| %s | %s | %s | %s | %s | %s (%s) | %s | %s | %s / %s | %s |" % (
                r["workload"], r["mode"], fmt(r["ibnet_1t"]), fmt(r["ibnet_2t"]), fmt(r["ibnet_2t_passive"]),
                fmt(r["pytorch_best"]),
                r["pytorch_best_cfg"] or "-", fmt(r["ratio"], 2), fmt(r["scaling"], 2), fmt(r["ibnet_rss"]),
                fmt(r["pytorch_rss"]), fmt(r["ibnet_gflops"], 1)))
    if profiles:
        print("\nwhere a training step's time goes (ibnet, 1 thread, --profile; ms per step and share):")
        print("| workload | step ms | GEMM/conv ops (the limit) | VIB ops | optimizer | zeroing | other ops |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for wl, pr in profiles.items():
            step = pr["step_ms"]
            heavy = sum(sum(v) for k, v in pr["ops"].items() if k in ("linear", "conv2d", "conv", "matmul"))
            vib = pr["vib_share"] * step
            zero = pr["zero_params_ms"] + pr["zero_acts_ms"]
            other = step - heavy - vib - pr["optim_ms"] - zero
            print("| %s | %.2f | %.2f (%.0f %%) | %.2f (%.0f %%) | %.2f (%.0f %%) | %.2f (%.0f %%) | %.2f (%.0f %%) |" %
                  (wl, step, heavy, 100 * heavy / step, vib, 100 * vib / step, pr["optim_ms"],
                   100 * pr["optim_ms"] / step, zero, 100 * zero / step, other, 100 * other / step))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_name(),
                       "cores": os.cpu_count(), "load_start": load0, "busy_start_cores": busy0, "load_end": load1, "quick": a.quick,
                       "valid": valid, "load_limit": limit, "load_peak": peak_load,
                       "foreign_limit_cores": FOREIGN_LIMIT_CORES, "foreign_peak_cores": peak_foreign,
                       "thread_vars": list(THREAD_VARS), "torch_config": torch_cfg,
                       "blas": a.blas, "startup_ibnet_s": st_ib, "startup_torch_s": st_pt,
                       "peak": {"%s_%dt" % k: v for k, v in peak.items()}, "rows": rows, "raw": results,
                       "profiles": profiles}, f,
                      indent=1)


if __name__ == "__main__":
    main()
