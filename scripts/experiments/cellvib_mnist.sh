#!/usr/bin/env bash
# cellVIB on MNIST: a LeNet-style CNN with a VIB cell after each conv block,
# against the same CNN plain and with one Deep VIB layer before the
# classifier, over several seeds, with symmetric label noise (the setting
# where the cellVIB paper claims its robustness), and the three beta
# schedules over cells (equal, linear, geometric in depth).  Resumable.
#   EPOCHS=8 NOISE=0.6 SEEDS="1 2 3" bash scripts/experiments/cellvib_mnist.sh
#   python3 scripts/experiments/collect.py runs/cellvib-mnist-e8-n0.6
set -euo pipefail
cd "$(dirname "$0")/../.."
EPOCHS=${EPOCHS:-8}
NOISE=${NOISE:-0.6}
SEEDS=${SEEDS:-"1 2 3"}
THREADS=${THREADS:-2}
BETA=${BETA:-1e-3}
IBNET=${IBNET:-build/ibnet}
root="runs/cellvib-mnist-e${EPOCHS}-n${NOISE}"
common=(--epochs "$EPOCHS" --optimizer adam --adam-beta1 0.9 --lr 1e-3 --schedule constant --ema 0
        --batch-size 64 --input-norm unit --label-noise "$NOISE" --threads "$THREADS" --eval-every 1 --quiet)
run() { # name, extra args...
  local out="$root/$1"; shift
  if [ -f "$out/summary.json" ]; then return; fi
  if [ -f "$out/last.safetensors" ]; then "$IBNET" train --resume "$out" --threads "$THREADS" --quiet; return; fi
  rm -rf "$out"
  "$IBNET" train "${common[@]}" --out "$out" "$@"
}
for s in $SEEDS; do
  run "lenet-s$s" --model lenet --seed "$s"
  run "lenet-vib-s$s" --model lenet-vib --beta "$BETA" --seed "$s"
  for sched in equal linear geometric; do
    run "lenet-vibcells-$sched-s$s" --model lenet-vibcells --beta "$BETA" --beta-schedule "$sched" --seed "$s"
    run "lenet-vibcells-$sched-perelem-s$s" --model lenet-vibcells --beta "$BETA" --beta-schedule "$sched" \
        --kl-per-element --seed "$s"
  done
done
