#!/usr/bin/env bash
# Robustness of the VUB comparison's networks (docs/results.md, "VUB on
# MNIST"): FGSM at eps 0.1, 0.2, 0.3 on the first LIMIT test images for every
# run of vub_mnist.sh (and the heads of vub_head_mnist.sh) of seed SEED
# that has finished, and PGD-40 on the first PGD_LIMIT images for the
# beta = 1e-3 ones (whole networks and heads).  Stochastic networks are attacked through their
# S-sample average (EOT) and their mean path and judged on the S-sample
# prediction (docs/attacks.md).  Rerunnable: finished attacks are kept.
#   SEED=1 bash scripts/experiments/attack_vub_mnist.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
EPOCHS=${EPOCHS:-3}
SEED=${SEED:-1}
THREADS=${THREADS:-1}
LIMIT=${LIMIT:-1000}
PGD_LIMIT=${PGD_LIMIT:-200}
IBNET=${IBNET:-build/ibnet}
root=${ROOT:-runs/vub-mnist-e$EPOCHS}
attack() { # run, kind, limit, extra...
  local run=$1 kind=$2 limit=$3; shift 3
  local out="$run-$kind.json"
  [ -s "$out" ] && return 0
  /usr/bin/time -f "%e s wall" -o "$run-$kind.time" \
    "$IBNET" attack "$run/last.safetensors" --attack "$kind" "$@" --eps 0.1,0.2,0.3 --limit "$limit" \
    --seed "$SEED" --threads "$THREADS" --json > "$out.tmp"
  mv "$out.tmp" "$out"
}
for run in "$root"/*-s"$SEED"; do
  [ -s "$run/summary.json" ] && grep -q "\"epochs_done\":[[:space:]]*$EPOCHS\b" "$run/summary.json" || continue
  attack "$run" fgsm "$LIMIT"
done
for run in "$root"/mlp-s"$SEED" "$root"/vib-b1e-3-s"$SEED" "$root"/vub-b1e-3-s"$SEED" \
           "$root"/head-vib-b1e-3-s"$SEED" "$root"/head-vub-b1e-3-s"$SEED"; do
  [ -s "$run/summary.json" ] || continue
  attack "$run" pgd "$PGD_LIMIT" --steps 40
done
