#!/usr/bin/env bash
# The noisy-label grid (docs/results.md, "Noisy labels: the grid"): plain vs
# Deep VIB vs VIB cells under symmetric noise 0.2/0.4/0.6/0.8 and pair noise
# 0.2/0.4, on a short budget stated in the run names.
#   DATASET=mnist:   lenet, lenet-vib, lenet-vibcells with the cellvib-mnist
#                    recipe, EPOCHS epochs on the first TRAIN_LIMIT training
#                    images (few images, many epochs: memorisation of the
#                    noisy labels sets in within the budget), the first
#                    TEST_LIMIT test images.
#   DATASET=cifar10: resnet20, resnet20-vib (Deep VIB layer, beta 1e-3),
#                    resnet20-vibcells (beta 1e-5 growing with depth) with the
#                    cifar-resnet recipe, the first TEST_LIMIT test images.
# The last VAL training images are the validation split, cut before the
# noise (clean labels): the best epoch is chosen on it; the per-epoch test
# accuracies of metrics.jsonl give the oracle best epoch beside it.  Each run's
# summary.json holds the end-of-run memorisation.  Pair noise on MNIST maps
# every class c to c+1; on CIFAR-10 it changes five classes only (truck ->
# automobile, bird -> airplane, deer -> horse, cat <-> dog), so its overall
# rate is RATE/2.  Rerunnable: finished runs are kept.
#   DATASET=mnist SEEDS="1 2 3" bash scripts/experiments/noisy_labels.sh
#   DATASET=cifar10 SEEDS=1 bash scripts/experiments/noisy_labels.sh
#   /usr/bin/python3 scripts/experiments/collect_noisy_labels.py runs/noisy-mnist-e10-n3000
set -euo pipefail
cd "$(dirname "$0")/../.."
DATASET=${DATASET:-mnist}
SEEDS=${SEEDS:-1}
THREADS=${THREADS:-1}
IBNET=${IBNET:-build/ibnet}
SETTINGS=${SETTINGS:-"symmetric:0.2 symmetric:0.4 symmetric:0.6 symmetric:0.8 pair:0.2 pair:0.4"}
if [ "$DATASET" = mnist ]; then
  EPOCHS=${EPOCHS:-10}
  TRAIN_LIMIT=${TRAIN_LIMIT:-3000}
  TEST_LIMIT=${TEST_LIMIT:-2000}
  VAL=${VAL:-500}
  MODELS=${MODELS:-"lenet lenet-vib lenet-vibcells"}
  recipe=(--recipe cellvib-mnist)
else
  EPOCHS=${EPOCHS:-3}
  TRAIN_LIMIT=${TRAIN_LIMIT:-10000}
  TEST_LIMIT=${TEST_LIMIT:-1000}
  VAL=${VAL:-1000}
  MODELS=${MODELS:-"resnet20 resnet20-vib resnet20-vibcells"}
  recipe=(--recipe cifar-resnet)
fi
root=${ROOT:-runs/noisy-$DATASET-e$EPOCHS-n$TRAIN_LIMIT}
mkdir -p "$root"
for seed in $SEEDS; do
  for setting in $SETTINGS; do
    kind=${setting%%:*} rate=${setting#*:}
    for model in $MODELS; do
      run="$root/$model-$kind$rate-s$seed"
      [ -s "$run/summary.json" ] && continue
      rm -rf "$run"
      extra=()
      case $model in
      resnet20-vib) extra=(--objective vib --beta 1e-3) ;;
      resnet20-vibcells) extra=(--beta 1e-5) ;;
      esac
      /usr/bin/time -f "%e s wall %U s user" -o "$run.train_time" \
        nice -n 10 "$IBNET" train "${recipe[@]}" --model "$model" --dataset "$DATASET" --epochs "$EPOCHS" \
          --train-limit "$TRAIN_LIMIT" --test-limit "$TEST_LIMIT" --val-size "$VAL" --label-noise "$rate" --noise-kind "$kind" \
          --threads "$THREADS" --seed "$seed" "${extra[@]}" --out "$run" --quiet > "$run.log" 2>&1 ||
        { echo "failed: $run (see $run.log)" >&2; continue; }
    done
  done
done
echo "done: $root"
