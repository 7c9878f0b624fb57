#!/usr/bin/env bash
# Deep VIB on MNIST over a sweep of beta (Alemi et al. 2017, figure 1):
# the paper's recipe for every beta, EPOCHS epochs each (the paper: 200).
# Resumable: a finished beta is skipped, an interrupted one continues.
#   EPOCHS=200 THREADS=2 bash scripts/experiments/beta_sweep.sh
#   python3 scripts/experiments/collect.py runs/beta-sweep-e200    (table + plot)
set -euo pipefail
cd "$(dirname "$0")/../.."
EPOCHS=${EPOCHS:-200}
THREADS=${THREADS:-2}
SEED=${SEED:-1}
BETAS=${BETAS:-"0 1e-8 1e-6 1e-4 1e-3 1e-2 1e-1 1"}
EVAL_EVERY=${EVAL_EVERY:-$(( EPOCHS >= 20 ? 10 : EPOCHS ))}
IBNET=${IBNET:-build/ibnet}
root="runs/beta-sweep-e${EPOCHS}"
mkdir -p "$root"
for b in $BETAS; do
  out="$root/beta-$b"
  if [ -f "$out/summary.json" ] && [ "$(python3 -c "import json;print(json.load(open('$out/summary.json'))['epochs_done'])")" = "$EPOCHS" ]; then
    echo "beta $b: done"; continue
  fi
  if [ -f "$out/last.safetensors" ]; then
    "$IBNET" train --resume "$out" --threads "$THREADS" --quiet
  else
    rm -rf "$out"
    "$IBNET" train --beta "$b" --epochs "$EPOCHS" --seed "$SEED" --threads "$THREADS" \
      --eval-every "$EVAL_EVERY" --out "$out" --quiet
  fi
done
