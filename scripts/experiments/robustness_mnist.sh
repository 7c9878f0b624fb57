#!/usr/bin/env bash
# Robustness of the lenet family on MNIST (docs/results.md, "Corruption
# robustness and calibration (MNIST)" and "Rotated MNIST"), on a small
# budget: the cellvib-mnist recipe (Adam 1e-3, inputs in [0, 1], beta 1e-5
# growing with depth) for lenet, lenet-vib and lenet-vibcells, trained on
# the first TRAIN_LIMIT training images for EPOCHS epochs; then
#  1. `ibnet robustness` of each against the plain lenet on the first LIMIT
#     test images, 14 benchmark corruptions x severities 1-5;
#  2. leave-one-domain-out on Rotated MNIST for the held-out domains in
#     DOMAINS (same budget, validation split of VAL examples from the five
#     training domains).
# Rerunnable: finished runs and robustness directories are kept (a stopped
# `ibnet robustness` resumes its cells).
#   EPOCHS=2 TRAIN_LIMIT=10000 LIMIT=500 bash scripts/experiments/robustness_mnist.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
EPOCHS=${EPOCHS:-2}
TRAIN_LIMIT=${TRAIN_LIMIT:-10000}
LIMIT=${LIMIT:-500}
THREADS=${THREADS:-1}
SEEDS=${SEEDS:-1}
DOMAINS=${DOMAINS:-"0 5"}
VAL=${VAL:-1000}
STAGES=${STAGES:-"corrupt domains"}
IBNET=${IBNET:-build/ibnet}
root=${ROOT:-runs/robustness-mnist-e$EPOCHS-n$TRAIN_LIMIT}
mkdir -p "$root"
train() { # name model dataset seed extra...
  local run="$root/$1" model=$2 ds=$3 seed=$4
  shift 4
  if [ ! -s "$run/summary.json" ]; then
    rm -rf "$run"
    /usr/bin/time -f "%e s wall" -o "$run.train_time" \
      "$IBNET" train --recipe cellvib-mnist --model "$model" --dataset "$ds" --epochs "$EPOCHS" \
      --train-limit "$TRAIN_LIMIT" --threads "$THREADS" --seed "$seed" --out "$run" "$@" > "$run.log" 2>&1
  fi
}
for stage in $STAGES; do
  if [ "$stage" = corrupt ]; then
    for seed in $SEEDS; do
      for model in lenet lenet-vib lenet-vibcells; do
        train "$model-s$seed" "$model" mnist "$seed"
      done
      for model in lenet lenet-vib lenet-vibcells; do
        ev="$root/eval-$model-s$seed.json" # calibration bins of the clean test set
        [ -s "$ev" ] || { "$IBNET" eval "$root/$model-s$seed/last.safetensors" --limit "$LIMIT" --threads "$THREADS" \
          --json > "$ev.tmp" && mv "$ev.tmp" "$ev"; }
        out="$root/robustness-$model-s$seed"
        [ -s "$out/robustness.md" ] && continue
        /usr/bin/time -f "%e s wall" -o "$out.time" \
          "$IBNET" robustness "$root/$model-s$seed/last.safetensors" --baseline "$root/lenet-s$seed/last.safetensors" \
          --limit "$LIMIT" --severities 1-5 --threads "$THREADS" --out "$out" > "$out.log" 2>&1
      done
    done
  fi
  if [ "$stage" = domains ]; then
    for seed in $SEEDS; do
      for k in $DOMAINS; do
        for model in lenet lenet-vib lenet-vibcells; do
          train "rot$k-$model-s$seed" "$model" "rotated-mnist:$k" "$seed" --val-size "$VAL"
        done
      done
    done
  fi
done
echo "done: $root"
