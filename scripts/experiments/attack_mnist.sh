#!/usr/bin/env bash
# Adversarial robustness on MNIST (docs/results.md, "Adversarial robustness
# (MNIST)"): a plain `mlp` and Deep VIB (`vib-mlp`, beta 1e-3) trained on a
# short budget, then FGSM and PGD-40 (L-inf, CE and margin loss, the
# stronger per example) at eps 0.1, 0.2, 0.3 on the first 1000 test images
# (VIB under PGD: the first VIB_PGD_LIMIT, 200 by default; see below).
# The VIB network is attacked through the gradient of its S-sample average
# (EOT, S = the run's 12) and through its mean path, and judged on the
# 12-sample prediction (docs/attacks.md).  Rerunnable: finished training
# runs and attacks are kept.
#   EPOCHS=3 THREADS=1 bash scripts/experiments/attack_mnist.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
EPOCHS=${EPOCHS:-3}
THREADS=${THREADS:-1}
SEED=${SEED:-1}
LIMIT=${LIMIT:-1000}
# PGD-40 on a stochastic network costs S (12) passes per step and loss, plus the
# mean path: on two shared cores it gets the first VIB_PGD_LIMIT images.
VIB_PGD_LIMIT=${VIB_PGD_LIMIT:-200}
IBNET=${IBNET:-build/ibnet}
root=${ROOT:-runs/attack-mnist-e$EPOCHS-s$SEED}
mkdir -p "$root"
for model in mlp vib-mlp; do
  run="$root/$model"
  if [ ! -s "$run/summary.json" ]; then
    rm -rf "$run"
    /usr/bin/time -f "%e s wall" -o "$root/$model.train_time" \
      "$IBNET" train --model "$model" --beta 1e-3 --epochs "$EPOCHS" --threads "$THREADS" --seed "$SEED" --out "$run"
  fi
  for attack in fgsm pgd; do
    out="$root/$model-$attack.json"
    [ -s "$out" ] && continue
    steps=()
    limit=$LIMIT
    [ "$attack" = pgd ] && steps=(--steps 40)
    [ "$attack" = pgd ] && [ "$model" = vib-mlp ] && limit=$VIB_PGD_LIMIT
    /usr/bin/time -f "%e s wall" -o "$root/$model-$attack.time" \
      "$IBNET" attack "$run/last.safetensors" --attack "$attack" "${steps[@]}" --eps 0.1,0.2,0.3 --limit "$limit" \
      --seed "$SEED" --threads "$THREADS" --json > "$out.tmp"
    mv "$out.tmp" "$out"
  done
done
# The plain network under PGD on the same first VIB_PGD_LIMIT images, for a
# like-for-like comparison with the VIB row.
out="$root/mlp-pgd-$VIB_PGD_LIMIT.json"
if [ ! -s "$out" ]; then
  /usr/bin/time -f "%e s wall" -o "$root/mlp-pgd-$VIB_PGD_LIMIT.time" \
    "$IBNET" attack "$root/mlp/last.safetensors" --attack pgd --steps 40 --eps 0.1,0.2,0.3 --limit "$VIB_PGD_LIMIT" \
    --seed "$SEED" --threads "$THREADS" --json > "$out.tmp"
  mv "$out.tmp" "$out"
fi
