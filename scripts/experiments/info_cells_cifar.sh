#!/usr/bin/env bash
# Per-cell information of resnet20-vibcells against resnet20 on CIFAR-10
# (docs/results.md, "Per-cell information"), the CIFAR twin of
# info_cells_mnist.sh at a small budget: both networks trained with the
# cifar-resnet recipe (SGD, cosine, crop + flip) on the first TRAIN_LIMIT
# training images for EPOCHS epochs; after every epoch --track-info measures
# I(X;T) and I(T;Y) by binning (30 bins over the data range) of each stage's
# last block, the cells, the pooled features and the logits, on the first
# TEST_LIMIT test images (those the trainer evaluates, so the cells' rates,
# test_kl in metrics.jsonl, are on the same data); beta 1e-5 for the cells
# (the README's resnet20-vibcells setting; plain resnet20 ignores it).  Then KDE (sigma^2 in
# KDE_S2) of the same layers on the final weights into RUN/kde-final.jsonl.
#   EPOCHS=3 TRAIN_LIMIT=10000 bash scripts/experiments/info_cells_cifar.sh [train|kde]...
set -euo pipefail
cd "$(dirname "$0")/../.."
EPOCHS=${EPOCHS:-3}
SEED=${SEED:-1}
TRAIN_LIMIT=${TRAIN_LIMIT:-10000}
TEST_LIMIT=${TEST_LIMIT:-1000}
KDE_S2=${KDE_S2:-10}
THREADS=${THREADS:-1}
IBNET=${IBNET:-build/ibnet}
root=${ROOT:-runs/info-cells-cifar-e$EPOCHS-n$TRAIN_LIMIT}
stages=${*:-train kde}
declare -A layers=(
  [resnet20]=layer1.2,layer2.2,layer3.2,POOL,fc
  [resnet20-vibcells]=layer1.2,cell1,layer2.2,cell2,layer3.2,cell3,9,fc
)
layers[resnet20]=${layers[resnet20]/POOL/${RESNET_POOL:-6}}
for stage in $stages; do
  for model in ${MODELS:-resnet20-vibcells resnet20}; do
    run="$root/$model-binning-s$SEED"
    case $stage in
    train)
      [ -s "$run/summary.json" ] && continue
      rm -rf "$run"
      mkdir -p "$root"
      /usr/bin/time -f "%e s wall" --out "$run.train_time" \
        nice -n 10 "$IBNET" train --recipe cifar-resnet --model "$model" --epochs "$EPOCHS" --seed "$SEED" --beta "${BETA:-1e-5}" \
          --threads "$THREADS" --train-limit "$TRAIN_LIMIT" --test-limit "$TEST_LIMIT" \
          --track-info binning:30 --track-layers "${layers[$model]}" --track-split test --track-limit "$TEST_LIMIT" \
          --out "$run" --quiet ;;
    kde)
      [ -s "$run/kde-final.jsonl" ] && continue
      for s2 in $KDE_S2; do
        /usr/bin/time -f "kde:$s2 %e s wall" --append --out "$run.kde_time" \
          nice -n 10 "$IBNET" info "$run/last.safetensors" --layers "${layers[$model]}" --estimator "kde:$s2" \
            --split test --limit "$TEST_LIMIT" --threads "$THREADS" --json
      done > "$run/kde-final.jsonl.tmp"
      mv "$run/kde-final.jsonl.tmp" "$run/kde-final.jsonl" ;;
    esac
  done
done
