"""Collect a decoder_snapshots_mnist.sh run into docs/runs/NAME/: the
training run's config.json, metrics.jsonl and summary.json under MODEL/
(the run's model: lenet/, resnet8-mnist/),
and under decoder/ one metrics.jsonl line per snapshot epoch (I(X;T) of
each layer in nats, the NLLs, the wall and CPU time of its ibnet info
call), the decoder settings as config.json and the curve as summary.json.

Run: python3 scripts/experiments/collect_decoder_snapshots.py RUN docs/runs/NAME
"""
import json
import os
import re
import shutil
import sys

run, out = sys.argv[1], sys.argv[2]
model = json.load(open(os.path.join(run, "config.json")))["model"]
os.makedirs(os.path.join(out, model), exist_ok=True)
os.makedirs(os.path.join(out, "decoder"), exist_ok=True)
for f in ("config.json", "metrics.jsonl", "summary.json"):
    shutil.copy(os.path.join(run, f), os.path.join(out, model, f))
epochs = sorted(int(m.group(1)) for f in os.listdir(run) if (m := re.fullmatch(r"info-e(\d+)\.jsonl", f)))
lines, settings = [], None
for e in epochs:
    row = {"epoch": e}
    for line in open(os.path.join(run, "info-e%d.jsonl" % e)):
        r = json.loads(line)
        settings = {k: r[k] for k in ("estimator", "n", "n_train", "seed", "steps", "batch", "channels", "layers", "pixels")}
        row["ixt_nats_" + r["layer"]] = r["nats"]
        row["h_x_given_t_nats_" + r["layer"]] = r["h_x_given_t_nats"]
        row["h_x_nats"] = r["h_x_nats"]
    t = open(os.path.join(run, "info-e%d.time" % e)).read().split()
    row["wall_s"], row["user_cpu_s"] = float(t[0]), float(t[3])
    lines.append(row)
with open(os.path.join(out, "decoder", "metrics.jsonl"), "w") as f:
    for row in lines:
        f.write(json.dumps(row) + "\n")
layers = ",".join(k[9:] for k in lines[0] if k.startswith("ixt_nats_"))
settings["command"] = ("bash scripts/experiments/decoder_snapshots_mnist.sh (ibnet info epoch-N.safetensors --layers %s "
                       "--estimator %s --steps %d --limit 1000 --seed 1 --threads 1 --json)"
                       % (layers, settings["estimator"], settings["steps"]))
settings["dataset"] = "mnist test split, first 1000 images binarised at 128; 500 train the decoders, 500 held out (seed 1)"
json.dump(settings, open(os.path.join(out, "decoder", "config.json"), "w"), indent=1)
summary = {"epochs": epochs, "kind": "estimate",
           "ixt_nats": {k[9:]: [r[k] for r in lines] for k in lines[0] if k.startswith("ixt_nats_")},
           "h_x_nats": lines[0]["h_x_nats"], "user_cpu_s_total": sum(r["user_cpu_s"] for r in lines)}
json.dump(summary, open(os.path.join(out, "decoder", "summary.json"), "w"), indent=1)
print(json.dumps(summary))
