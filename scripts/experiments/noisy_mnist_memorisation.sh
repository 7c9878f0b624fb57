#!/usr/bin/env bash
# Memorisation of noisy labels on MNIST (docs/results.md, "Memorisation at
# the end of a run"): lenet and lenet-vibcells with the cellvib-mnist
# recipe and RATE symmetric label noise, short budget (EPOCHS epochs on the
# first TRAIN_LIMIT images, VAL of them held out clean before the noise),
# reading the end-of-run memorisation of summary.json.  Rerunnable.
#   EPOCHS=2 TRAIN_LIMIT=10000 RATE=0.6 bash scripts/experiments/noisy_mnist_memorisation.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
EPOCHS=${EPOCHS:-2}
TRAIN_LIMIT=${TRAIN_LIMIT:-10000}
RATE=${RATE:-0.6}
VAL=${VAL:-1000}
SEEDS=${SEEDS:-1}
THREADS=${THREADS:-1}
IBNET=${IBNET:-build/ibnet}
root=${ROOT:-runs/noisy-mnist-e$EPOCHS-n$TRAIN_LIMIT-r$RATE}
mkdir -p "$root"
for seed in $SEEDS; do
  for model in lenet lenet-vibcells; do
    run="$root/$model-s$seed"
    [ -s "$run/summary.json" ] && continue
    rm -rf "$run"
    /usr/bin/time -f "%e s wall" -o "$run.train_time" \
      "$IBNET" train --recipe cellvib-mnist --model "$model" --epochs "$EPOCHS" --train-limit "$TRAIN_LIMIT" \
      --val-size "$VAL" --label-noise "$RATE" --noise-kind symmetric --threads "$THREADS" --seed "$seed" \
      --out "$run" > "$run.log" 2>&1
  done
done
for f in "$root"/*/summary.json; do
  python3 - "$f" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
m = o.get("memorisation", {})
print("%s: test %.2f%% (last epoch), best epoch %d on %s %.2f%%; noisy->noisy %.3f noisy->clean %.3f clean %.3f" % (
    sys.argv[1], 100 * o["test_acc_avg"], o["best_epoch"], o["best_selected_on"], 100 * o["best_accuracy"],
    m.get("noisy_predicted_as_noisy_label", -1), m.get("noisy_predicted_as_clean_label", -1),
    m.get("clean_predicted_as_label", -1)))
PY
done
