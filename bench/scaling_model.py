#!/usr/bin/env python3
"""scaling_model.py - data-parallel training beyond one machine, by calculation.

Inputs, measured (docs/scaling.md):
  * the compute time per training sample of one rank: bench_train_step at
    1 thread (samples/s of a whole step: forward, backward, optimizer);
  * the gradient bytes of one allreduce: 4 bytes per float of the buffer
    ib_params_total, which data-parallel training sums every step.
Model, for N ranks (one per machine) and a ring allreduce of M bytes:
  t_allreduce = 2 (N-1) alpha + 2 (N-1)/N * M / bandwidth + (N-1)/N * M / reduce_rate
(2 (N-1) messages in sequence, each of the M/N-byte chunks crossing the
link 2 (N-1) times, and (N-1)/N of the buffer added on every rank).
  strong scaling: global batch B fixed, each rank B/N rows:
      t_step = t_sample * B / N + t_allreduce
  weak scaling: each rank keeps the single process's B rows (global N*B):
      t_step = t_sample * B + t_allreduce
  speed-up S = N * B_rank * t_sample... written as samples/s against one
  process; efficiency E = S / N.
  overlap (not implemented in ibnet): the allreduce runs during backward,
  which is a share f of the compute (about 2/3: two products per layer
  backward, one forward), in buckets as their gradients are ready; the
  last bucket, the first layer's gradient (a share l of the buffer), is
  ready only when backward ends and cannot overlap:
      t_step = (1-f) t_c + max(f t_c, (1-l) t_ar) + l t_ar
  (a bound: it takes the rest of the buffer to stream at the link's rate
  while backward runs, and ignores that both share the memory and cores).

Usage:
  bench/scaling_model.py --measure build/bench_train_step --save bench/scaling-inputs.json
  bench/scaling_model.py --inputs bench/scaling-inputs.json          # the tables of docs/scaling.md
  bench/scaling_model.py --workload vib-mlp:1500:2380810:100         # name:samples_per_s:floats:batch
Options: --latency-us 10=25,25=10,100=2 (per-message latency per link speed,
Gb/s=us; assumptions, not measured here), --reduce-gbs 5 (GB/s of the sum
on a rank), --node-speedup K (a machine computes K times as fast as the
measured single thread, e.g. its cores), --backward-share 0.667.
Standard library only.
"""
import argparse
import json
import os
import subprocess
import sys
import time

RANKS = [1, 2, 4, 8, 16, 32, 64]
WORKLOADS = ["vib-mlp", "resnet20"]
# Share of the gradient buffer that backward produces last (the first
# layer's weights and bias), from the models: vib-mlp's fc1 784x1024 + 1024
# of 2,380,810 floats; resnet20's first conv 3x3x3x16 of 269,722.
LAST_BUCKET = {"vib-mlp": 803840 / 2380810, "resnet20": 432 / 269722}


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(v) for v in f.read().split()[:3]]
    except OSError:
        return None


