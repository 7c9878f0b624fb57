#!/usr/bin/env bash
# cellVIB on MNIST with noisy labels (the setting where the cellVIB paper
# claims robustness): a LeNet-style CNN with a VIB cell after each conv
# block (lenet-vibcells), against the same CNN plain (lenet) and with one
# Deep VIB layer before the classifier (lenet-vib).  Clean test accuracy at
# the last epoch is the figure.  Resumable: finished runs are skipped,
# interrupted ones continue from their last checkpoint.
#
# Stage 1 (seed 1) chooses the cells' beta and its schedule over depth:
# beta in {1e-5, 1e-4, 1e-3} with the KL summed over each cell's C*H*W
# elements, schedule equal or growing with depth.  (lenet-vibcells has two
# cells, so "linear" and "geometric" with ratio 1/2 both give beta/2, beta:
# only equal vs growing can be told apart here.)  Stage 2 runs the three
# models over the other seeds with the cells' best setting from stage 1
# (CELL_BETA, CELL_SCHED).
#   EPOCHS=8 NOISE=0.6 bash scripts/experiments/cellvib_mnist.sh stage1
#   CELL_BETA=1e-4 CELL_SCHED=linear bash scripts/experiments/cellvib_mnist.sh stage2
#   python3 scripts/experiments/collect.py runs/cellvib-mnist-e8-n0.6
set -euo pipefail
cd "$(dirname "$0")/../.."
stage=${1:?usage: cellvib_mnist.sh stage1|stage2}
EPOCHS=${EPOCHS:-8}
NOISE=${NOISE:-0.6}
THREADS=${THREADS:-2}
VIB_BETA=${VIB_BETA:-1e-3}
IBNET=${IBNET:-build/ibnet}
root="runs/cellvib-mnist-e${EPOCHS}-n${NOISE}"
common=(--epochs "$EPOCHS" --optimizer adam --adam-beta1 0.9 --lr 1e-3 --schedule constant --ema 0
        --batch-size 64 --input-norm unit --label-noise "$NOISE" --threads "$THREADS" --eval-every 1 --quiet)
run() { # name, extra args...
  local out="$root/$1"; shift
  if [ -f "$out/summary.json" ]; then return; fi
  if [ -f "$out/last.safetensors" ]; then "$IBNET" train --resume "$out" --threads "$THREADS" --quiet; return; fi
  rm -rf "$out"
  echo "cellvib_mnist: $out" >&2
  "$IBNET" train "${common[@]}" --out "$out" "$@"
}
case "$stage" in
stage1)
  s=1
  run "lenet-s$s" --model lenet --seed "$s"
  run "lenet-vib-s$s" --model lenet-vib --beta "$VIB_BETA" --seed "$s"
  for b in 1e-5 1e-4 1e-3; do
    for sched in equal linear; do
      run "lenet-vibcells-b$b-$sched-s$s" --model lenet-vibcells --beta "$b" --beta-schedule "$sched" --seed "$s"
    done
  done
  ;;
stage2)
  : "${CELL_BETA:?set CELL_BETA (from stage 1)}" "${CELL_SCHED:?set CELL_SCHED (from stage 1)}"
  for s in ${SEEDS:-2 3}; do
    run "lenet-s$s" --model lenet --seed "$s"
    run "lenet-vib-s$s" --model lenet-vib --beta "$VIB_BETA" --seed "$s"
    run "lenet-vibcells-b$CELL_BETA-$CELL_SCHED-s$s" --model lenet-vibcells --beta "$CELL_BETA" \
        --beta-schedule "$CELL_SCHED" --seed "$s"
  done
  ;;
*)
  echo "cellvib_mnist.sh: unknown stage '$stage' (stage1, stage2)" >&2
  exit 2
  ;;
esac
