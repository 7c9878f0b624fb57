#!/usr/bin/env bash
# VUB vs Deep VIB vs the plain network on MNIST (docs/results.md, "VUB on
# MNIST"): `mlp` (no bottleneck), and `vib-mlp` trained with the vib and the
# vub objective at beta 1e-3, 1e-2, 1e-1 (VUB: lambda 1, the cap of the
# vub-mnist recipe, 0.85 ln 10), on the deep-vib recipe's settings cut to
# EPOCHS epochs.  Seed 1 of every set-up first, then seeds 2 and 3, so an
# interrupted sweep has the widest table.  Rerunnable: a run whose
# summary.json records all EPOCHS epochs is kept, an unfinished one resumes.
#   EPOCHS=3 THREADS=1 bash scripts/experiments/vub_mnist.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
EPOCHS=${EPOCHS:-3}
THREADS=${THREADS:-1}
SEEDS=${SEEDS:-"1 2 3"}
IBNET=${IBNET:-build/ibnet}
root=${ROOT:-runs/vub-mnist-e$EPOCHS}
mkdir -p "$root"
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
  train "mlp-s$seed" --model mlp --seed "$seed"
  for beta in 1e-3 1e-2 1e-1; do
    train "vib-b$beta-s$seed" --model vib-mlp --objective vib --beta "$beta" --seed "$seed"
    train "vub-b$beta-s$seed" --recipe vub-mnist --beta "$beta" --seed "$seed"
  done
done