def measure(bench, seconds, workloads):
    """bench_train_step at 1 thread per workload, with the load average
    before and after each measurement (a loaded machine's figures are
    provisional)."""
    out = {"measured_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "cpu": cpu_name(), "cores": os.cpu_count(), "workloads": {}}
    for w in workloads:
        before = loadavg()
        cmd = [bench, "--workload", w, "--mode", "train", "--threads", "1", "--seconds", str(seconds), "--warmup", "2"]
        r = subprocess.run(cmd, capture_output=True, text=True, check=True,
                           env=dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1"))
        j = json.loads(r.stdout.strip().splitlines()[-1])
        out["workloads"][w] = {
            "samples_per_s": j["samples_per_s"], "windows": j["windows"], "batch": j["batch"],
            # trainable parameters; the allreduced buffer also holds the
            # batch-norm running statistics (ResNet-20: about 1.4 k floats)
            "floats": j["params"], "command": " ".join(cmd),
            "loadavg_before": before, "loadavg_after": loadavg()}
        print(f"{w}: {j['samples_per_s']:.1f} samples/s at 1 thread (windows {j['windows']}), "
              f"load {before} -> {loadavg()}", file=sys.stderr)
    return out


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def allreduce_s(n, nbytes, gbps, alpha_s, reduce_gbs):
    if n == 1:
        return 0.0
    return 2 * (n - 1) * alpha_s + 2 * (n - 1) / n * nbytes / (gbps * 1e9 / 8) + (n - 1) / n * nbytes / (reduce_gbs * 1e9)


def table(name, w, args, latency):
    t_sample = 1.0 / (w["samples_per_s"] * args.node_speedup)
    nbytes = 4 * w["floats"]
    batch = w["batch"]
    f = args.backward_share
    last = w.get("last_bucket_share", LAST_BUCKET.get(name, 0.0))
    lines = [f"**{name}**: {w['samples_per_s']:.0f} samples/s per rank"
             + (f" × {args.node_speedup:g}" if args.node_speedup != 1 else "")
             + f" (t_sample {1e3 * t_sample:.3f} ms), {nbytes / 1e6:.2f} MB of gradient, batch {batch}; "
             + f"{100 * last:.1f} % of it is the last gradient of backward (not overlappable)", ""]
    for mode in ("strong", "weak"):
        lines.append(f"{'Strong scaling: global batch ' + str(batch) + ' split over N' if mode == 'strong' else 'Weak scaling: ' + str(batch) + ' rows per rank, global batch N×' + str(batch)}"
                     " — step ms (allreduce ms) efficiency; then the efficiency with the allreduce overlapped with backward")
        lines.append("")
        head = "| N |" + "".join(f" {g} Gb/s | overlap {g} |" for g in args.gbps)
        lines.append(head)
        lines.append("|---:|" + "---:|---:|" * len(args.gbps))
        for n in RANKS:
            if mode == "strong" and n > batch:
                continue
            rows = batch / n if mode == "strong" else batch
            t_c = t_sample * rows
            cells = []
            for g in args.gbps:
                t_ar = allreduce_s(n, nbytes, g, latency[g] * 1e-6, args.reduce_gbs)
                t = t_c + t_ar
                t_ov = (1 - f) * t_c + max(f * t_c, (1 - last) * t_ar) + last * t_ar
                # efficiency: samples/s of N ranks against N single processes
                e = (t_sample * rows) / t
                e_ov = (t_sample * rows) / t_ov
                cells.append(f" {1e3 * t:.2f} ({1e3 * t_ar:.2f}) {100 * e:.0f}% | {100 * e_ov:.0f}% |")
            lines.append(f"| {n} |" + "".join(cells))
        lines.append("")
    # where strong scaling stops paying: the N of the shortest step
    for g in args.gbps:
        best = min((n for n in RANKS if n <= batch),
                   key=lambda n: t_sample * batch / n + allreduce_s(n, nbytes, g, latency[g] * 1e-6, args.reduce_gbs))
        t1 = t_sample * batch
        tb = t_sample * batch / best + allreduce_s(best, nbytes, g, latency[g] * 1e-6, args.reduce_gbs)
        half = [n for n in RANKS if n <= batch and t1 / (n * (t_sample * batch / n + allreduce_s(
            n, nbytes, g, latency[g] * 1e-6, args.reduce_gbs))) >= 0.5]
        lines.append(f"- {g} Gb/s, strong scaling: fastest step at N = {best} ({t1 / tb:.1f}× one process); "
                     f"efficiency ≥ 50 % up to N = {max(half) if half else 1}")
    lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--measure", metavar="BENCH", help="run this bench_train_step (1 thread) for the inputs")
    ap.add_argument("--seconds", type=float, default=5, help="timed seconds per workload when measuring")
    ap.add_argument("--save", metavar="FILE", help="write the measured inputs as JSON")
    ap.add_argument("--inputs", metavar="FILE", help="measured inputs (JSON written by --save)")
    ap.add_argument("--workload", action="append", default=[], metavar="NAME:SAMPLES_PER_S:FLOATS:BATCH")
    ap.add_argument("--gbps", default="10,25,100")
    ap.add_argument("--latency-us", default="10=25,25=10,100=2")
    ap.add_argument("--reduce-gbs", type=float, default=5.0)
    ap.add_argument("--node-speedup", type=float, default=1.0)
    ap.add_argument("--backward-share", type=float, default=2 / 3)
    args = ap.parse_args()
    args.gbps = [int(g) for g in args.gbps.split(",")]
    latency = {int(k): float(v) for k, v in (kv.split("=") for kv in args.latency_us.split(","))}
    for g in args.gbps:
        if g not in latency:
            ap.error(f"--latency-us has no latency for {g} Gb/s")
    inputs = None
    if args.measure:
        inputs = measure(args.measure, args.seconds, WORKLOADS)
        if args.save:
            with open(args.save, "w") as f:
                json.dump(inputs, f, indent=1)
                f.write("\n")
    elif args.inputs:
        with open(args.inputs) as f:
            inputs = json.load(f)
    else:
        inputs = {"workloads": {}}
    for spec in args.workload:
        name, sps, floats, batch = spec.split(":")
        inputs["workloads"][name] = {"samples_per_s": float(sps), "floats": int(floats), "batch": int(batch)}
    if not inputs["workloads"]:
        ap.error("give --measure, --inputs or --workload")
    print(f"Ring allreduce, per-message latency (assumed) "
          + ", ".join(f"{latency[g]:g} µs at {g} Gb/s" for g in args.gbps)
          + f"; the sum on a rank at {args.reduce_gbs:g} GB/s; backward {100 * args.backward_share:.0f} % of a step.")
    if inputs.get("measured_at"):
        print(f"Inputs measured {inputs['measured_at']} on {inputs.get('cpu', '?')} ({inputs.get('cores', '?')} cores); "
              + "; ".join(f"{k}: load average {v.get('loadavg_before')} before, {v.get('loadavg_after')} after"
                          for k, v in inputs["workloads"].items()))
    print()
    for name, w in inputs["workloads"].items():
        print(table(name, w, args, latency))


if __name__ == "__main__":
    main()
