#!/usr/bin/env bash
# VUB's own set-up on MNIST (docs/results.md, "VUB on MNIST"): a stochastic
# head (`mlp-vubhead`) on the frozen backbone of a trained plain `mlp`
# (fc1, fc2 loaded from the mlp runs of vub_mnist.sh, EMA weights, and
# frozen), trained with the vib and the vub objective at beta 1e-3, 1e-2,
# 1e-1 for EPOCHS epochs on the deep-vib recipe's other settings.  Needs
# ROOT/mlp-sSEED from vub_mnist.sh.  Rerunnable as vub_mnist.sh is.
#   EPOCHS=3 THREADS=1 bash scripts/experiments/vub_head_mnist.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
EPOCHS=${EPOCHS:-3}
THREADS=${THREADS:-1}
SEEDS=${SEEDS:-"1 2 3"}
IBNET=${IBNET:-build/ibnet}
root=${ROOT:-runs/vub-mnist-e$EPOCHS}
train() { # name, flags...
  local run="$root/$1"; shift
  if [ -s "$run/summary.json" ] && grep -q "\"epochs_done\":[[:space:]]*$EPOCHS\b" "$run/summary.json"; then return; fi
  if [ -s "$run/config.json" ]; then
    "$IBNET" train --resume "$run" --quiet || return 1
  else
    rm -rf "$run"
    "$IBNET" train "$@" --epochs "$EPOCHS" --threads "$THREADS" --out "$run" --quiet
  fi
}
for seed in $SEEDS; do
  backbone="$root/mlp-s$seed/last.safetensors"
  [ -s "$backbone" ] || { echo "no $backbone: run vub_mnist.sh first" >&2; exit 1; }
  for beta in 1e-3 1e-2 1e-1; do
    for objective in vib vub; do
      flags=(--model mlp-vubhead --objective vib)
      [ "$objective" = vub ] && flags=(--recipe vub-mnist --model mlp-vubhead)
      train "head-$objective-b$beta-s$seed" "${flags[@]}" --beta "$beta" --seed "$seed" \
        --init-from "$backbone" --freeze fc1.,fc2.
    done
  done
done
