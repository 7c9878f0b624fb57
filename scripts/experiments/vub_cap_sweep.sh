#!/usr/bin/env bash
# VUB's entropy cap H_max for 10 classes (docs/vub.md): Deep VIB (vib-mlp,
# beta = 1e-3) on MNIST, one seed, for
#   vib            entropy weight 0 (plain Deep VIB, the baseline)
#   vub-cap-H      lambda = 1, H_max = H in {0.5, 1, 1.5, ln 10}
#   svib-lam-L     lambda = L in {0.5, 1, 2, 3}, no cap (SVIB's -lambda*H)
# Budget: EPOCHS epochs on the first TRAIN_LIMIT training examples (0 = all
# 60000), one thread each, run one after another.  Rerunnable: a run whose
# summary.json exists is skipped, an unfinished one is started again.
#   bash scripts/experiments/vub_cap_sweep.sh
#   python3 scripts/experiments/collect_vub.py runs/vub-sweep     (the table)
set -euo pipefail
cd "$(dirname "$0")/../.."
EPOCHS=${EPOCHS:-5}
TRAIN_LIMIT=${TRAIN_LIMIT:-20000}
THREADS=${THREADS:-1}
SEED=${SEED:-1}
BETA=${BETA:-1e-3}
DATA=${DATA:-/work/shared/data/mnist}
IBNET=${IBNET:-build/ibnet}
ROOT=${ROOT:-runs/vub-sweep}
mkdir -p "$ROOT"

# name entropy-weight entropy-cap
RUNS="vib:0:0
vub-cap-0.5:1:0.5
vub-cap-1:1:1
vub-cap-1.5:1:1.5
vub-cap-ln10:1:2.302585
svib-lam-0.5:0.5:0
svib-lam-1:1:0
svib-lam-2:2:0
svib-lam-3:3:0"

data_flag=()
[ -d "$DATA" ] && data_flag=(--data "$DATA")

for spec in $RUNS; do
  IFS=: read -r name lam cap <<<"$spec"
  out="$ROOT/$name"
  if [ -f "$out/summary.json" ]; then echo "$name: done"; continue; fi
  rm -rf "$out"
  echo "$name: lambda=$lam cap=$cap ($(date -u +%H:%M:%S))"
  start=$(date +%s)
  "$IBNET" train --model vib-mlp --beta "$BETA" --epochs "$EPOCHS" --threads "$THREADS" \
    --seed "$SEED" --train-limit "$TRAIN_LIMIT" --entropy-weight "$lam" --entropy-cap "$cap" \
    "${data_flag[@]}" --out "$out" --quiet
  echo "$name: $(( $(date +%s) - start )) s"
done
echo "sweep finished ($(date -u +%H:%M:%S))"
