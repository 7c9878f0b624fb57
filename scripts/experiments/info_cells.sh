#!/usr/bin/env bash
# The driver of the per-cell information runs (docs/results.md, "Per-cell
# information") for both data sets; info_cells_mnist.sh and
# info_cells_cifar.sh describe each experiment and call this with DATASET
# set.  Stages, each skipping the runs it has finished:
#   train     the cells network and its plain twin, with --track-info binning:30
#             measured every epoch on the first TEST_LIMIT test images (those the
#             trainer evaluates, so the cells' rates, test_kl, are on the same data)
#   kde       KDE at each sigma^2 of KDE_S2 on the final weights into RUN/kde-final.jsonl
#   kdetrack  (MNIST) train again with KDE (sigma^2 = TRACK_S2) tracked every
#             epoch on the pooled blocks and the cells only (RUN = MODEL-kdeS2)
#   plot      the information plane of each binning run into RUN/plane.png
#   DATASET=mnist|cifar EPOCHS=.. TRAIN_LIMIT=.. bash scripts/experiments/info_cells.sh [STAGE]...
set -euo pipefail
cd "$(dirname "$0")/../.."
SEED=${SEED:-1}
TEST_LIMIT=${TEST_LIMIT:-1000}
THREADS=${THREADS:-1}
IBNET=${IBNET:-build/ibnet}
declare -A layers conv_layers
case ${DATASET:-} in
mnist)
  EPOCHS=${EPOCHS:-4}
  TRAIN_LIMIT=${TRAIN_LIMIT:-5000}
  KDE_S2=${KDE_S2:-"0.1 10"}
  TRACK_S2=${TRACK_S2:-10}
  stages=${*:-train kde plot}
  recipe=cellvib-mnist title=MNIST
  models=${MODELS:-lenet-vibcells lenet}
  train_flags=() # the recipe's beta, growing with depth over the cells
  # layer names: lenet's unnamed layers are numbered (ibnet models --layers)
  layers=([lenet]=2,5,8,fc2 [lenet-vibcells]=2,cell1,6,cell2,10,fc2)
  conv_layers=([lenet]=2,5 [lenet-vibcells]=2,cell1,6,cell2) ;;
cifar)
  EPOCHS=${EPOCHS:-3}
  TRAIN_LIMIT=${TRAIN_LIMIT:-10000}
  KDE_S2=${KDE_S2:-10}
  stages=${*:-train kde}
  recipe=cifar-resnet title=CIFAR-10
  models=${MODELS:-resnet20-vibcells resnet20}
  train_flags=(--beta "${BETA:-1e-5}") # the README's resnet20-vibcells setting; plain resnet20 ignores it
  layers=([resnet20]=layer1.2,layer2.2,layer3.2,${RESNET_POOL:-6},fc
          [resnet20-vibcells]=layer1.2,cell1,layer2.2,cell2,layer3.2,cell3,9,fc) ;;
*)
  echo "info_cells.sh: DATASET must be mnist or cifar (not '${DATASET:-}')" >&2
  exit 2 ;;
esac
root=${ROOT:-runs/info-cells-$DATASET-e$EPOCHS-n$TRAIN_LIMIT}
train() { # RUN TRACK-INFO TRACK-LAYERS
  /usr/bin/time -f "%e s wall" --out "$1.train_time" \
    nice -n 10 "$IBNET" train --recipe "$recipe" --model "$model" --epochs "$EPOCHS" --seed "$SEED" \
      ${train_flags[@]+"${train_flags[@]}"} --threads "$THREADS" --train-limit "$TRAIN_LIMIT" \
      --test-limit "$TEST_LIMIT" --track-info "$2" --track-layers "$3" --track-split test \
      --track-limit "$TEST_LIMIT" --out "$1" --quiet
}
for stage in $stages; do
  for model in $models; do
    run="$root/$model-binning-s$SEED"
    case $stage in
    train)
      [ -s "$run/summary.json" ] && continue
      rm -rf "$run"
      mkdir -p "$root"
      train "$run" binning:30 "${layers[$model]}" ;;
    kde)
      [ -s "$run/kde-final.jsonl" ] && continue
      for s2 in $KDE_S2; do
        /usr/bin/time -f "kde:$s2 %e s wall" --append --out "$run.kde_time" \
          nice -n 10 "$IBNET" info "$run/last.safetensors" --layers "${layers[$model]}" --estimator "kde:$s2" \
            --split test --limit "$TEST_LIMIT" --threads "$THREADS" --json
      done > "$run/kde-final.jsonl.tmp"
      mv "$run/kde-final.jsonl.tmp" "$run/kde-final.jsonl" ;;
    kdetrack)
      [ -n "${conv_layers[$model]:-}" ] || { echo "info_cells.sh: no kdetrack layers for $model" >&2; exit 2; }
      run="$root/$model-kde$TRACK_S2-s$SEED"
      [ -s "$run/summary.json" ] && continue
      rm -rf "$run"
      train "$run" "kde:$TRACK_S2" "${conv_layers[$model]}" ;;
    plot)
      "$IBNET" plot plane "$run" --out "$run/plane.png" \
        --title "$model on $title, binning:30, $EPOCHS epochs of $TRAIN_LIMIT images" ;;
    *)
      echo "info_cells.sh: unknown stage '$stage' (train, kde, kdetrack, plot)" >&2
      exit 2 ;;
    esac
  done
done
