#!/usr/bin/env bash
# Per-cell information of lenet-vibcells against lenet on MNIST
# (docs/results.md, "Per-cell information"): both networks trained with the
# cellvib-mnist recipe (Adam 1e-3, batch 64, inputs in [0, 1], no EMA,
# beta 1e-5 growing linearly with depth over the cells) on the first
# TRAIN_LIMIT training images for EPOCHS epochs.  After every epoch
# --track-info measures I(X;T) and I(T;Y) of the pooled conv blocks, the
# cells, fc1's ReLU and the logits by binning (30 bins over the data range)
# on the first TEST_LIMIT test images: the images the trainer evaluates, so
# the cells' rates (test_kl in metrics.jsonl, the variational upper bound on
# I(X;Z) of each cell) are on the same data.  Then (stage kde) KDE of the
# same layers on the final weights, at each sigma^2 of KDE_S2, into
# RUN/kde-final.jsonl: O(n^2 d) in the naive loop of src/info/kde.c, too
# slow on this shared machine to track every layer every epoch.  Stage
# kdetrack trains both networks again with KDE (sigma^2 = TRACK_S2) tracked
# every epoch on the pooled blocks and the cells only (RUN = MODEL-kdeS2):
# the training is deterministic, so these runs train as the binning ones.
#   EPOCHS=4 TRAIN_LIMIT=5000 bash scripts/experiments/info_cells_mnist.sh [train|kde|kdetrack|plot]...
set -euo pipefail
cd "$(dirname "$0")/../.."
EPOCHS=${EPOCHS:-4}
SEED=${SEED:-1}
TRAIN_LIMIT=${TRAIN_LIMIT:-5000}
TEST_LIMIT=${TEST_LIMIT:-1000}
KDE_S2=${KDE_S2:-"0.1 10"}
TRACK_S2=${TRACK_S2:-10}
THREADS=${THREADS:-1}
IBNET=${IBNET:-build/ibnet}
root=${ROOT:-runs/info-cells-mnist-e$EPOCHS-n$TRAIN_LIMIT}
stages=${*:-train kde plot}
# layer names: lenet's unnamed layers are numbered (ibnet models --layers)
declare -A layers=(
  [lenet]=2,5,8,fc2
  [lenet-vibcells]=2,cell1,6,cell2,10,fc2
)
declare -A conv_layers=(
  [lenet]=2,5
  [lenet-vibcells]=2,cell1,6,cell2
)
for stage in $stages; do
  for model in ${MODELS:-lenet-vibcells lenet}; do
    run="$root/$model-binning-s$SEED"
    case $stage in
    train)
      [ -s "$run/summary.json" ] && continue
      rm -rf "$run"
      mkdir -p "$root"
      /usr/bin/time -f "%e s wall" --out "$run.train_time" \
        nice -n 10 "$IBNET" train --recipe cellvib-mnist --model "$model" --epochs "$EPOCHS" --seed "$SEED" \
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
    kdetrack)
      run="$root/$model-kde$TRACK_S2-s$SEED"
      [ -s "$run/summary.json" ] && continue
      rm -rf "$run"
      /usr/bin/time -f "%e s wall" --out "$run.train_time" \
        nice -n 10 "$IBNET" train --recipe cellvib-mnist --model "$model" --epochs "$EPOCHS" --seed "$SEED" \
          --threads "$THREADS" --train-limit "$TRAIN_LIMIT" --test-limit "$TEST_LIMIT" \
          --track-info "kde:$TRACK_S2" --track-layers "${conv_layers[$model]}" --track-split test \
          --track-limit "$TEST_LIMIT" --out "$run" --quiet ;;
    plot)
      "$IBNET" plot plane "$run" --out "$run/plane.png" \
        --title "$model on MNIST, binning:30, $EPOCHS epochs of $TRAIN_LIMIT images" ;;
    esac
  done
done
